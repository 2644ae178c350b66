#pragma once
// CLIP's text tokenizer (OpenAI's simple_tokenizer; Hugging Face's CLIPTokenizer):
//
//   clean: HTML entities unescaped (twice), runs of whitespace -> one space, trimmed, lower-cased
//   split: <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+
//          (case-insensitive; whitespace between pieces is dropped)
//   each piece: UTF-8 bytes mapped to GPT-2's printable code points, "</w>" appended to the last
//          one, then byte-pair merges by rank
//   ids: <|startoftext|> pieces... <|endoftext|>, cut to the context length (77) keeping the end
//
// The vocabulary comes from the original bpe_simple_vocab_16e6.txt.gz (merges only: the ids are
// the 256 byte symbols, the same with "</w>", each merge in order, then the two markers) or from
// a Hugging Face folder's vocab.json + merges.txt. ftfy's mojibake repair is not done (text typed
// by a user is already clean); lower-casing is Unicode's simple case mapping.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace lumen::vision {

class ClipTokenizer {
public:
    // bpe_simple_vocab_16e6.txt.gz (or the same text uncompressed).
    static ClipTokenizer fromBpeFile(const std::filesystem::path& file);
    // A Hugging Face folder's vocab.json and merges.txt.
    static ClipTokenizer fromHuggingFace(const std::filesystem::path& vocabJson, const std::filesystem::path& mergesTxt);
    // From the texts themselves (tests, fuzzing). merges: a header line, then "a b" per line.
    static ClipTokenizer fromMergesText(std::string_view merges, std::string_view displayName);
    static ClipTokenizer fromVocabAndMerges(std::string_view vocabJson, std::string_view merges, std::string_view displayName);

    // The ids of `text` without the markers.
    std::vector<std::int32_t> encode(std::string_view text) const;
    // <|startoftext|> ids <|endoftext|>, at most contextLength ids (the last kept as the end).
    std::vector<std::int32_t> tokenize(std::string_view text, int contextLength = 77) const;
    // Text back: pieces joined, "</w>" read as a space.
    std::string decode(const std::vector<std::int32_t>& ids) const;

    std::int32_t startId() const { return start_; }
    std::int32_t endId() const { return end_; }
    std::size_t vocabSize() const { return pieces_.size(); }
    // The vocabulary's symbol for an id (byte-mapped code points, "</w>" at word ends).
    const std::string& piece(std::int32_t id) const { return pieces_.at(static_cast<std::size_t>(id)); }

    // The cleaning step alone: HTML entities, whitespace, lower case.
    static std::string clean(std::string_view text);

private:
    ClipTokenizer() = default;
    void finish(std::string_view displayName);
    std::vector<std::string> bpe(const std::string& word) const;

    std::unordered_map<std::string, std::int32_t> ids_;
    std::vector<std::string> pieces_;
    std::unordered_map<std::string, int> ranks_;  // "left right" -> merge rank
    std::int32_t start_ = -1;
    std::int32_t end_ = -1;
    struct Cache {
        std::mutex mutex;
        std::unordered_map<std::string, std::vector<std::string>> words;
    };
    std::shared_ptr<Cache> cache_ = std::make_shared<Cache>();
};

}  // namespace lumen::vision
