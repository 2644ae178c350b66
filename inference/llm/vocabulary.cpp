#include "inference/llm/vocabulary.h"

#include <algorithm>
#include <cctype>

#include "inference/formats/gguf.h"
#include "inference/llm/unicode.h"

namespace lumen::inference {

std::optional<std::uint8_t> byteTokenValue(std::string_view text) {
    if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return std::nullopt;
    const auto digit = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        return -1;
    };
    const int hi = digit(text[3]), lo = digit(text[4]);
    if (hi < 0 || lo < 0) return std::nullopt;
    return static_cast<std::uint8_t>(hi * 16 + lo);
}
namespace {

std::optional<TokenId> optionalId(const GgufFile& f, const char* key, std::size_t vocabSize) {
    if (!f.contains(key)) return std::nullopt;
    const std::int64_t id = f.getInt(key);
    // Converters write -1 or 0xFFFFFFFF for "none".
    if (id < 0 || id == 0xFFFFFFFF) return std::nullopt;
    if (static_cast<std::uint64_t>(id) >= vocabSize)
        throw FormatError(f.displayName() + ": metadata '" + key + "': token id " + std::to_string(id) +
                          " is outside the vocabulary of " + std::to_string(vocabSize));
    return static_cast<TokenId>(id);
}

}  // namespace

std::optional<TokenId> Vocabulary::find(std::string_view text) const {
    const auto it = ids.find(text);
    if (it == ids.end()) return std::nullopt;
    return it->second;
}

bool Vocabulary::isEndOfGeneration(TokenId id) const {
    return (eos && id == *eos) || (eot && id == *eot) || (eom && id == *eom) || std::find(moreEnds.begin(), moreEnds.end(), id) != moreEnds.end();
}

