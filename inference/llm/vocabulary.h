#pragma once
// A model's vocabulary as GGUF stores it (tokenizer.ggml.*): token strings, scores, types,
// BPE merges and the special token ids.

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <string>
#include <unordered_map>
#include <vector>

namespace lumen::inference {

class GgufFile;

using TokenId = std::int32_t;

// tokenizer.ggml.token_type values.
enum class TokenType : std::int32_t {
    Undefined = 0, Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6,
};

// Lets the maps below be searched with a string_view, without building a std::string.
struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
template <typename V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

struct Vocabulary {
    enum class Model { Spm, Bpe };

    Model model = Model::Spm;
    std::string pre;  // tokenizer.ggml.pre ("default", "llama-bpe", "qwen2", ...)
    std::vector<std::string> tokens;
    std::vector<float> scores;
    std::vector<TokenType> types;
    StringMap<TokenId> ids;
    StringMap<int> mergeRanks;  // "left right" -> rank (BPE)
    std::array<TokenId, 256> byteTokens{};            // the token for each raw byte, -1 if none

    std::optional<TokenId> bos, eos, eot, eom, unk, pad;
    std::vector<TokenId> moreEnds;  // other tokens that end a reply (harmony: <|call|>, <|endoftext|>)
    bool addBos = false;
    bool addEos = false;
    bool addSpacePrefix = true;
    // Special tokens after which whitespace in the text is dropped when the text is tokenized (the
    // "rstrip" attribute, which GGUF files do not carry): llama.cpp gives it to Phi-3's control
    // and user-defined tokens and "</s>" (not "<unk>", "<s>" or "<|endoftext|>"), by the name.
    std::vector<TokenId> rstrip;  // sorted

    // Reads tokenizer.ggml.* from the file; FormatError when missing or inconsistent.
    static Vocabulary fromGguf(const GgufFile& file);

    std::size_t size() const { return tokens.size(); }
    bool valid(TokenId id) const { return id >= 0 && static_cast<std::size_t>(id) < tokens.size(); }
    TokenType type(TokenId id) const { return types[static_cast<std::size_t>(id)]; }
    std::optional<TokenId> find(std::string_view text) const;
    // True for tokens that end a reply: EOS, EOT, EOM and moreEnds.
    bool isEndOfGeneration(TokenId id) const;
};

// The byte a SentencePiece byte token's text "<0xHH>" names; nullopt for any other text.
std::optional<std::uint8_t> byteTokenValue(std::string_view text);

}  // namespace lumen::inference
