#define PCRE2_CODE_UNIT_WIDTH 8
#include "inference/llm/tokenizer.h"

#include <pcre2.h>

#include <algorithm>
#include <cctype>
#include <queue>

#include "inference/formats/format_error.h"
#include "inference/formats/gguf.h"
#include "inference/llm/unicode.h"

namespace lumen::inference {

// ---- pre-tokenizers: a list of split expressions applied in turn ----

// The expressions each model family's tokenizer.json uses, keyed by tokenizer.ggml.pre.
struct PreTokenizerSpec {
    std::vector<std::string_view> names;
    std::vector<std::string_view> patterns;
    bool ignoreMerges = false;  // Llama 3 style: a word that is a whole token is not merged
};

namespace {

const std::vector<PreTokenizerSpec>& preTokenizerSpecs() {
    static const std::string_view kGpt2 =
        R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
    static const std::string_view kLlama3 =
        R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
    static const std::string_view kQwen2 =
        R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
    // Qwen3.5's: Qwen2's with combining marks in words.
    static const std::string_view kQwen35 =
        R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
    static const std::string_view kTekken =
        R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
    // o200k, GPT-4o's: letters split at case changes, English contractions in either case.
    static const std::string_view kGpt4o =
        R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
    // DeepSeek's tokenizers apply several expressions in turn, each isolating its matches.
    static const std::string_view kDeepseekLetters =
        "\\s?[A-Za-z\u00B5\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u01BA\u01BC-\u01BF\u01C4-\u0293\u0295-\u02AF\u0370-\u0373"
        "\u0376\u0377\u037B-\u037D\u037F\u0386\u0388-\u038A\u038C\u038E-\u03A1\u03A3-\u03F5\u03F7-\u0481\u048A-\u052F"
        "\u0531-\u0556\u10A0-\u10C5\u13A0-\u13F5\u13F8-\u13FD\u1C90-\u1CBA\u1CBD-\u1CBF\u1D00-\u1D2B\u1D6B-\u1D77"
        "\u1D79-\u1D9A\u1E00-\u1F15\u1F18-\u1F1D\u1F20-\u1F45\u1F48-\u1F4D\u1F50-\u1F57\u1F59\u1F5B\u1F5D\u1F5F-\u1F7D"
        "\u1F80-\u1FB4\u1FB6-\u1FBC\u1FBE\u1FC2-\u1FC4\u1FC6-\u1FCC\u1FD0-\u1FD3\u1FD6-\u1FDB\u1FE0-\u1FEC\u1FF2-\u1FF4"
        "\u1FF6-\u1FFC\u2102\u2107\u210A-\u2113\u2115\u2119-\u211D\u2124\u2126\u2128\u212A-\u212D\u212F-\u2134\u2139"
        "\u213C-\u213F\u2145-\u2149\u214E\u2183\u2184\u2C00-\u2C7B\u2C7E-\u2CE4\u2CEB-\u2CEE\u2CF2\u2CF3\uA640-\uA66D"
        "\uA680-\uA69B\uA722-\uA76F\uA771-\uA787\uA78B-\uA78E\uAB70-\uABBF\uFB00-\uFB06\uFB13-\uFB17\uFF21-\uFF3A"
        "\uFF41-\uFF5A\U00010400-\U0001044F\U000104B0-\U000104D3\U000104D8-\U000104FB\U00010C80-\U00010CB2"
        "\U00010CC0-\U00010CF2\U000118A0-\U000118DF\U0001E900-\U0001E943]+";
    static const std::vector<PreTokenizerSpec> specs = {
        {{"default", "gpt-2", "gpt2", "phi-2", "jina-es", "jina-de", "jina-v2-es", "jina-v2-de", "jina-v2-code", "olmo",
          "jais", "roberta-bpe", "mpt", "starcoder", "refact", "command-r"},
         {kGpt2}},
        {{"llama-bpe", "llama3", "llama-v3", "falcon3", "smaug-bpe", "dbrx", "exaone", "pixtral", "minerva-7b"}, {kLlama3}, true},
        {{"qwen2", "deepseek-r1-qwen", "stablelm2", "megrez", "hunyuan"}, {kQwen2}},
        {{"qwen35"}, {kQwen35}},
        {{"tekken"}, {kTekken}},
        {{"gpt-4o"}, {kGpt4o}},
        {{"deepseek-llm"},
         {"[\r\n]", kDeepseekLetters, "\\s?[!-/:-~\uFF01-\uFF0F\uFF1A-\uFF5E\u2018-\u201F\u3000-\u3002]+", "\\s+$",
          "[\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+", "\\p{N}+"}},
        {{"deepseek-coder"}, {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+", "\\p{N}"}},
        {{"deepseek-v3"},
         {"\\p{N}{1,3}", "[\u4E00-\u9FA5\u3040-\u309F\u30A0-\u30FF]+",
          "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"}},
    };
    return specs;
}

}  // namespace

class PreTokenizer {
public:
    explicit PreTokenizer(const std::vector<std::string_view>& patterns) {
        for (const auto& p : patterns) {
            int error = 0;
            PCRE2_SIZE offset = 0;
            pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p.data()), p.size(),
                                             PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error, &offset, nullptr);
            if (!code) throw std::logic_error("pre-tokenizer expression does not compile");
            pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // optional speed-up; falls back silently
            codes_.push_back(code);
        }
    }
    ~PreTokenizer() {
        for (auto* c : codes_) pcre2_code_free(c);
    }
    PreTokenizer(const PreTokenizer&) = delete;
    PreTokenizer& operator=(const PreTokenizer&) = delete;

