// Model loading: a GGUF that parses has its vocabulary read (refused with FormatError, or every
// id decodes and text encodes to valid ids), and is either refused by its family's reader with FormatError,
// or loads into a config and weight views that a session can run. Small models (the seeds of
// every family, and their mutations) then run two tokens, so a shape or option the reader let
// through cannot send the forward pass out of bounds.
#include <cstdint>
#include <span>

#include "inference/formats/format_error.h"
#include "inference/formats/gguf.h"
#include "inference/llm/language_model.h"
#include "inference/llm/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace lumen::inference;
    static const auto backend = makeCpuBackend({.threads = 1, .simd = true});
    try {
        auto file = std::make_shared<const GgufFile>(GgufFile::parse(std::span(data, size), "fuzz.gguf"));
        // The vocabulary: every id decodes, text encodes to valid ids.
        try {
            const Tokenizer tokenizer = Tokenizer::fromGguf(*file);
            const auto ids = tokenizer.encode("Hi <s> 3.14\n\xE2\x96\x81 caf\xC3\xA9 \xF0\x9F\xA6\x99", true, true);
            for (TokenId id : ids)
                if (!tokenizer.vocabulary().valid(id)) __builtin_trap();
            for (std::size_t i = 0; i < tokenizer.vocabulary().size() && i < 4096; ++i) {
                const auto id = static_cast<TokenId>(i);
                (void)tokenizer.decode(std::span(&id, 1));
            }
        } catch (const FormatError&) {
        }
        const auto model = LanguageModel::load(file);
        const ModelConfig& c = model->config();
        if (c.dim > 512 || c.nLayers > 8 || c.vocabSize > 4096 || c.ffnDim > 2048 || c.nHeads * c.headDim > 1024) return 0;
        LanguageSession session(model, *backend, 4);
        const std::int32_t tokens[] = {0, static_cast<std::int32_t>(c.vocabSize - 1)};
        session.prefill(tokens);
        session.decode(1 % static_cast<std::int32_t>(c.vocabSize));
    } catch (const FormatError&) {
    } catch (const BrokenModelError&) {  // weights that compute NaN: reported, not printed
    }
    return 0;
}
