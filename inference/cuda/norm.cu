// RMSNorm: one block per row; the sum of squares reduced across the block.

#include "inference/cuda/device_common.cuh"

namespace lumen::inference::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void rmsNormKernel(const float* x, DeviceWeight weight, float eps, std::int64_t n, float* y) {
    const float* xr = x + blockIdx.x * n;
    float* yr = y + blockIdx.x * n;
    float sum = 0.0f;
    for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) sum += xr[i] * xr[i];
    __shared__ float partial[kThreads / 32];
    sum = warpSum(sum);
    if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = sum;
    __syncthreads();
    float total = 0.0f;
    for (int i = 0; i < kThreads / 32; ++i) total += partial[i];
    const float scale = rsqrtf(total / static_cast<float>(n) + eps);
    for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) yr[i] = xr[i] * scale * weightAt(weight, 0, i);
}

// One block per row: the mean, then the variance about it (two passes, as the CPU reference).
__global__ void layerNormKernel(const float* x, DeviceWeight weight, DeviceWeight bias, bool hasBias, float eps, std::int64_t n, float* y) {
    const float* xr = x + blockIdx.x * n;
    float* yr = y + blockIdx.x * n;
    __shared__ float partial[kThreads / 32];
    const auto blockSum = [&](float v) {
        v = warpSum(v);
        __syncthreads();
        if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = v;
        __syncthreads();
        float total = 0.0f;
        for (int i = 0; i < kThreads / 32; ++i) total += partial[i];
        return total;
    };
    float sum = 0.0f;
    for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) sum += xr[i];
    const float mean = blockSum(sum) / static_cast<float>(n);
    float squares = 0.0f;
    for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) squares += (xr[i] - mean) * (xr[i] - mean);
    const float scale = rsqrtf(blockSum(squares) / static_cast<float>(n) + eps);
    for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x)
        yr[i] = (xr[i] - mean) * scale * weightAt(weight, 0, i) + (hasBias ? weightAt(bias, 0, i) : 0.0f);
}

// One row with 1024 threads, writing y and its int8 quantization for the next matvec:
// each warp takes 32-element blocks in turn.
// With `addend`, x += addend first (the residual add before the next norm).
__global__ void __launch_bounds__(1024) rmsNormQuantizeKernel(float* x, const float* addend, DeviceWeight weight, float eps, std::int64_t n,
                                                              float* y, std::int8_t* q, float* d, float* s) {
    float sum = 0.0f;
    for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        float v = x[i];
        if (addend) x[i] = v = v + addend[i];
        sum += v * v;
    }
    __shared__ float partial[32];
    sum = warpSum(sum);
    if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = sum;
    __syncthreads();
    float total = 0.0f;
    for (int i = 0; i < static_cast<int>(blockDim.x / 32); ++i) total += partial[i];
    const float scale = rsqrtf(total / static_cast<float>(n) + eps);
    // (The barrier above also published this block's writes of x.)
    const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32, warps = static_cast<int>(blockDim.x) / 32;
    for (std::int64_t b = warp; b < n / 32; b += warps) {
        const std::int64_t i = 32 * b + lane;
        const float v = x[i] * scale * weightAt(weight, 0, i);
        y[i] = v;
        const float amax = warpMax(fabsf(v));
        const float dq = amax / 127.0f;
        const int qi = amax == 0.0f ? 0 : static_cast<int>(rintf(v / dq));
        const float qs = warpSum(static_cast<float>(qi));
        q[i] = static_cast<std::int8_t>(qi);
        if (lane == 0) {
            d[b] = dq;
            s[b] = dq * qs;
        }
    }
}

}  // namespace

void rmsNormQuantize(const float* x, const DeviceWeight& weight, float eps, std::int64_t n, float* y, std::int8_t* q, float* d, float* s,
                     cudaStream_t stream) {
    // (x is only written when an addend is given.)
    rmsNormQuantizeKernel<<<1, 1024, 0, stream>>>(const_cast<float*>(x), nullptr, weight, eps, n, y, q, d, s);
}

void addRmsNormQuantize(float* x, const float* addend, const DeviceWeight& weight, float eps, std::int64_t n, float* y, std::int8_t* q,
                        float* d, float* s, cudaStream_t stream) {
    rmsNormQuantizeKernel<<<1, 1024, 0, stream>>>(x, addend, weight, eps, n, y, q, d, s);
}

void layerNorm(const float* x, const DeviceWeight& weight, const DeviceWeight* bias, float eps, std::int64_t n, std::int64_t rows, float* y,
               cudaStream_t stream) {
    if (rows > 0) layerNormKernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, weight, bias ? *bias : weight, bias != nullptr, eps, n, y);
}

void rmsNorm(const float* x, const DeviceWeight& weight, float eps, std::int64_t n, std::int64_t rows, float* y, cudaStream_t stream) {
    if (rows > 0) rmsNormKernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, weight, eps, n, y);
}

}  // namespace lumen::inference::cuda