    // Splits `text` into pieces: each expression splits the pieces of the previous one; text
    // an expression does not match stays a piece of its own.
    std::vector<std::string_view> split(std::string_view text) const {
        std::vector<std::string_view> pieces{text};
        pcre2_match_data* match = pcre2_match_data_create(1, nullptr);
        for (auto* code : codes_) {
            std::vector<std::string_view> next;
            for (std::string_view piece : pieces) {
                std::size_t start = 0, last = 0;
                while (start < piece.size()) {
                    const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(piece.data()), piece.size(), start, 0, match, nullptr);
                    if (rc < 0) break;
                    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(match);
                    if (ov[1] == ov[0]) {  // empty match: step one character
                        start = ov[0] + static_cast<std::size_t>(utf8SequenceLength(static_cast<std::uint8_t>(piece[ov[0]])));
                        continue;
                    }
                    if (ov[0] > last) next.push_back(piece.substr(last, ov[0] - last));
                    next.push_back(piece.substr(ov[0], ov[1] - ov[0]));
                    start = last = ov[1];
                }
                if (last < piece.size()) next.push_back(piece.substr(last));
            }
            pieces = std::move(next);
        }
        pcre2_match_data_free(match);
        return pieces;
    }

private:
    std::vector<pcre2_code*> codes_;
};

namespace {

constexpr std::string_view kSpmSpace = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK

std::string escapeSpaces(std::string_view text) {
    std::string out;
    out.reserve(text.size() + 8);
    for (char c : text) {
        if (c == ' ') out += kSpmSpace;
        else out += c;
    }
    return out;
}

}  // namespace

namespace {

const PreTokenizerSpec& findPreTokenizer(const std::string& pre) {
    for (const auto& s : preTokenizerSpecs())
        if (std::find(s.names.begin(), s.names.end(), pre) != s.names.end()) return s;
    std::string known;
    for (const auto& s : preTokenizerSpecs())
        for (auto n : s.names) known += (known.empty() ? "" : ", ") + std::string(n);
    throw FormatError("pre-tokenizer '" + pre + "' is not supported yet (known: " + known + ")");
}

}  // namespace

std::vector<std::string> preTokenize(std::string_view pre, std::string_view text) {
    const PreTokenizer p(findPreTokenizer(std::string(pre)).patterns);
    std::vector<std::string> out;
    for (auto piece : p.split(text)) out.emplace_back(piece);
    return out;
}

Tokenizer::Tokenizer(Vocabulary vocabulary) : vocab_(std::move(vocabulary)) {
    for (std::size_t i = 0; i < vocab_.size(); ++i) {
        const TokenType t = vocab_.types[i];
        if ((t == TokenType::Control || t == TokenType::UserDefined || t == TokenType::Unknown) && !vocab_.tokens[i].empty())
            specials_.push_back(static_cast<TokenId>(i));
    }
    std::stable_sort(specials_.begin(), specials_.end(), [&](TokenId a, TokenId b) {
        return vocab_.tokens[static_cast<std::size_t>(a)].size() > vocab_.tokens[static_cast<std::size_t>(b)].size();
    });
    if (vocab_.model == Vocabulary::Model::Spm) {
        spmWordsIndependent_ = true;
        for (const std::string& t : vocab_.tokens) {
            for (std::size_t at = t.find(kSpmSpace, 1); at != std::string::npos; at = t.find(kSpmSpace, at + 1)) {
                if (at < kSpmSpace.size() || t.compare(at - kSpmSpace.size(), kSpmSpace.size(), kSpmSpace) != 0) {
                    spmWordsIndependent_ = false;
                    break;
                }
            }
            if (!spmWordsIndependent_) break;
        }
    }
    if (vocab_.model == Vocabulary::Model::Bpe) {
        const PreTokenizerSpec& spec = findPreTokenizer(vocab_.pre);
        pre_ = std::make_unique<PreTokenizer>(spec.patterns);
        ignoreMerges_ = spec.ignoreMerges;
    }
}

Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

