#define PCRE2_CODE_UNIT_WIDTH 8
#include "vision/clip_tokenizer.h"

#include <pcre2.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <clocale>
#include <cwctype>
#include <fstream>
#include <limits>
#include <locale.h>
#include <nlohmann/json.hpp>
#include <sstream>

#include "inference/formats/format_error.h"
#include "inference/formats/text.h"
#include "inference/llm/unicode.h"

namespace lumen::vision {
namespace {

using inference::FormatError;

constexpr std::string_view kStart = "<|startoftext|>";
constexpr std::string_view kEnd = "<|endoftext|>";
constexpr std::string_view kWordEnd = "</w>";
// The original vocabulary file holds more merges than CLIP uses: 49152 - 256 - 2.
constexpr int kClipMerges = 49152 - 256 - 2;

[[noreturn]] void fail(std::string_view file, const std::string& what) { throw FormatError(std::string(file) + ": " + what); }

// A compiled expression, freed with its owner.
class Regex {
public:
    Regex(std::string_view pattern, std::uint32_t flags) {
        int error = 0;
        PCRE2_SIZE offset = 0;
        code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF | flags,
                              &error, &offset, nullptr);
        if (!code_) throw std::logic_error("CLIP tokenizer expression does not compile");
        pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);
    }
    ~Regex() { pcre2_code_free(code_); }
    Regex(const Regex&) = delete;
    Regex& operator=(const Regex&) = delete;

    // Every match, left to right (Python's re.findall); empty matches skipped.
    template <class F>
    void forEach(std::string_view text, F&& onMatch) const {
        pcre2_match_data* match = pcre2_match_data_create(1, nullptr);
        std::size_t start = 0;
        while (start < text.size()) {
            const int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), start, 0, match, nullptr);
            if (rc < 0) break;
            const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(match);
            if (ov[1] == ov[0]) {
                start = ov[0] + static_cast<std::size_t>(inference::utf8SequenceLength(static_cast<std::uint8_t>(text[ov[0]])));
                continue;
            }
            onMatch(ov[0], ov[1]);
            start = ov[1];
        }
        pcre2_match_data_free(match);
    }

private:
    pcre2_code* code_ = nullptr;
};

const Regex& splitter() {
    static const Regex r(R"(<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+)", PCRE2_CASELESS);
    return r;
}

const Regex& whitespace() {
    static const Regex r(R"(\s+)", 0);
    return r;
}

// The bytes in the order GPT-2's bytes_to_unicode lists them: the printable ones, then the rest.
std::vector<std::uint8_t> byteOrder() {
    std::vector<std::uint8_t> order;
    const auto printable = [](int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); };
    for (int b = 0; b < 256; ++b)
        if (printable(b)) order.push_back(static_cast<std::uint8_t>(b));
    for (int b = 0; b < 256; ++b)
        if (!printable(b)) order.push_back(static_cast<std::uint8_t>(b));
    return order;
}

