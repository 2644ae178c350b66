#include "inference/llm/generator.h"

#include <algorithm>
#include <iterator>
#include <chrono>
#include <stdexcept>

namespace lumen::inference {
namespace {

using Clock = std::chrono::steady_clock;

double msSince(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// The longest suffix of `text` that is a prefix of some stop string: held back, since the next
// piece may complete the stop string.
std::size_t heldBack(std::string_view text, const std::vector<std::string>& stops) {
    std::size_t hold = 0;
    for (const auto& s : stops)
        for (std::size_t n = std::min(s.size() - 1, text.size()); n > hold; --n)
            if (text.substr(text.size() - n) == std::string_view(s).substr(0, n)) {
                hold = n;
                break;
            }
    return hold;
}

}  // namespace

std::string_view toString(StopReason reason) {
    switch (reason) {
        case StopReason::EndOfGeneration: return "end of generation";
        case StopReason::StopString: return "stop string";
        case StopReason::MaxTokens: return "token limit";
        case StopReason::ContextFull: return "context full";
        case StopReason::Cancelled: return "cancelled";
    }
    return "?";
}

std::uint64_t imageRowsKey(std::string_view projectorKey, std::string_view imageHash) {
    std::uint64_t h = 1469598103934665603ull;  // FNV-1a over both, a zero byte between
    const auto mix = [&h](std::string_view text) {
        for (char c : text) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    };
    mix(projectorKey);
    h = h * 1099511628211ull;
    mix(imageHash);
    return h;
}

std::vector<TokenId> imagePlaceholders(std::uint64_t imageKey, std::int64_t rows) {
    std::vector<TokenId> ids;
    for (std::int64_t r = 0; r < rows; ++r) {
        // A negative id per row from a 64-bit mix of the key and the row (splitmix64's finalizer).
        std::uint64_t z = imageKey + 0x9E3779B97F4A7C15ull * static_cast<std::uint64_t>(r + 1);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        ids.push_back(-1 - static_cast<TokenId>(z & 0x3FFFFFFF));
    }
    return ids;
}

GenerationResult Generator::generate(std::span<const TokenId> prompt, const GenerationParams& params, const TextCallback& onText,
                                     const std::atomic<bool>* cancel, const LogitsCallback& onLogits, const EmbeddingRows* embeddings) {
    const std::int64_t dim = session_.model().config().dim;
    for (TokenId t : prompt)
        if (t < 0 && (!embeddings || !embeddings->contains(t)))
            throw std::invalid_argument("the prompt has an image position without its embedding");
    if (prompt.empty()) throw std::invalid_argument("the prompt is empty (it needs at least a BOS token)");
    if (static_cast<std::int64_t>(prompt.size()) >= session_.contextSize())
        throw std::length_error("the prompt has " + std::to_string(prompt.size()) + " tokens; the context holds " +
                                std::to_string(session_.contextSize()));
    for (const auto& s : params.stopStrings)
        if (s.empty()) throw std::invalid_argument("stop strings cannot be empty");

    GenerationResult result;
    result.promptTokens = static_cast<int>(prompt.size());
    const auto start = Clock::now();

    // Reuse the cached prefix; always run at least the last prompt token to get its logits.
    std::size_t common = 0;
    while (common < cached_.size() && common < prompt.size() && cached_[common] == prompt[common]) ++common;
    if (common == prompt.size()) --common;
    if (static_cast<std::int64_t>(common) > session_.position()) common = static_cast<std::size_t>(session_.position());
    session_.truncate(static_cast<std::int64_t>(common));
    common = static_cast<std::size_t>(session_.position());  // (less when a sliding window was lost)
    cached_.resize(common);
    result.reusedPromptTokens = static_cast<int>(common);

    // Prefill in chunks: each weight matrix is read once per chunk, and cancellation is
    // checked between chunks.
    constexpr std::size_t kChunk = 256;
    const std::vector<float>* logits = nullptr;
    const auto vocab = static_cast<std::size_t>(session_.model().config().vocabSize);
    std::vector<float> rows;
    for (std::size_t i = common; i < prompt.size();) {
        // A run of tokens, or of image rows, at most kChunk long.
        const bool image = prompt[i] < 0;
        std::size_t end = i + 1;
        // (a recurrent model stops before the last token, to keep its state there: regenerating
        // the reply then runs one token)
        const std::size_t stop = session_.recurrent() && i + 1 < prompt.size() ? prompt.size() - 1 : prompt.size();
        while (end < stop && end - i < kChunk && (prompt[end] < 0) == image) ++end;
        const auto chunk = prompt.subspan(i, end - i);
        i = end;
        const std::vector<float>* out = nullptr;
        if (image) {
            rows.resize(chunk.size() * static_cast<std::size_t>(dim));
            for (std::size_t r = 0; r < chunk.size(); ++r)
                std::copy_n(embeddings->at(chunk[r]), dim, rows.begin() + static_cast<std::ptrdiff_t>(r * static_cast<std::size_t>(dim)));
            out = &session_.prefillEmbeddings(rows, static_cast<bool>(onLogits));
        } else {
            out = &session_.prefill(chunk, static_cast<bool>(onLogits));
        }
        cached_.insert(cached_.end(), chunk.begin(), chunk.end());
        if (end + 1 == prompt.size()) session_.snapshot();
        if (onLogits) {
            for (std::size_t t = 0; t < chunk.size(); ++t) onLogits(std::span<const float>(*out).subspan(t * vocab, vocab));
            logits = &session_.lastLogits();
        } else {
            logits = out;
        }
        if (cancel && cancel->load()) {
            result.stopReason = StopReason::Cancelled;
            return result;
        }
    }
    const double prefillMs = msSince(start);
    const auto prefilled = prompt.size() - common;
    result.prefillTokensPerSecond = prefillMs > 0 ? 1000.0 * static_cast<double>(prefilled) / prefillMs : 0.0;

    Sampler sampler(params.sampling);
    // The reply continues the prompt's text, if the prompt has any (not just BOS).
    const bool promptHasText = std::any_of(prompt.begin(), prompt.end(), [&](TokenId t) { return t >= 0 && !tokenizer_.tokenBytes(t).empty(); });
    Detokenizer detokenizer(tokenizer_, params.renderSpecial, !promptHasText);
    // The repetition penalties look at tokens only, not image rows.
    std::vector<TokenId> history;
    std::copy_if(prompt.begin(), prompt.end(), std::back_inserter(history), [](TokenId t) { return t >= 0; });
    std::vector<float> work;
    std::string pending;  // text not yet handed out (may start a stop string)
    const auto decodeStart = Clock::now();
    auto emit = [&](std::string_view piece) {
        result.text += piece;
        if (onText && !piece.empty() && !onText(piece)) result.stopReason = StopReason::Cancelled;
    };
    bool stopped = false;
    while (!stopped) {
        if (static_cast<int>(result.tokens.size()) >= params.maxTokens) {
            result.stopReason = StopReason::MaxTokens;
            break;
        }
        work = *logits;
        const TokenId next = sampler.sample(work, history);
        if (result.tokens.empty()) result.ttftMs = msSince(start);
        result.tokens.push_back(next);
        history.push_back(next);
        if (tokenizer_.vocabulary().isEndOfGeneration(next)) {
            result.stopReason = StopReason::EndOfGeneration;
            break;
        }
        pending += detokenizer.push(next);
        // A stop string ends the reply; text before it is kept.
        for (const auto& s : params.stopStrings) {
            const auto at = pending.find(s);
            if (at != std::string::npos) {
                emit(std::string_view(pending).substr(0, at));
                pending.clear();
                result.stopReason = StopReason::StopString;
                stopped = true;
                break;
            }
        }
        if (stopped) break;
        const std::size_t hold = heldBack(pending, params.stopStrings);
        emit(std::string_view(pending).substr(0, pending.size() - hold));
        pending.erase(0, pending.size() - hold);
        if (result.stopReason == StopReason::Cancelled || (cancel && cancel->load())) {
            result.stopReason = StopReason::Cancelled;
            break;
        }
        if (static_cast<int>(result.tokens.size()) >= params.maxTokens) {
            result.stopReason = StopReason::MaxTokens;
            break;
        }
        if (session_.position() >= session_.contextSize()) {
            result.stopReason = StopReason::ContextFull;
            break;
        }
        logits = &session_.decode(next);
        cached_.push_back(next);
        if (onLogits) onLogits(*logits);
    }
    if (result.stopReason != StopReason::StopString) emit(pending + detokenizer.finish());
    const double decodeMs = msSince(decodeStart);
    if (result.tokens.size() > 1 && decodeMs > 0)
        result.decodeTokensPerSecond = 1000.0 * static_cast<double>(result.tokens.size() - 1) / decodeMs;
    return result;
}

}  // namespace lumen::inference