Tokenizer Tokenizer::fromGguf(const GgufFile& file) {
    try {
        return Tokenizer(Vocabulary::fromGguf(file));
    } catch (const FormatError& e) {
        const std::string message = e.what();
        if (message.rfind(file.displayName(), 0) == 0) throw;
        throw FormatError(file.displayName() + ": " + message);
    }
}

std::vector<TokenId> Tokenizer::encode(std::string_view text, bool addSpecial, bool parseSpecial) const {
    // SentencePiece escapes spaces as U+2581 before it looks for anything, so a U+2581 in the text
    // is a space to it, also where user-defined pieces (Gemma's runs of spaces) are matched.
    if (vocab_.model == Vocabulary::Model::Spm && text.find(kSpmSpace) != std::string_view::npos) {
        std::string spaced(text);
        for (std::size_t at; (at = spaced.find(kSpmSpace)) != std::string::npos;) spaced.replace(at, kSpmSpace.size(), " ");
        return encode(spaced, addSpecial, parseSpecial);
    }
    // Split the text at special-token occurrences: longest tokens first, as llama.cpp does.
    // User-defined tokens always match; control tokens only when parseSpecial.
    struct Fragment {
        std::string_view text;
        TokenId token = -1;
    };
    std::vector<Fragment> fragments{{text, -1}};
    for (TokenId special : specials_) {
        const TokenType type = vocab_.type(special);
        if (type != TokenType::UserDefined && !parseSpecial) continue;
        const std::string& s = vocab_.tokens[static_cast<std::size_t>(special)];
        std::vector<Fragment> next;
        for (const Fragment& f : fragments) {
            if (f.token >= 0 || f.text.find(s) == std::string_view::npos) {
                next.push_back(f);
                continue;
            }
            std::size_t start = 0;
            for (std::size_t at; (at = f.text.find(s, start)) != std::string_view::npos; start = at + s.size()) {
                if (at > start) next.push_back({f.text.substr(start, at - start), -1});
                next.push_back({{}, special});
            }
            if (start < f.text.size()) next.push_back({f.text.substr(start), -1});
        }
        fragments = std::move(next);
    }

    std::vector<TokenId> out;
    if (addSpecial && vocab_.addBos && vocab_.bos) out.push_back(*vocab_.bos);
    bool previousSpecial = true;  // the start of the prompt counts as "after a special token"
    bool strip = false;           // the token before has the rstrip attribute
    for (const Fragment& f : fragments) {
        if (f.token >= 0) {
            out.push_back(f.token);
            previousSpecial = true;
            strip = std::binary_search(vocab_.rstrip.begin(), vocab_.rstrip.end(), f.token);
            continue;
        }
        std::string_view piece = f.text;
        if (strip)
            while (!piece.empty() && std::isspace(static_cast<unsigned char>(piece.front()))) piece.remove_prefix(1);
        strip = false;
        if (piece.empty()) continue;  // an empty prompt is no text at all (no space prefix)
        encodeText(piece, previousSpecial, out);
        previousSpecial = false;
    }
    if (addSpecial && vocab_.addEos && vocab_.eos) out.push_back(*vocab_.eos);
    return out;
}

void Tokenizer::encodeText(std::string_view text, bool startsFragment, std::vector<TokenId>& out) const {
    if (vocab_.model == Vocabulary::Model::Spm) {
        std::string escaped;
        if (vocab_.addSpacePrefix && startsFragment) escaped = std::string(kSpmSpace);
        escaped += escapeSpaces(text);
        encodeSpm(escaped, out);
        return;
    }
    for (std::string_view word : pre_->split(text)) encodeBpeWord(word, out);
}