// Named character references: the ones text typed or pasted by people carries.
const std::unordered_map<std::string_view, std::uint32_t>& entities() {
    static const std::unordered_map<std::string_view, std::uint32_t> table = {
        {"amp", '&'},       {"lt", '<'},        {"gt", '>'},        {"quot", '"'},      {"apos", '\''},     {"nbsp", 0xA0},
        {"iexcl", 0xA1},    {"cent", 0xA2},     {"pound", 0xA3},    {"curren", 0xA4},   {"yen", 0xA5},      {"brvbar", 0xA6},
        {"sect", 0xA7},     {"uml", 0xA8},      {"copy", 0xA9},     {"ordf", 0xAA},     {"laquo", 0xAB},    {"not", 0xAC},
        {"shy", 0xAD},      {"reg", 0xAE},      {"macr", 0xAF},     {"deg", 0xB0},      {"plusmn", 0xB1},   {"sup2", 0xB2},
        {"sup3", 0xB3},     {"acute", 0xB4},    {"micro", 0xB5},    {"para", 0xB6},     {"middot", 0xB7},   {"cedil", 0xB8},
        {"sup1", 0xB9},     {"ordm", 0xBA},     {"raquo", 0xBB},    {"frac14", 0xBC},   {"frac12", 0xBD},   {"frac34", 0xBE},
        {"iquest", 0xBF},   {"Agrave", 0xC0},   {"Aacute", 0xC1},   {"Acirc", 0xC2},    {"Atilde", 0xC3},   {"Auml", 0xC4},
        {"Aring", 0xC5},    {"AElig", 0xC6},    {"Ccedil", 0xC7},   {"Egrave", 0xC8},   {"Eacute", 0xC9},   {"Ecirc", 0xCA},
        {"Euml", 0xCB},     {"Igrave", 0xCC},   {"Iacute", 0xCD},   {"Icirc", 0xCE},    {"Iuml", 0xCF},     {"ETH", 0xD0},
        {"Ntilde", 0xD1},   {"Ograve", 0xD2},   {"Oacute", 0xD3},   {"Ocirc", 0xD4},    {"Otilde", 0xD5},   {"Ouml", 0xD6},
        {"times", 0xD7},    {"Oslash", 0xD8},   {"Ugrave", 0xD9},   {"Uacute", 0xDA},   {"Ucirc", 0xDB},    {"Uuml", 0xDC},
        {"Yacute", 0xDD},   {"THORN", 0xDE},    {"szlig", 0xDF},    {"agrave", 0xE0},   {"aacute", 0xE1},   {"acirc", 0xE2},
        {"atilde", 0xE3},   {"auml", 0xE4},     {"aring", 0xE5},    {"aelig", 0xE6},    {"ccedil", 0xE7},   {"egrave", 0xE8},
        {"eacute", 0xE9},   {"ecirc", 0xEA},    {"euml", 0xEB},     {"igrave", 0xEC},   {"iacute", 0xED},   {"icirc", 0xEE},
        {"iuml", 0xEF},     {"eth", 0xF0},      {"ntilde", 0xF1},   {"ograve", 0xF2},   {"oacute", 0xF3},   {"ocirc", 0xF4},
        {"otilde", 0xF5},   {"ouml", 0xF6},     {"divide", 0xF7},   {"oslash", 0xF8},   {"ugrave", 0xF9},   {"uacute", 0xFA},
        {"ucirc", 0xFB},    {"uuml", 0xFC},     {"yacute", 0xFD},   {"thorn", 0xFE},    {"yuml", 0xFF},     {"ndash", 0x2013},
        {"mdash", 0x2014},  {"lsquo", 0x2018},  {"rsquo", 0x2019},  {"sbquo", 0x201A},  {"ldquo", 0x201C},  {"rdquo", 0x201D},
        {"bdquo", 0x201E},  {"dagger", 0x2020}, {"bull", 0x2022},   {"hellip", 0x2026}, {"prime", 0x2032},  {"lsaquo", 0x2039},
        {"rsaquo", 0x203A}, {"euro", 0x20AC},   {"trade", 0x2122},  {"larr", 0x2190},   {"rarr", 0x2192},   {"hearts", 0x2665},
    };
    return table;
}

// Python's html.unescape for numeric references and the entities above (with their ';').
std::string unescapeHtml(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        if (s[i] != '&') {
            out += s[i++];
            continue;
        }
        const std::size_t semi = s.find(';', i);
        if (semi != std::string_view::npos && semi - i <= 32) {
            const std::string_view name = s.substr(i + 1, semi - i - 1);
            std::uint32_t cp = 0;
            bool ok = false;
            if (name.size() >= 2 && name[0] == '#') {
                const bool hex = name[1] == 'x' || name[1] == 'X';
                const std::string_view digits = name.substr(hex ? 2 : 1);
                ok = !digits.empty() && digits.size() <= 8;
                for (char c : digits) {
                    const int d = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
                                  : hex && std::isxdigit(static_cast<unsigned char>(c)) ? (std::tolower(static_cast<unsigned char>(c)) - 'a' + 10)
                                                                                        : -1;
                    if (d < 0) ok = false;
                    else cp = cp * (hex ? 16 : 10) + static_cast<std::uint32_t>(d);
                }
                if (ok && (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))) cp = 0xFFFD;
            } else if (const auto it = entities().find(name); it != entities().end()) {
                cp = it->second;
                ok = true;
            }
            if (ok) {
                inference::appendUtf8(out, cp);
                i = semi + 1;
                continue;
            }
        }
        out += s[i++];
    }
    return out;
}