Vocabulary Vocabulary::fromGguf(const GgufFile& f) {
    Vocabulary v;
    const std::string model = f.getString("tokenizer.ggml.model");
    if (model == "llama") v.model = Model::Spm;
    else if (model == "gpt2") v.model = Model::Bpe;
    else
        throw FormatError(f.displayName() + ": tokenizer '" + model +
                          "' is not supported (Lumen reads SentencePiece 'llama' and byte-level BPE 'gpt2' vocabularies)");
    v.pre = f.getString("tokenizer.ggml.pre", "default");

    const auto tokens = f.getStringArray("tokenizer.ggml.tokens");
    if (tokens.empty()) throw FormatError(f.displayName() + ": the vocabulary is empty");
    if (tokens.size() > (1u << 24)) throw FormatError(f.displayName() + ": the vocabulary has over 16M tokens");
    v.tokens.assign(tokens.begin(), tokens.end());
    const std::size_t n = v.tokens.size();
    if (f.contains("tokenizer.ggml.scores")) {
        v.scores = f.getFloatArray("tokenizer.ggml.scores");
        if (v.scores.size() != n)
            throw FormatError(f.displayName() + ": " + std::to_string(v.scores.size()) + " token scores for " +
                              std::to_string(n) + " tokens");
    } else {
        v.scores.assign(n, 0.0f);
    }
    v.types.assign(n, TokenType::Normal);
    if (f.contains("tokenizer.ggml.token_type")) {
        const auto types = f.getIntArray("tokenizer.ggml.token_type");
        if (types.size() != n)
            throw FormatError(f.displayName() + ": " + std::to_string(types.size()) + " token types for " +
                              std::to_string(n) + " tokens");
        for (std::size_t i = 0; i < n; ++i)
            v.types[i] = types[i] >= 0 && types[i] <= 6 ? static_cast<TokenType>(types[i]) : TokenType::Normal;
    }
    v.ids.reserve(n);
    for (std::size_t i = 0; i < n; ++i) v.ids.emplace(v.tokens[i], static_cast<TokenId>(i));  // first wins
    // A SentencePiece byte token stands for the byte its text names: "<0xHH>", nothing else.
    if (v.model == Model::Spm)
        for (std::size_t i = 0; i < n; ++i)
            if (v.types[i] == TokenType::Byte && !byteTokenValue(v.tokens[i]))
                throw FormatError(f.displayName() + ": token " + std::to_string(i) + " is a byte token, but its text is not <0xHH>");

    v.byteTokens.fill(-1);
    if (v.model == Model::Spm) {
        static const char* kHex = "0123456789ABCDEF";
        for (int b = 0; b < 256; ++b) {
            const std::string name = std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">";
            if (const auto id = v.find(name)) v.byteTokens[static_cast<std::size_t>(b)] = *id;
        }
    } else {
        for (int b = 0; b < 256; ++b)
            if (const auto id = v.find(byteToUnicode(static_cast<std::uint8_t>(b)))) v.byteTokens[static_cast<std::size_t>(b)] = *id;
        const auto merges = f.getStringArray("tokenizer.ggml.merges");
        v.mergeRanks.reserve(merges.size());
        for (std::size_t r = 0; r < merges.size(); ++r) {
            const std::string_view m = merges[r];
            // A merge is "left right"; the left part may itself begin with a space-like char
            // only in non-byte-level vocabularies, so split at the first space after position 0.
            const std::size_t space = m.find(' ', 1);
            if (space == std::string_view::npos)
                throw FormatError(f.displayName() + ": merge " + std::to_string(r) + " '" + std::string(m) + "' has no space");
            v.mergeRanks.emplace(std::string(m), static_cast<int>(r));
        }
    }

    v.bos = optionalId(f, "tokenizer.ggml.bos_token_id", n);
    v.eos = optionalId(f, "tokenizer.ggml.eos_token_id", n);
    v.eot = optionalId(f, "tokenizer.ggml.eot_token_id", n);
    v.eom = optionalId(f, "tokenizer.ggml.eom_token_id", n);
    v.unk = optionalId(f, "tokenizer.ggml.unknown_token_id", n);
    v.pad = optionalId(f, "tokenizer.ggml.padding_token_id", n);
    // OpenAI's harmony vocabulary (gpt-oss): "<|end|>" ends each message of a reply, and the
    // reply goes on (the analysis message, then the final one); "<|return|>" ends it, and so do
    // "<|call|>" (a tool call) and "<|endoftext|>", as llama.cpp and the model's generation
    // config count them.
    const auto returnId = v.find("<|return|>"), callId = v.find("<|call|>");
    if (returnId && callId && v.find("<|channel|>")) {
        if (!v.eos) v.eos = returnId;
        if (v.eot && *v.eot == v.find("<|end|>")) v.eot.reset();
        for (const auto id : {returnId, callId, v.find("<|endoftext|>")})
            if (id && !v.isEndOfGeneration(*id)) v.moreEnds.push_back(*id);
    }
    // Models that predate eot_token_id mark their end-of-turn token only by its text.
    else if (!v.eot)
        for (const char* text : {"<|eot_id|>", "<|im_end|>", "<end_of_turn>", "<|end|>", "<|endoftext|>", "<｜end▁of▁sentence｜>"})
            if (const auto id = v.find(text); id && v.type(*id) == TokenType::Control && (!v.eos || *id != *v.eos)) {
                v.eot = *id;
                break;
            }
    // Phi-3's special tokens strip the whitespace after them (llama.cpp: llama_vocab::load, by the
    // model's name).
    std::string name = f.getString("general.name", "");
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos) {
        for (std::size_t i = 0; i < n; ++i) {
            const TokenType t = v.types[i];
            const std::string& text = v.tokens[i];
            const bool special = t == TokenType::Control || t == TokenType::UserDefined || t == TokenType::Unknown;
            if ((special || text == "</s>") && text != "<unk>" && text != "<s>" && text != "<|endoftext|>") v.rstrip.push_back(static_cast<TokenId>(i));
        }
    }
    v.addBos = f.getBool("tokenizer.ggml.add_bos_token", v.model == Model::Spm);
    v.addEos = f.getBool("tokenizer.ggml.add_eos_token", false);
    v.addSpacePrefix = f.getBool("tokenizer.ggml.add_space_prefix", v.model == Model::Spm);
    return v;
}

}  // namespace lumen::inference
