#pragma once
// The op interface every compute backend implements (CPU now, CUDA later). Model forward passes
// are written once against it. Activation pointers (float*) address the backend's own memory,
// obtained from alloc(); only the CPU backend's memory may be read directly by the host.

#include <cstdint>
#include <memory>
#include <string_view>

#include "inference/core/tensor.h"

namespace lumen::inference {

enum class RopeStyle {
    Interleaved,  // pairs (x[2i], x[2i+1]): GGUF llama/mistral (the converter permutes Q and K)
    NeoX,         // pairs (x[i], x[i + nRot/2]): qwen2 and Hugging Face layouts
};

// Keys and values of every position so far, for one layer: (nCtx, nKvHeads * headDim) each,
// stored as F16 (the default) or F32.
struct KvLayer {
    DType dtype = DType::F16;
    void* keys = nullptr;
    void* values = nullptr;
};

class Backend {
public:
    virtual ~Backend() = default;
    virtual std::string_view name() const = 0;

    // Backend memory for n floats (zeroed), freed with the returned handle.
    virtual std::shared_ptr<float[]> alloc(std::int64_t n) = 0;
    virtual std::shared_ptr<void> allocBytes(std::int64_t bytes) = 0;

    // y[r] = sum_c w[r][c] * x[c] for every row r of w; x has w.rowLength() elements.
    virtual void matvec(const Tensor& w, const float* x, float* y) = 0;
    // Y = X W^T for n activation rows: x is (n, w.rowLength()), y is (n, w.rows()). Each weight
    // row is read once for all n rows (prefill).
    virtual void matmul(const Tensor& w, const float* x, std::int64_t n, float* y) = 0;
    // y = x + bias (bias: an F32 or F16 vector of n elements).
    virtual void addBias(float* y, const Tensor& bias, std::int64_t n) = 0;
    // y = x / rms(x) * weight, over n elements.
    virtual void rmsNorm(const float* x, const Tensor& weight, float eps, std::int64_t n, float* y) = 0;
    // Rotates the first nRot dimensions of each of nHeads heads of x for position pos:
    // pair i turns by pos * freqBase^(-2i/nRot), divided by freqFactors[i] when given (Llama 3
    // RoPE scaling stores these factors in the file as rope_freqs.weight, nRot/2 F32 values).
    virtual void rope(float* x, std::int64_t nHeads, std::int64_t headDim, std::int64_t nRot, std::int64_t pos,
                      float freqBase, RopeStyle style, const float* freqFactors = nullptr) = 0;
    // Stores k and v (nKvHeads * headDim each) at position pos of a layer's cache.
    virtual void storeKv(const KvLayer& layer, std::int64_t pos, std::int64_t kvDim, const float* k, const float* v) = 0;
    // Causal attention of one query position over positions 0..pos of the cache (grouped-query:
    // query head h reads KV head h / (nHeads / nKvHeads)); out has nHeads * headDim elements.
    virtual void attention(const float* q, const KvLayer& layer, std::int64_t pos, std::int64_t nHeads,
                           std::int64_t nKvHeads, std::int64_t headDim, float* scratch, float* out) = 0;
    // gate[i] = silu(gate[i]) * up[i]
    virtual void siluMul(float* gate, const float* up, std::int64_t n) = 0;
    // x[i] += y[i]
    virtual void add(float* x, const float* y, std::int64_t n) = 0;
    // out = row `row` of an embedding table, dequantized.
    virtual void embedRow(const Tensor& table, std::int64_t row, float* out) = 0;
    // Copies n floats of backend memory to the host.
    virtual void download(const float* src, float* dst, std::int64_t n) = 0;
};

struct CpuOptions {
    int threads = 0;    // <= 0: the number of physical cores
    bool simd = true;   // false: the scalar reference kernels, the spec the others are tested against
};

std::unique_ptr<Backend> makeCpuBackend(const CpuOptions& options = {});

}  // namespace lumen::inference