void Tokenizer::encodeSpm(std::string_view text, std::vector<TokenId>& out) const {
    if (!spmWordsIndependent_) {
        encodeSpmChunk(text, out);
        return;
    }
    // Cut before every U+2581 that follows another character.
    std::size_t start = 0;
    for (std::size_t at = text.find(kSpmSpace, 1); at != std::string_view::npos; at = text.find(kSpmSpace, at + kSpmSpace.size())) {
        if (at >= kSpmSpace.size() && text.compare(at - kSpmSpace.size(), kSpmSpace.size(), kSpmSpace) == 0) continue;
        encodeSpmChunk(text.substr(start, at - start), out);
        start = at;
    }
    encodeSpmChunk(text.substr(start), out);
}

// SentencePiece BPE: start from single characters and repeatedly merge the adjacent pair
// whose concatenation is the highest-scoring token (leftmost on ties).
void Tokenizer::encodeSpmChunk(std::string_view text, std::vector<TokenId>& out) const {
    if (text.empty()) return;
    struct Symbol {
        int prev, next;
        std::size_t start, length;
    };
    std::vector<Symbol> symbols;
    for (std::size_t i = 0; i < text.size();) {
        const std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(utf8SequenceLength(static_cast<std::uint8_t>(text[i]))), text.size() - i);
        symbols.push_back({static_cast<int>(symbols.size()) - 1, static_cast<int>(symbols.size()) + 1, i, n});
        i += n;
    }
    symbols.back().next = -1;

    struct Bigram {
        int left, right;
        float score;
        std::size_t length;
        bool operator<(const Bigram& o) const { return score < o.score || (score == o.score && left > o.left); }
    };
    std::priority_queue<Bigram> queue;
    auto tryAdd = [&](int left, int right) {
        if (left < 0 || right < 0) return;
        const Symbol& l = symbols[static_cast<std::size_t>(left)];
        const Symbol& r = symbols[static_cast<std::size_t>(right)];
        const auto it = vocab_.ids.find(text.substr(l.start, l.length + r.length));
        if (it == vocab_.ids.end()) return;
        queue.push({left, right, vocab_.scores[static_cast<std::size_t>(it->second)], l.length + r.length});
    };
    for (std::size_t i = 1; i < symbols.size(); ++i) tryAdd(static_cast<int>(i) - 1, static_cast<int>(i));
    while (!queue.empty()) {
        const Bigram b = queue.top();
        queue.pop();
        Symbol& l = symbols[static_cast<std::size_t>(b.left)];
        Symbol& r = symbols[static_cast<std::size_t>(b.right)];
        if (l.length == 0 || r.length == 0 || l.length + r.length != b.length) continue;  // stale
        l.length += r.length;
        r.length = 0;
        l.next = r.next;
        if (r.next >= 0) symbols[static_cast<std::size_t>(r.next)].prev = b.left;
        tryAdd(l.prev, b.left);
        tryAdd(b.left, l.next);
    }
    for (int i = 0; i >= 0; i = symbols[static_cast<std::size_t>(i)].next) {
        const Symbol& s = symbols[static_cast<std::size_t>(i)];
        const std::string_view piece = text.substr(s.start, s.length);
        if (const auto it = vocab_.ids.find(piece); it != vocab_.ids.end()) {
            out.push_back(it->second);
            continue;
        }
        for (unsigned char c : piece) {
            const TokenId byteToken = vocab_.byteTokens[c];
            if (byteToken >= 0) out.push_back(byteToken);
            else if (vocab_.unk) out.push_back(*vocab_.unk);
        }
    }
}

// Byte-level BPE on one pre-tokenized word: its bytes as mapped code points, merged by rank.
void Tokenizer::encodeBpeWord(std::string_view word, std::vector<TokenId>& out) const {
    std::string mapped;
    for (unsigned char c : word) mapped += byteToUnicode(c);
    if (ignoreMerges_)
        if (const auto it = vocab_.ids.find(mapped); it != vocab_.ids.end()) {
            out.push_back(it->second);
            return;
        }
    std::vector<std::string> parts;
    for (std::size_t i = 0; i < mapped.size();) {
        const auto n = static_cast<std::size_t>(utf8SequenceLength(static_cast<std::uint8_t>(mapped[i])));
        parts.push_back(mapped.substr(i, n));
        i += n;
    }
    std::string key;
    while (parts.size() > 1) {
        int bestRank = -1;
        std::size_t best = 0;
        for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
            key.assign(parts[i]).append(" ").append(parts[i + 1]);
            const auto it = vocab_.mergeRanks.find(key);
            if (it != vocab_.mergeRanks.end() && (bestRank < 0 || it->second < bestRank)) {
                bestRank = it->second;
                best = i;
            }
        }
        if (bestRank < 0) break;
        parts[best] += parts[best + 1];
        parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(best) + 1);
    }
    for (const std::string& p : parts) {
        if (const auto it = vocab_.ids.find(p); it != vocab_.ids.end()) {
            out.push_back(it->second);
            continue;
        }
        // Not in the vocabulary: one token per byte.
        std::size_t i = 0;
        while (i < p.size()) {
            const std::uint32_t cp = nextCodePoint(p, i);
            const auto byte = unicodeToByte(cp);
            if (byte && vocab_.byteTokens[*byte] >= 0) out.push_back(vocab_.byteTokens[*byte]);
            else if (vocab_.unk) out.push_back(*vocab_.unk);
        }
    }
}

