#pragma once
// Writes llama-family GGUF models with random weights, of any shape and dtype mix: the tiny
// models of the tests and the TinyLlama/Llama-3-shaped models of the benchmarks. The vocabulary
// is a SentencePiece-style one (control tokens, 256 byte tokens, then short pieces) so the file
// loads like a real model.

#include <cstdint>
#include <filesystem>
#include <string>

#include "inference/formats/dtype.h"

namespace lumen::inference {

enum class WeightMix {
    Uniform,  // every matrix in `weightType`
    Q4_K_M,   // like llama.cpp's Q4_K_M: Q4_K, with attn_v, ffn_down and output in Q6_K
};

struct RandomModelSpec {
    std::string architecture = "llama";  // llama, mistral or qwen2 (qwen2 adds Q/K/V biases)
    std::int64_t dim = 256;
    std::int64_t nLayers = 2;
    std::int64_t nHeads = 4;
    std::int64_t nKvHeads = 2;
    std::int64_t ffnDim = 512;
    std::int64_t vocabSize = 512;
    std::int64_t contextLength = 512;
    float ropeFreqBase = 10000.0f;
    bool tiedEmbeddings = false;
    DType weightType = DType::F32;
    WeightMix mix = WeightMix::Uniform;
    std::uint64_t seed = 1;
    float weightScale = 0.05f;  // standard deviation of the random weights
};

// Throws std::invalid_argument when a row length does not fit the chosen block formats.
void writeRandomLlamaModel(const RandomModelSpec& spec, const std::filesystem::path& path);

}  // namespace lumen::inference
