#pragma once
// Writes GGUF language models with random weights, of any shape and dtype mix, laid out as
// llama.cpp's converter writes each family: the tiny models of the tests and the TinyLlama-,
// Llama-3-, Qwen3-, Qwen3-MoE-, gpt-oss-, Gemma 3-, Phi-4-mini- and Qwen3.5-shaped models of the benchmarks. The vocabulary
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
    Mxfp4Experts,  // as gpt-oss is published: experts (a dense FFN too) in MXFP4, the other matrices in Q8_0
};

struct RandomModelSpec {
    // llama, mistral, qwen2 (Q/K/V biases), qwen3 (q/k norms), qwen3moe, gemma2, gemma3 (post
    // norms, windows; always tied), phi3 (fused qkv and gate/up), smollm3, gpt-oss (biases,
    // sinks, YaRN, experts with biases), qwen35 or qwen35moe (Gated DeltaNet, gated attention)
    std::string architecture = "llama";
    std::int64_t dim = 256;
    std::int64_t nLayers = 2;
    std::int64_t nHeads = 4;
    std::int64_t nKvHeads = 2;
    std::int64_t headDim = 0;        // 0: dim / nHeads
    std::int64_t ropeDims = 0;       // 0: headDim
    std::int64_t slidingWindow = 0;  // gemma2, gemma3, phi3: written when > 0
    std::int64_t ffnDim = 512;
    std::int64_t vocabSize = 512;
    std::int64_t contextLength = 512;
    float ropeFreqBase = 10000.0f;
    bool tiedEmbeddings = false;
    DType weightType = DType::F32;
    WeightMix mix = WeightMix::Uniform;
    std::uint64_t seed = 1;
    float weightScale = 0.05f;  // standard deviation of the random weights
    std::string chatTemplate;   // tokenizer.chat_template, when not empty
    // A mixture of experts in place of the FFN (llama: Mixtral's layout; qwen3moe, gpt-oss):
    // nExperts > 0 experts of expertFfnDim (llama's are ffnDim wide), nExpertsUsed per token.
    std::int64_t nExperts = 0;
    std::int64_t nExpertsUsed = 0;
    std::int64_t expertFfnDim = 0;
    std::int64_t sharedExpertFfnDim = 0;  // qwen35moe: the shared expert's width (required there)
    // qwen35 / qwen35moe: Gated DeltaNet on three of every four layers, gated attention on the
    // fourth (ropeDims 0 there: a quarter of the head rotates, as Qwen3.5's config says).
    std::int64_t deltaKHeads = 16;
    std::int64_t deltaVHeads = 16;
    std::int64_t deltaHeadDim = 128;  // key and value heads alike
    std::int64_t deltaConvTaps = 4;
};

// Throws std::invalid_argument when a row length does not fit the chosen block formats.
void writeRandomLanguageModel(const RandomModelSpec& spec, const std::filesystem::path& path);

}  // namespace lumen::inference