std::string Tokenizer::tokenBytes(TokenId id, bool renderSpecial) const {
    if (!vocab_.valid(id)) return {};
    const std::string& text = vocab_.tokens[static_cast<std::size_t>(id)];
    switch (vocab_.type(id)) {
        case TokenType::Control:
        case TokenType::Unused:
            return renderSpecial ? text : std::string();
        case TokenType::Unknown:
            return vocab_.model == Vocabulary::Model::Spm ? std::string(" \xE2\x81\x87 ") : text;  // " ⁇ " as SentencePiece
        case TokenType::Byte:
            if (const auto byte = byteTokenValue(text); vocab_.model == Vocabulary::Model::Spm && byte)
                return std::string(1, static_cast<char>(*byte));
            [[fallthrough]];
        default:
            break;
    }
    if (vocab_.model == Vocabulary::Model::Spm) {
        std::string out;
        for (std::size_t i = 0; i < text.size();) {
            if (text.compare(i, kSpmSpace.size(), kSpmSpace) == 0) {
                out += ' ';
                i += kSpmSpace.size();
            } else {
                out += text[i++];
            }
        }
        return out;
    }
    if (vocab_.type(id) == TokenType::UserDefined) return text;
    std::string out;
    for (std::size_t i = 0; i < text.size();) {
        const std::size_t before = i;
        const std::uint32_t cp = nextCodePoint(text, i);
        if (const auto byte = unicodeToByte(cp)) out += static_cast<char>(*byte);
        else out.append(text, before, i - before);
    }
    return out;
}

std::string Tokenizer::decode(std::span<const TokenId> ids, bool renderSpecial) const {
    Detokenizer d(*this, renderSpecial);
    std::string text;
    for (TokenId id : ids) text += d.push(id);
    return text + d.finish();
}

Detokenizer::Detokenizer(const Tokenizer& tokenizer, bool renderSpecial, bool atStart)
    : tokenizer_(tokenizer), renderSpecial_(renderSpecial), atStart_(atStart) {}

std::string Detokenizer::push(TokenId id) {
    std::string bytes = tokenizer_.tokenBytes(id, renderSpecial_);
    const Vocabulary& v = tokenizer_.vocabulary();
    if (atStart_ && !bytes.empty()) {
        if (v.model == Vocabulary::Model::Spm && v.addSpacePrefix && bytes[0] == ' ' && v.type(id) != TokenType::Byte)
            bytes.erase(0, 1);
        atStart_ = false;
    }
    pending_ += bytes;
    // Emit every complete UTF-8 sequence; keep an incomplete tail for the next token.
    std::size_t complete = 0;
    while (complete < pending_.size()) {
        const auto lead = static_cast<std::uint8_t>(pending_[complete]);
        const int n = utf8SequenceLength(lead);
        if (complete + static_cast<std::size_t>(n) > pending_.size()) {
            bool prefixValid = true;
            for (std::size_t k = complete + 1; k < pending_.size(); ++k)
                prefixValid &= (static_cast<std::uint8_t>(pending_[k]) & 0xC0) == 0x80;
            if (prefixValid && n > 1) break;  // wait for the rest
        }
        complete += static_cast<std::size_t>(std::min<int>(n, static_cast<int>(pending_.size() - complete)));
    }
    std::string out = pending_.substr(0, complete);
    pending_.erase(0, complete);
    return out;
}

std::string Detokenizer::finish() {
    std::string out;
    if (!pending_.empty()) out = "\xEF\xBF\xBD";  // an incomplete character at the end
    pending_.clear();
    return out;
}

}  // namespace lumen::inference
