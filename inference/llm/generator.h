#pragma once
// The generation loop: prefill the prompt (reusing the KV cache of the longest common prefix
// with the previous call), then sample token by token, streaming UTF-8-safe text, until EOS/EOT,
// a stop string, the token limit, a full context or cancellation.

#include <atomic>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "inference/llm/language_model.h"
#include "inference/llm/sampler.h"
#include "inference/llm/tokenizer.h"

namespace lumen::inference {

struct GenerationParams {
    int maxTokens = 256;
    std::vector<std::string> stopStrings;
    SamplingParams sampling;
    bool renderSpecial = false;  // special tokens in the text (a harmony reply's message markers)
};

enum class StopReason { EndOfGeneration, StopString, MaxTokens, ContextFull, Cancelled };
std::string_view toString(StopReason reason);

struct GenerationResult {
    std::string text;                 // the generated text (without a matched stop string)
    std::vector<TokenId> tokens;      // the generated tokens
    StopReason stopReason = StopReason::MaxTokens;
    int promptTokens = 0;
    int reusedPromptTokens = 0;       // served from the KV cache of the previous call
    double ttftMs = 0.0;              // start to the first generated token
    double prefillTokensPerSecond = 0.0;
    double decodeTokensPerSecond = 0.0;
};

// Called with each piece of text as it becomes final; return false to stop.
using TextCallback = std::function<bool(std::string_view piece)>;
// Called with the logits of every decoded position (prompt positions, then generated steps).
using LogitsCallback = std::function<void(std::span<const float> logits)>;

// Input-embedding rows that stand in a prompt where its ids are negative (an image's projected
// features): placeholder id -> the row's `dim` floats (host memory, alive during generate()).
using EmbeddingRows = std::unordered_map<TokenId, const float*>;
// `rows` placeholder ids for an image: derived from its key (imageRowsKey), so asking about the
// same image again at the same place reuses the KV cache as repeated text does.
std::vector<TokenId> imagePlaceholders(std::uint64_t imageKey, std::int64_t rows);
// The key of an image's rows as one projector computes them: the projector's key (what its row
// cache is keyed by) and the image's content hash, so another projector's rows of the same image
// never pass for these in the KV cache.
std::uint64_t imageRowsKey(std::string_view projectorKey, std::string_view imageHash);

class Generator {
public:
    Generator(LanguageSession& session, const Tokenizer& tokenizer) : session_(session), tokenizer_(tokenizer) {}

    // std::length_error when the prompt does not fit the context.
    // Negative ids in the prompt are looked up in `embeddings` (std::invalid_argument when absent).
    GenerationResult generate(std::span<const TokenId> prompt, const GenerationParams& params, const TextCallback& onText = {},
                              const std::atomic<bool>* cancel = nullptr, const LogitsCallback& onLogits = {},
                              const EmbeddingRows* embeddings = nullptr);

private:
    LanguageSession& session_;
    const Tokenizer& tokenizer_;
    std::vector<TokenId> cached_;  // the tokens whose keys and values the session holds
};

}  // namespace lumen::inference
