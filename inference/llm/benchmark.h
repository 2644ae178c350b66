#pragma once
// What `lumen-cli bench` measures: prefill and decode speed of a model per thread count, the
// weight bytes decoding reads per second, and the machine's memory read bandwidth for scale.

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "inference/llm/language_model.h"

namespace lumen::inference {

struct BenchRun {
    std::string backend;
    int prefillTokens = 0;
    int decodeTokens = 0;
    double prefillTokensPerSecond = 0;
    double decodeTokensPerSecond = 0;
    double prefillSeconds = 0;        // the time to the first token of a prompt this long
    double weightBytesPerSecond = 0;  // while decoding
};

// Bytes of weights one decode step reads: every matrix once (of a mixture of experts, the share
// of each expert tensor that a token uses), one row of the embedding table.
std::uint64_t weightBytesPerToken(const LanguageModel& model);

// Runs `prefill` random prompt tokens, then `decode` greedy steps, in a fresh session with the
// layers placed as `split` says (after one warm-up step that also moves the weights to a GPU;
// the CPU's weight pages are mapped in first).
BenchRun benchmark(std::shared_ptr<const LanguageModel> model, const LayerSplit& split, int prefill, int decode);

// Mean and sample standard deviation of repeated measurements (sd 0 for fewer than two).
struct Spread {
    double mean = 0;
    double sd = 0;
};
Spread spreadOf(std::span<const double> values);

class ThreadPool;

// Sustained read bandwidth of main memory (bytes/s): a 512 MiB buffer, allocated and mapped in
// once, read on `threads` threads, best of three passes per measure(). The bench reads it before
// each repetition, so readings spread over the run, busy moments of the machine and quiet ones.
class ReadBandwidthProbe {
public:
    explicit ReadBandwidthProbe(int threads);
    ~ReadBandwidthProbe();
    ReadBandwidthProbe(const ReadBandwidthProbe&) = delete;
    ReadBandwidthProbe& operator=(const ReadBandwidthProbe&) = delete;

    double measure();

private:
    std::vector<std::uint64_t> buffer_;
    std::unique_ptr<ThreadPool> pool_;
};

}  // namespace lumen::inference
