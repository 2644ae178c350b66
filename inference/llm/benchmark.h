#pragma once
// What `lumen-cli bench` measures: prefill and decode speed of a model per thread count, the
// weight bytes decoding reads per second, and the machine's memory read bandwidth for scale.

#include <cstdint>
#include <memory>
#include <vector>

#include "inference/llm/llama_model.h"

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

// Bytes of weights one decode step reads: every matrix once, one row of the embedding table.
std::uint64_t weightBytesPerToken(const LlamaModel& model);

// Runs `prefill` random prompt tokens, then `decode` greedy steps, in a fresh session with the
// layers placed as `split` says (after one warm-up step that also moves the weights to a GPU;
// the CPU's weight pages are mapped in first).
BenchRun benchmark(std::shared_ptr<const LlamaModel> model, const LayerSplit& split, int prefill, int decode);

// Sustained read bandwidth of main memory (bytes/s), reading a 512 MiB buffer on `threads`
// threads, best of three.
double measureReadBandwidth(int threads);

}  // namespace lumen::inference
