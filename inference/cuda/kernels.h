#pragma once
// Host launchers of the CUDA kernels, one op per .cu file. Every launcher queues its work on
// `stream` and returns at once; errors surface through check() in the backend.

#include <cuda_runtime.h>

#include <cstdint>

#include "inference/core/backend.h"
#include "inference/formats/dtype.h"

namespace lumen::inference::cuda {

// A weight matrix in device memory. Q4_0, Q8_0 and Q6_K are stored "repacked": each block's
// F16 scale d moves to a separate array (`scales`, rows * blocksPerRow values) so that the
// rest of every block (16, 32 and 208 bytes) is 16-byte aligned and loads in whole vectors.
// Other types keep the GGUF block layout, one row after another (`rowBytes` apart).
struct DeviceWeight {
    DType dtype = DType::F32;
    std::int64_t rows = 0;
    std::int64_t cols = 0;
    const std::uint8_t* data = nullptr;
    const std::uint16_t* scales = nullptr;  // repacked types only
    std::int64_t rowBytes = 0;              // bytes of one row in `data`
};

bool isRepacked(DType t);
// Bytes of the block body that stays in `data` for a repacked type.
int repackedBodyBytes(DType t);

// Moves each block's scale out of `raw` (rows of GGUF blocks) into the repacked layout.
void repack(DType t, const std::uint8_t* raw, std::int64_t blocks, std::uint8_t* body, std::uint16_t* scales, cudaStream_t stream);

// y = W x for one activation row, with float activations.
void matvec(const DeviceWeight& w, const float* x, float* y, cudaStream_t stream);
// Whether matvecQuantized handles this weight (Q4_0, Q8_0, Q4_K, Q5_K, Q6_K): those read
// activations quantized to int8 per block of 32 by quantizeActivations (n a multiple of 32;
// q: n bytes, d and s: n / 32 floats each, 16-byte aligned).
bool takesQuantizedActivations(const DeviceWeight& w);
void quantizeActivations(const float* x, std::int64_t n, std::int8_t* q, float* d, float* s, cudaStream_t stream);
// Up to three matrices of one dtype that read the same quantized activations, in one launch.
struct MatvecBatch {
    static constexpr int kMax = 3;
    int count = 0;
    DeviceWeight weights[kMax];
    float* outputs[kMax] = {};
    unsigned firstBlock[kMax] = {};  // filled in by the launcher
    int splits[kMax] = {};           // filled in by the launcher
};
void matvecQuantized(const MatvecBatch& batch, const std::int8_t* q, const float* d, const float* s, cudaStream_t stream);
// Rows [row0, row0 + n) of W as F16 (n * cols values).
void dequantizeRowsHalf(const DeviceWeight& w, std::int64_t row0, std::int64_t n, void* out, cudaStream_t stream);
// Rows tokens[i] of W as F32, row i of out; tokens is device memory.
void gatherRows(const DeviceWeight& w, const std::int32_t* tokens, std::int64_t n, float* out, cudaStream_t stream);
void floatToHalf(const float* x, void* out, std::int64_t n, cudaStream_t stream);

void rmsNorm(const float* x, const DeviceWeight& weight, float eps, std::int64_t n, std::int64_t rows, float* y, cudaStream_t stream);
// Fused for decode: one row's RMSNorm and the quantization of the result (see
// quantizeActivations), sparing a launch before the matvecs that read it. n % 32 == 0.
void rmsNormQuantize(const float* x, const DeviceWeight& weight, float eps, std::int64_t n, float* y, std::int8_t* q, float* d, float* s,
                     cudaStream_t stream);
// The residual add x += addend fused in front of rmsNormQuantize (addend may be nullptr).
void addRmsNormQuantize(float* x, const float* addend, const DeviceWeight& weight, float eps, std::int64_t n, float* y, std::int8_t* q,
                        float* d, float* s, cudaStream_t stream);

// The position of the first row of rope, storeKv and attention: a value, or (inside a recorded
// decode step, whose replays run at other positions) a device variable read by the kernels.
struct Position {
    std::int64_t value = 0;
    const std::int64_t* device = nullptr;  // when set, it holds the position and `value` is ignored
    std::int64_t maxPositions = 0;          // with `device`: the cache size, which bounds it
};

void rope(float* x, std::int64_t rows, const Position& pos, const RopeSpec& spec, const float* freqFactors, cudaStream_t stream);
void storeKv(const KvLayer& layer, const Position& pos, std::int64_t rows, std::int64_t kvDim, const float* k, const float* v,
             cudaStream_t stream);
// The first n values of a Q8_0 cache's keys and values as F16 (for attention by GEMM).
void q8CacheToHalf(const KvLayer& layer, std::int64_t n, void* keys, void* values, cudaStream_t stream);
// partials: scratch of attentionScratchFloats(...) floats.
std::int64_t attentionScratchFloats(const Position& pos, std::int64_t rows, const AttentionSpec& spec, int multiprocessors);
// sinks: spec.sinks in device memory, or nullptr.
void attention(const float* q, const KvLayer& layer, const Position& pos, std::int64_t rows, const AttentionSpec& spec, const float* sinks,
               float* out, float* partials, int multiprocessors, cudaStream_t stream);
// Prefill attention by matrix products: scores S (heads x rows x keys, F32) come from cuBLAS;
// this turns each row of S into causal softmax weights P (F16 when half is set, else F32):
// row i of a tile starting at query row r0 sees keys spec.firstVisible(p)..p, p = pos0 + r0 + i,
// its scores soft-capped first when spec.softcap > 0, a head's sink (device memory, or nullptr)
// joining its softmax.
void causalSoftmax(const float* scores, std::int64_t heads, std::int64_t rows, std::int64_t keys, std::int64_t firstPosition,
                   const AttentionSpec& spec, const float* sinks, void* weights, bool half, cudaStream_t stream);
void layerNorm(const float* x, const DeviceWeight& weight, const DeviceWeight* bias, float eps, std::int64_t n, std::int64_t rows, float* y,
               cudaStream_t stream);
void gelu(float* x, std::int64_t n, GeluKind kind, cudaStream_t stream);
void mul(float* x, const float* y, std::int64_t n, cudaStream_t stream);
void scale(float* x, float s, std::int64_t n, cudaStream_t stream);
void softmax(float* x, std::int64_t n, std::int64_t rows, cudaStream_t stream);
// The patches of a (channels, height, width) image as rows of (channel, row, column) values.
void im2col(const float* image, std::int64_t channels, std::int64_t height, std::int64_t width, std::int64_t patch, float* rows,
            cudaStream_t stream);
void siluMul(float* gate, const float* up, std::int64_t n, cudaStream_t stream);
// x[i] *= sigmoid(gate[i])
void sigmoidMul(float* x, const float* gate, std::int64_t n, cudaStream_t stream);
// Backend::shortConv (weight: channels rows of 1 to 8 taps).
void shortConv(const float* x, std::int64_t rows, std::int64_t channels, const DeviceWeight& weight, float* state, float* out, cudaStream_t stream);
// Backend::deltaNet, with the spec's a and dtBias as device F32 arrays. deltaNetSupports: the
// head sizes it runs (kDim 16, 32, 64, 128 or 256; vDim up to 1024; kDim x vDim up to 32768).
bool deltaNetSupports(const DeltaNetSpec& spec);
void deltaNet(const float* qkv, const float* alpha, const float* beta, std::int64_t rows, const DeltaNetSpec& spec, const float* a, const float* dtBias,
              float* state, float* out, cudaStream_t stream);
void clampedSwiglu(float* gate, const float* up, std::int64_t n, const ClampedSwiglu& spec, cudaStream_t stream);
// siluMul and the quantization of the result (n % 32 == 0).
void siluMulQuantize(float* gate, const float* up, std::int64_t n, std::int8_t* q, float* d, float* s, cudaStream_t stream);
void add(float* x, const float* y, std::int64_t n, cudaStream_t stream);
void addBias(float* y, const DeviceWeight& bias, std::int64_t n, std::int64_t rows, cudaStream_t stream);
// Each row of y *= scale (n elements per row).
void scaleRows(float* y, const DeviceWeight& scale, std::int64_t n, std::int64_t rows, cudaStream_t stream);

}  // namespace lumen::inference::cuda
