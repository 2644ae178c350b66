// The CLIP tokenizer's files and text: input = merges text, a NUL byte, then text to encode (a
// second NUL: what precedes it is vocab.json, for the Hugging Face route). Bad files give a
// FormatError; encoding never fails, its ids are in the vocabulary, and tokenize() respects the
// context length.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "inference/formats/format_error.h"
#include "vision/clip_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using lumen::vision::ClipTokenizer;
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const std::size_t first = input.find('\0');
    const std::string_view files = input.substr(0, first);
    const std::string_view text = first == std::string_view::npos ? input : input.substr(first + 1);
    try {
        const std::size_t second = text.find('\0');
        const ClipTokenizer tok = second == std::string_view::npos
                                      ? ClipTokenizer::fromMergesText(files, "merges")
                                      : ClipTokenizer::fromVocabAndMerges(text.substr(0, second), files, "vocab");
        const auto ids = tok.encode(text);
        for (std::int32_t id : ids)
            if (id < 0 || static_cast<std::size_t>(id) >= tok.vocabSize()) std::abort();
        const auto marked = tok.tokenize(text, 8);
        if (marked.size() > 8 || marked.front() != tok.startId() || marked.back() != tok.endId()) std::abort();
        (void)tok.decode(ids);
    } catch (const lumen::inference::FormatError&) {
    }
    return 0;
}