// Unicode simple lower-casing, through the C library's UTF-8 locale (ASCII when it has none).
std::string lowerCase(std::string_view s) {
    static const locale_t utf8 = [] {
        locale_t l = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
        return l;
    }();
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t at = i;
        const std::uint32_t cp = inference::nextCodePoint(s, i);
        if (cp == 0xFFFD && i - at == 1) {  // an invalid byte stays as it was
            out += s[at];
            continue;
        }
        std::uint32_t lower = cp;
        if (cp < 0x80) lower = static_cast<std::uint32_t>(std::tolower(static_cast<int>(cp)));
        else if (utf8) lower = static_cast<std::uint32_t>(towlower_l(static_cast<wint_t>(cp), utf8));
        inference::appendUtf8(out, lower);
    }
    return out;
}

std::string readAll(const std::filesystem::path& file, bool gzip) {
    if (gzip) {
        gzFile f = gzopen(file.string().c_str(), "rb");  // also reads uncompressed files as they are
        if (!f) fail(file.string(), "cannot be read");
        std::string text;
        char buffer[1 << 16];
        int n = 0;
        while ((n = gzread(f, buffer, sizeof buffer)) > 0) {
            text.append(buffer, static_cast<std::size_t>(n));
            if (text.size() > (64u << 20)) {
                gzclose(f);
                fail(file.string(), "is over 64 MB uncompressed: not a CLIP vocabulary");
            }
        }
        const bool broken = n < 0;
        gzclose(f);
        if (broken) fail(file.string(), "is not a readable gzip file (damaged or truncated)");
        return text;
    }
    std::ifstream in(file, std::ios::binary);
    if (!in) fail(file.string(), "cannot be read");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// The merge lines ("left right"), skipping blank lines and the first line when it is a header:
// always in the original file (its "bpe_simple_vocab_16e6.txt#version: 0.2"), when it starts with
// '#' in Hugging Face's merges.txt.
std::vector<std::pair<std::string, std::string>> parseMerges(std::string_view text, std::string_view file, std::size_t limit, bool firstIsHeader) {
    std::vector<std::pair<std::string, std::string>> merges;
    std::size_t lineNo = 0;
    for (std::size_t pos = 0; pos < text.size() && merges.size() < limit;) {
        std::size_t nl = text.find('\n', pos);
        if (nl == std::string_view::npos) nl = text.size();
        std::string_view line = text.substr(pos, nl - pos);
        pos = nl + 1;
        ++lineNo;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty() || (lineNo == 1 && (firstIsHeader || line.starts_with("#")))) continue;
        const std::size_t space = line.find(' ');
        if (space == std::string_view::npos || space == 0 || space + 1 >= line.size() || line.find(' ', space + 1) != std::string_view::npos)
            fail(file, "line " + std::to_string(lineNo) + " is not a merge (two symbols separated by one space)");
        merges.emplace_back(std::string(line.substr(0, space)), std::string(line.substr(space + 1)));
    }
    return merges;
}

}  // namespace

std::string ClipTokenizer::clean(std::string_view text) {
    const std::string unescaped = unescapeHtml(unescapeHtml(text));
    std::string spaced;
    std::size_t last = 0;
    whitespace().forEach(unescaped, [&](std::size_t b, std::size_t e) {
        spaced.append(unescaped, last, b - last);
        spaced += ' ';
        last = e;
    });
    spaced.append(unescaped, last);
    const std::size_t first = spaced.find_first_not_of(' '), end = spaced.find_last_not_of(' ');
    if (first == std::string::npos) return {};
    return lowerCase(std::string_view(spaced).substr(first, end - first + 1));
}

