// Softmax of each row in place: one block per row.

#include "inference/cuda/device_common.cuh"

namespace lumen::inference::cuda {
namespace {

constexpr int kThreads = 256;

__device__ float blockReduce(float v, bool isMax, float* scratch) {
    v = isMax ? warpMax(v) : warpSum(v);
    __syncthreads();
    if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = v;
    __syncthreads();
    float r = scratch[0];
    for (int i = 1; i < kThreads / 32; ++i) r = isMax ? fmaxf(r, scratch[i]) : r + scratch[i];
    return r;
}

__global__ void softmaxKernel(float* x, std::int64_t n) {
    float* row = x + blockIdx.x * n;
    __shared__ float scratch[kThreads / 32];
    float m = -INFINITY;
    for (std::int64_t i = threadIdx.x; i < n; i += kThreads) m = fmaxf(m, row[i]);
    m = blockReduce(m, true, scratch);
    float sum = 0.0f;
    for (std::int64_t i = threadIdx.x; i < n; i += kThreads) sum += expf(row[i] - m);
    const float inv = 1.0f / blockReduce(sum, false, scratch);
    for (std::int64_t i = threadIdx.x; i < n; i += kThreads) row[i] = expf(row[i] - m) * inv;
}

}  // namespace

void softmax(float* x, std::int64_t n, std::int64_t rows, cudaStream_t stream) {
    if (rows > 0 && n > 0) softmaxKernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, n);
}

}  // namespace lumen::inference::cuda
