// Weight layout changes and dequantization: repacking on upload, F16 copies of weight rows
// for cuBLAS GEMMs (prefill), F32 rows of an embedding table, activations to F16.

#include "inference/cuda/device_common.cuh"

namespace lumen::inference::cuda {
namespace {

constexpr int kThreads = 256;

// Raw block layout of the repacked types: where the F16 scale sits and where the body starts.
struct RepackLayout {
    int blockBytes, scaleOffset, bodyOffset, bodyBytes;
};

RepackLayout layoutOf(DType t) {
    switch (t) {
        case DType::Q4_0: return {18, 0, 2, 16};
        case DType::Q8_0: return {34, 0, 2, 32};
        case DType::Q6_K: return {210, 208, 0, 208};
        default: return {0, 0, 0, 0};
    }
}

// One thread per block: copies the body, moves the scale.
__global__ void repackKernel(const std::uint8_t* raw, std::int64_t blocks, RepackLayout l, std::uint8_t* body, std::uint16_t* scales) {
    const std::int64_t b = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (b >= blocks) return;
    const std::uint8_t* src = raw + b * l.blockBytes;
    std::uint8_t* dst = body + b * l.bodyBytes;
    for (int i = 0; i < l.bodyBytes; ++i) dst[i] = src[l.bodyOffset + i];
    scales[b] = static_cast<std::uint16_t>(src[l.scaleOffset] | (src[l.scaleOffset + 1] << 8));
}

__global__ void dequantizeHalfKernel(DeviceWeight w, std::int64_t row0, std::int64_t count, __half* out) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= count) return;
    out[i] = __float2half(weightAt(w, row0 + i / w.cols, i % w.cols));
}

__global__ void gatherKernel(DeviceWeight w, const std::int32_t* tokens, std::int64_t n, float* out) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n * w.cols) return;
    out[i] = weightAt(w, tokens[i / w.cols], i % w.cols);
}

__global__ void floatToHalfKernel(const float* x, __half* out, std::int64_t n) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) out[i] = __float2half(x[i]);
}

}  // namespace

bool isRepacked(DType t) { return layoutOf(t).blockBytes != 0; }
int repackedBodyBytes(DType t) { return layoutOf(t).bodyBytes; }

void repack(DType t, const std::uint8_t* raw, std::int64_t blocks, std::uint8_t* body, std::uint16_t* scales, cudaStream_t stream) {
    if (blocks > 0) repackKernel<<<blocksFor(blocks, kThreads), kThreads, 0, stream>>>(raw, blocks, layoutOf(t), body, scales);
}

void dequantizeRowsHalf(const DeviceWeight& w, std::int64_t row0, std::int64_t n, void* out, cudaStream_t stream) {
    const std::int64_t count = n * w.cols;
    if (count > 0) dequantizeHalfKernel<<<blocksFor(count, kThreads), kThreads, 0, stream>>>(w, row0, count, static_cast<__half*>(out));
}

void gatherRows(const DeviceWeight& w, const std::int32_t* tokens, std::int64_t n, float* out, cudaStream_t stream) {
    if (n > 0) gatherKernel<<<blocksFor(n * w.cols, kThreads), kThreads, 0, stream>>>(w, tokens, n, out);
}

void floatToHalf(const float* x, void* out, std::int64_t n, cudaStream_t stream) {
    if (n > 0) floatToHalfKernel<<<blocksFor(n, kThreads), kThreads, 0, stream>>>(x, static_cast<__half*>(out), n);
}

}  // namespace lumen::inference::cuda