ClipTokenizer ClipTokenizer::fromMergesText(std::string_view text, std::string_view displayName) {
    ClipTokenizer t;
    const auto merges = parseMerges(text, displayName, kClipMerges, true);
    for (std::uint8_t b : byteOrder()) t.pieces_.push_back(inference::byteToUnicode(b));
    for (std::size_t i = 0; i < 256; ++i) t.pieces_.push_back(t.pieces_[i] + std::string(kWordEnd));
    for (const auto& [a, b] : merges) t.pieces_.push_back(a + b);
    t.pieces_.emplace_back(kStart);
    t.pieces_.emplace_back(kEnd);
    for (std::size_t i = 0; i < t.pieces_.size(); ++i) t.ids_.emplace(t.pieces_[i], static_cast<std::int32_t>(i));
    for (std::size_t i = 0; i < merges.size(); ++i) t.ranks_.emplace(merges[i].first + " " + merges[i].second, static_cast<int>(i));
    t.finish(displayName);
    return t;
}

ClipTokenizer ClipTokenizer::fromVocabAndMerges(std::string_view vocabJson, std::string_view mergesText, std::string_view displayName) {
    ClipTokenizer t;
    nlohmann::json vocab;
    if (inference::jsonNestingDepth(vocabJson) > inference::kMaxJsonDepth)
        fail(displayName, "vocab.json nests deeper than " + std::to_string(inference::kMaxJsonDepth) + " levels");
    try {
        vocab = nlohmann::json::parse(vocabJson.begin(), vocabJson.end());
    } catch (const nlohmann::json::exception& e) {
        fail(displayName, std::string("vocab.json is not valid JSON (") + e.what() + ")");
    }
    if (!vocab.is_object() || vocab.empty()) fail(displayName, "vocab.json is not an object of token -> id");
    if (vocab.size() > 10'000'000) fail(displayName, "vocab.json has too many tokens");
    t.pieces_.resize(vocab.size());
    for (const auto& [piece, id] : vocab.items()) {
        if (!id.is_number_integer() || id.get<std::int64_t>() < 0 || id.get<std::int64_t>() >= static_cast<std::int64_t>(vocab.size()))
            fail(displayName, "vocab.json: the id of \"" + piece + "\" is not in 0.." + std::to_string(vocab.size() - 1));
        auto& slot = t.pieces_[id.get<std::size_t>()];
        if (!slot.empty()) fail(displayName, "vocab.json: id " + std::to_string(id.get<std::int64_t>()) + " is given twice");
        slot = piece;
        t.ids_.emplace(piece, id.get<std::int32_t>());
    }
    const auto merges = parseMerges(mergesText, displayName, std::numeric_limits<std::size_t>::max(), false);
    for (std::size_t i = 0; i < merges.size(); ++i) t.ranks_.emplace(merges[i].first + " " + merges[i].second, static_cast<int>(i));
    t.finish(displayName);
    return t;
}

void ClipTokenizer::finish(std::string_view displayName) {
    const auto start = ids_.find(std::string(kStart)), end = ids_.find(std::string(kEnd));
    if (start == ids_.end() || end == ids_.end()) fail(displayName, "the vocabulary has no <|startoftext|> or <|endoftext|> token");
    start_ = start->second;
    end_ = end->second;
    for (std::uint8_t b : byteOrder())
        for (const std::string& piece : {inference::byteToUnicode(b), inference::byteToUnicode(b) + std::string(kWordEnd)})
            if (!ids_.contains(piece)) fail(displayName, "the vocabulary lacks the byte symbol \"" + piece + "\"");
}

ClipTokenizer ClipTokenizer::fromBpeFile(const std::filesystem::path& file) {
    return fromMergesText(readAll(file, true), file.string());
}

ClipTokenizer ClipTokenizer::fromHuggingFace(const std::filesystem::path& vocabJson, const std::filesystem::path& mergesTxt) {
    return fromVocabAndMerges(readAll(vocabJson, false), readAll(mergesTxt, false), vocabJson.parent_path().string());
}

