#include "inference/llm/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

namespace lumen::inference {

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}

void Sampler::applyPenalties(std::vector<float>& logits, std::span<const TokenId> history) const {
    if (params_.repeatPenalty == 1.0f && params_.frequencyPenalty == 0.0f && params_.presencePenalty == 0.0f) return;
    const std::size_t window = static_cast<std::size_t>(std::max(0, params_.penaltyWindow));
    const auto recent = history.subspan(history.size() > window ? history.size() - window : 0);
    std::unordered_map<TokenId, int> counts;
    for (TokenId t : recent) ++counts[t];
    for (const auto& [token, count] : counts) {
        if (token < 0 || static_cast<std::size_t>(token) >= logits.size()) continue;
        float& l = logits[static_cast<std::size_t>(token)];
        // As llama.cpp and CTRL: divide positive logits, multiply negative ones.
        l = l > 0 ? l / params_.repeatPenalty : l * params_.repeatPenalty;
        l -= static_cast<float>(count) * params_.frequencyPenalty + params_.presencePenalty;
    }
}

std::vector<std::pair<TokenId, float>> Sampler::candidates(std::vector<float>& logits, std::span<const TokenId> history) const {
    applyPenalties(logits, history);
    std::vector<std::pair<TokenId, float>> c(logits.size());
    for (std::size_t i = 0; i < logits.size(); ++i) c[i] = {static_cast<TokenId>(i), logits[i]};
    // Highest logit first; ties by token id, so results do not depend on the sort.
    auto byLogit = [](const auto& a, const auto& b) { return a.second > b.second || (a.second == b.second && a.first < b.first); };
    if (params_.topK > 0 && static_cast<std::size_t>(params_.topK) < c.size()) {
        std::partial_sort(c.begin(), c.begin() + params_.topK, c.end(), byLogit);
        c.resize(static_cast<std::size_t>(params_.topK));
    } else {
        std::sort(c.begin(), c.end(), byLogit);
    }
    // Softmax at temperature 1 for the probability filters (as llama.cpp's chain orders them).
    auto softmax = [&](float temperature) {
        const float maxLogit = c.front().second;
        double sum = 0.0;
        std::vector<double> p(c.size());
        for (std::size_t i = 0; i < c.size(); ++i) sum += p[i] = std::exp(static_cast<double>((c[i].second - maxLogit) / temperature));
        return std::make_pair(p, sum);
    };
    {
        auto [p, sum] = softmax(1.0f);
        // top-p: the smallest prefix whose probability reaches topP.
        if (params_.topP < 1.0f) {
            double cumulative = 0.0;
            std::size_t keep = c.size();
            for (std::size_t i = 0; i < c.size(); ++i) {
                cumulative += p[i] / sum;
                if (cumulative >= params_.topP) {
                    keep = i + 1;
                    break;
                }
            }
            c.resize(keep);
        }
        // min-p: drop tokens below minP times the best token's probability.
        if (params_.minP > 0.0f) {
            std::size_t keep = 1;
            while (keep < c.size() && p[keep] >= params_.minP * p[0]) ++keep;
            c.resize(keep);
        }
    }
    auto [p, sum] = softmax(std::max(params_.temperature, 1e-6f));
    for (std::size_t i = 0; i < c.size(); ++i) c[i].second = static_cast<float>(p[i] / sum);
    return c;
}

TokenId Sampler::sample(std::vector<float>& logits, std::span<const TokenId> history) {
    if (params_.temperature <= 0.0f) {
        applyPenalties(logits, history);
        return static_cast<TokenId>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    }
    const auto c = candidates(logits, history);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    double r = uniform(rng_);
    for (const auto& [token, prob] : c) {
        r -= prob;
        if (r <= 0.0) return token;
    }
    return c.back().first;
}

}  // namespace lumen::inference
