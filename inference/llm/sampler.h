#pragma once
// Choosing the next token from the logits: penalties over a window of recent tokens, then
// top-k, top-p (nucleus), min-p and temperature, then a draw; or the argmax when temperature <= 0.
// Deterministic for a fixed seed.

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "inference/llm/vocabulary.h"

namespace lumen::inference {

struct SamplingParams {
    float temperature = 0.8f;  // <= 0: greedy
    int topK = 40;             // <= 0: off
    float topP = 0.95f;        // >= 1: off
    float minP = 0.05f;        // <= 0: off
    float repeatPenalty = 1.0f;     // 1: off
    float frequencyPenalty = 0.0f;  // 0: off
    float presencePenalty = 0.0f;   // 0: off
    int penaltyWindow = 64;         // recent tokens the penalties look at
    std::uint64_t seed = 0;
};

class Sampler {
public:
    explicit Sampler(const SamplingParams& params);
    // `logits` is modified (penalties, filtering). `history` holds the tokens so far.
    TokenId sample(std::vector<float>& logits, std::span<const TokenId> history);

    // The candidates that survive the filters, as (token, probability) sorted by probability;
    // exposed for tests and for showing alternatives.
    std::vector<std::pair<TokenId, float>> candidates(std::vector<float>& logits, std::span<const TokenId> history) const;

private:
    void applyPenalties(std::vector<float>& logits, std::span<const TokenId> history) const;
    SamplingParams params_;
    std::mt19937_64 rng_;
};

}  // namespace lumen::inference