std::vector<std::string> ClipTokenizer::bpe(const std::string& word) const {
    {
        std::lock_guard lock(cache_->mutex);
        if (const auto it = cache_->words.find(word); it != cache_->words.end()) return it->second;
    }
    // Symbols: one per mapped byte (code point), the last with the end-of-word mark.
    std::vector<std::string> symbols;
    for (std::size_t i = 0; i < word.size();) {
        const std::size_t at = i;
        inference::nextCodePoint(word, i);
        symbols.push_back(word.substr(at, i - at));
    }
    symbols.back() += kWordEnd;
    // Merge the best-ranked adjacent pair, every occurrence of it, until none is known.
    while (symbols.size() > 1) {
        int best = std::numeric_limits<int>::max();
        std::string bestKey;
        for (std::size_t i = 0; i + 1 < symbols.size(); ++i) {
            const auto it = ranks_.find(symbols[i] + " " + symbols[i + 1]);
            if (it != ranks_.end() && it->second < best) {
                best = it->second;
                bestKey = it->first;
            }
        }
        if (bestKey.empty()) break;
        const std::size_t space = bestKey.find(' ');
        const std::string left = bestKey.substr(0, space), right = bestKey.substr(space + 1);
        std::vector<std::string> merged;
        for (std::size_t i = 0; i < symbols.size();) {
            if (i + 1 < symbols.size() && symbols[i] == left && symbols[i + 1] == right) {
                merged.push_back(left + right);
                i += 2;
            } else {
                merged.push_back(symbols[i++]);
            }
        }
        symbols = std::move(merged);
    }
    std::lock_guard lock(cache_->mutex);
    if (cache_->words.size() < 100'000) cache_->words.emplace(word, symbols);
    return symbols;
}

std::vector<std::int32_t> ClipTokenizer::encode(std::string_view text) const {
    const std::string cleaned = clean(text);
    std::vector<std::int32_t> ids;
    splitter().forEach(cleaned, [&](std::size_t b, std::size_t e) {
        const std::string_view piece = std::string_view(cleaned).substr(b, e - b);
        if (piece == kStart || piece == kEnd) {
            ids.push_back(piece == kStart ? start_ : end_);
            return;
        }
        std::string mapped;
        for (char c : piece) mapped += inference::byteToUnicode(static_cast<std::uint8_t>(c));
        for (const std::string& symbol : bpe(mapped)) {
            const auto it = ids_.find(symbol);
            if (it == ids_.end()) {
                // A merge result the vocabulary lacks (a broken vocabulary): fall back to its bytes.
                std::size_t i = 0;
                const std::string_view s = symbol;
                const bool wordEnd = s.ends_with(kWordEnd);
                const std::string_view body = wordEnd ? s.substr(0, s.size() - kWordEnd.size()) : s;
                while (i < body.size()) {
                    const std::size_t at = i;
                    inference::nextCodePoint(body, i);
                    std::string one(body.substr(at, i - at));
                    if (wordEnd && i >= body.size()) one += kWordEnd;
                    const auto byteIt = ids_.find(one);
                    if (byteIt != ids_.end()) ids.push_back(byteIt->second);
                }
                continue;
            }
            ids.push_back(it->second);
        }
    });
    return ids;
}

std::vector<std::int32_t> ClipTokenizer::tokenize(std::string_view text, int contextLength) const {
    std::vector<std::int32_t> ids{start_};
    const auto body = encode(text);
    ids.insert(ids.end(), body.begin(), body.end());
    ids.push_back(end_);
    if (contextLength >= 2 && ids.size() > static_cast<std::size_t>(contextLength)) {
        ids.resize(static_cast<std::size_t>(contextLength));
        ids.back() = end_;
    }
    return ids;
}

std::string ClipTokenizer::decode(const std::vector<std::int32_t>& ids) const {
    std::string mapped;
    for (std::int32_t id : ids) {
        if (id < 0 || static_cast<std::size_t>(id) >= pieces_.size() || id == start_ || id == end_) continue;
        mapped += pieces_[static_cast<std::size_t>(id)];
    }
    // Back from the mapped code points to bytes; the word-end mark becomes a space.
    std::string out;
    for (std::size_t i = 0; i < mapped.size();) {
        if (std::string_view(mapped).substr(i).starts_with(kWordEnd)) {
            out += ' ';
            i += kWordEnd.size();
            continue;
        }
        const std::size_t at = i;
        const std::uint32_t cp = inference::nextCodePoint(mapped, i);
        if (const auto b = inference::unicodeToByte(cp)) out += static_cast<char>(*b);
        else out.append(mapped, at, i - at);
    }
    return out;
}

}  // namespace lumen::vision
