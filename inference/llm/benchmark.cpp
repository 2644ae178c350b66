#include "inference/llm/benchmark.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <random>

#include "inference/core/thread_pool.h"

namespace lumen::inference {
namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

}  // namespace

std::uint64_t weightBytesPerToken(const LanguageModel& model) {
    const auto& w = model.weights();
    std::uint64_t bytes = 0;
    for (const auto& t : model.file().tensors()) bytes += static_cast<std::uint64_t>(t.bytes);
    const auto tableBytes = static_cast<std::uint64_t>(w.tokenEmbedding.rowBytes() * w.tokenEmbedding.rows());
    if (w.output.data != w.tokenEmbedding.data) bytes -= tableBytes;  // only one row is read
    // A mixture of experts reads only the experts a token uses: nExpertsUsed of nExperts.
    const auto& c = model.config();
    for (const LayerWeights& L : w.layers)
        for (const auto* experts : {&L.expertGate, &L.expertUp, &L.expertDown})
            for (const Tensor& t : *experts) {
                const auto expert = static_cast<std::uint64_t>(t.rowBytes() * t.rows());
                bytes -= expert - expert * static_cast<std::uint64_t>(c.nExpertsUsed) / static_cast<std::uint64_t>(c.nExperts);
            }
    return bytes + static_cast<std::uint64_t>(w.tokenEmbedding.rowBytes());
}

BenchRun benchmark(std::shared_ptr<const LanguageModel> model, const LayerSplit& split, int prefill, int decode) {
    const auto& c = model->config();
    LanguageSession session(model, split, std::max<std::int64_t>(prefill + decode + 2, 16));
    BenchRun run;
    if (split.gpuLayers < c.nLayers) run.backend = std::string(split.cpu->name());
    if (split.gpuLayers > 0) run.backend += (run.backend.empty() ? "" : " + ") + std::string(split.gpu->name()) + " (" + std::to_string(split.gpuLayers) + " layers)";
    std::mt19937 rng(1);
    run.prefillTokens = prefill;
    run.decodeTokens = decode;
    const std::vector<float>* logits = nullptr;
    std::vector<std::int32_t> prompt(static_cast<std::size_t>(prefill));
    for (auto& t : prompt) t = static_cast<std::int32_t>(rng() % static_cast<unsigned>(c.vocabSize));
    // A GPU warms up first: the weights' upload, cuBLAS's set-up and the first allocation of the
    // prompt's buffers happen once per model, not once per prompt.
    if (split.gpuLayers > 0) {
        if (prefill > 1) session.prefill(prompt);
        session.decode(1);
        session.truncate(0);
    }
    // The weights' pages are mapped in first (a byte of each page read), so the first timed
    // prompt measures the arithmetic and the memory, not the page faults of a fresh mapping.
    if (split.gpuLayers < c.nLayers)
        for (const auto& t : model->file().tensors())
            for (std::size_t i = 0; i < t.data.size(); i += 4096) (void)*static_cast<const volatile std::uint8_t*>(&t.data[i]);
    const auto t0 = Clock::now();
    if (prefill > 0) logits = &session.prefill(prompt);
    const auto t1 = Clock::now();
    std::int32_t next = logits ? static_cast<std::int32_t>(std::max_element(logits->begin(), logits->end()) - logits->begin()) : 1;
    for (int i = 0; i < decode; ++i) {
        logits = &session.decode(next);
        next = static_cast<std::int32_t>(std::max_element(logits->begin(), logits->end()) - logits->begin());
    }
    const auto t2 = Clock::now();
    run.prefillSeconds = seconds(t0, t1);
    if (prefill > 0) run.prefillTokensPerSecond = prefill / run.prefillSeconds;
    if (decode > 0) {
        run.decodeTokensPerSecond = decode / seconds(t1, t2);
        run.weightBytesPerSecond = run.decodeTokensPerSecond * static_cast<double>(weightBytesPerToken(*model));
    }
    return run;
}

Spread spreadOf(std::span<const double> values) {
    Spread s;
    if (values.empty()) return s;
    for (const double v : values) s.mean += v;
    s.mean /= static_cast<double>(values.size());
    if (values.size() < 2) return s;
    double squares = 0;
    for (const double v : values) squares += (v - s.mean) * (v - s.mean);
    s.sd = std::sqrt(squares / static_cast<double>(values.size() - 1));
    return s;
}

ReadBandwidthProbe::ReadBandwidthProbe(int threads)
    : buffer_((512u << 20) / sizeof(std::uint64_t), 1),  // written once so the pages exist
      pool_(std::make_unique<ThreadPool>(threads)) {}

ReadBandwidthProbe::~ReadBandwidthProbe() = default;

double ReadBandwidthProbe::measure() {
    const auto words = static_cast<std::int64_t>(buffer_.size());
    const std::uint64_t* data = buffer_.data();
    double best = 0;
    std::atomic<std::uint64_t> sink{0};
    for (int round = 0; round < 3; ++round) {
        const auto start = Clock::now();
        pool_->parallelFor(words, [&](std::int64_t b, std::int64_t e) {
            std::uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            std::int64_t i = b;
            for (; i + 4 <= e; i += 4) {
                s0 += data[i];
                s1 += data[i + 1];
                s2 += data[i + 2];
                s3 += data[i + 3];
            }
            for (; i < e; ++i) s0 += data[i];
            sink.fetch_add(s0 + s1 + s2 + s3);
        });
        best = std::max(best, static_cast<double>(words) * sizeof(std::uint64_t) / seconds(start, Clock::now()));
    }
    return best;
}

}  // namespace lumen::inference
