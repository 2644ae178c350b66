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

}  // namespace

void rmsNorm(const float* x, const DeviceWeight& weight, float eps, std::int64_t n, std::int64_t rows, float* y, cudaStream_t stream) {
    if (rows > 0) rmsNormKernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, weight, eps, n, y);
}

}  // namespace lumen::inference::cuda
