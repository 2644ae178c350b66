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

// y = W x for one activation row.
void matvec(const DeviceWeight& w, const float* x, float* y, cudaStream_t stream);
// Rows [row0, row0 + n) of W as F16 (n * cols values).
void dequantizeRowsHalf(const DeviceWeight& w, std::int64_t row0, std::int64_t n, void* out, cudaStream_t stream);
// Rows tokens[i] of W as F32, row i of out; tokens is device memory.
void gatherRows(const DeviceWeight& w, const std::int32_t* tokens, std::int64_t n, float* out, cudaStream_t stream);
void floatToHalf(const float* x, void* out, std::int64_t n, cudaStream_t stream);

void rmsNorm(const float* x, const DeviceWeight& weight, float eps, std::int64_t n, std::int64_t rows, float* y, cudaStream_t stream);
void rope(float* x, std::int64_t rows, std::int64_t pos0, const RopeSpec& spec, const float* freqFactors, cudaStream_t stream);
void storeKv(const KvLayer& layer, std::int64_t pos0, std::int64_t rows, std::int64_t kvDim, const float* k, const float* v,
             cudaStream_t stream);
// partials: scratch of attentionScratchFloats(...) floats.
std::int64_t attentionScratchFloats(std::int64_t pos0, std::int64_t rows, const AttentionSpec& spec, int multiprocessors);
void attention(const float* q, const KvLayer& layer, std::int64_t pos0, std::int64_t rows, const AttentionSpec& spec, float* out,
               float* partials, int multiprocessors, cudaStream_t stream);
void siluMul(float* gate, const float* up, std::int64_t n, cudaStream_t stream);
void add(float* x, const float* y, std::int64_t n, cudaStream_t stream);
void addBias(float* y, const DeviceWeight& bias, std::int64_t n, std::int64_t rows, cudaStream_t stream);

}  // namespace lumen::inference::cuda
