// Elementwise ops: SiLU-gated product, residual add, bias add.

#include "inference/cuda/device_common.cuh"

namespace lumen::inference::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void siluMulKernel(float* gate, const float* up, std::int64_t n) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

__global__ void clampedSwigluKernel(float* gate, const float* up, std::int64_t n, ClampedSwiglu spec) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float g = fminf(gate[i], spec.limit), u = fminf(fmaxf(up[i], -spec.limit), spec.limit);
    gate[i] = g / (1.0f + expf(-spec.alpha * g)) * (u + 1.0f);
}

__global__ void geluKernel(float* x, std::int64_t n, GeluKind kind) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float v = x[i];
    switch (kind) {
        case GeluKind::Erf: x[i] = 0.5f * v * (1.0f + erff(v * 0.70710678f)); break;
        case GeluKind::Tanh: x[i] = 0.5f * v * (1.0f + tanhf(0.79788456f * (v + 0.044715f * v * v * v))); break;
        case GeluKind::Quick: x[i] = v / (1.0f + expf(-1.702f * v)); break;
    }
}

__global__ void mulKernel(float* x, const float* y, std::int64_t n) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) x[i] *= y[i];
}

__global__ void scaleKernel(float* x, float s, std::int64_t n) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) x[i] *= s;
}

__global__ void addKernel(float* x, const float* y, std::int64_t n) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) x[i] += y[i];
}

__global__ void addBiasKernel(float* y, DeviceWeight bias, std::int64_t n, std::int64_t total) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < total) y[i] += weightAt(bias, 0, i % n);
}

__global__ void scaleRowsKernel(float* y, DeviceWeight scale, std::int64_t n, std::int64_t total) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < total) y[i] *= weightAt(scale, 0, i % n);
}

// One warp per block of 32: the product, then its int8 quantization for the next matvec.
__global__ void siluMulQuantizeKernel(float* gate, const float* up, std::int64_t n, std::int8_t* q, float* d, float* s) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const float v = i < n ? gate[i] / (1.0f + expf(-gate[i])) * up[i] : 0.0f;
    const float amax = warpMax(fabsf(v));
    const float dq = amax / 127.0f;
    const int qi = amax == 0.0f ? 0 : static_cast<int>(rintf(v / dq));
    const float qs = warpSum(static_cast<float>(qi));
    if (i >= n) return;
    gate[i] = v;
    q[i] = static_cast<std::int8_t>(qi);
    if (threadIdx.x % 32 == 0) {
        d[i / 32] = dq;
        s[i / 32] = dq * qs;
    }
}

}  // namespace

void siluMulQuantize(float* gate, const float* up, std::int64_t n, std::int8_t* q, float* d, float* s, cudaStream_t stream) {
    if (n > 0) siluMulQuantizeKernel<<<blocksFor(n, kThreads), kThreads, 0, stream>>>(gate, up, n, q, d, s);
}

void siluMul(float* gate, const float* up, std::int64_t n, cudaStream_t stream) {
    if (n > 0) siluMulKernel<<<blocksFor(n, kThreads), kThreads, 0, stream>>>(gate, up, n);
}

void clampedSwiglu(float* gate, const float* up, std::int64_t n, const ClampedSwiglu& spec, cudaStream_t stream) {
    if (n > 0) clampedSwigluKernel<<<blocksFor(n, kThreads), kThreads, 0, stream>>>(gate, up, n, spec);
}

void gelu(float* x, std::int64_t n, GeluKind kind, cudaStream_t stream) {
    if (n > 0) geluKernel<<<blocksFor(n, kThreads), kThreads, 0, stream>>>(x, n, kind);
}

void mul(float* x, const float* y, std::int64_t n, cudaStream_t stream) {
    if (n > 0) mulKernel<<<blocksFor(n, kThreads), kThreads, 0, stream>>>(x, y, n);
}

void scale(float* x, float s, std::int64_t n, cudaStream_t stream) {
    if (n > 0) scaleKernel<<<blocksFor(n, kThreads), kThreads, 0, stream>>>(x, s, n);
}

void add(float* x, const float* y, std::int64_t n, cudaStream_t stream) {
    if (n > 0) addKernel<<<blocksFor(n, kThreads), kThreads, 0, stream>>>(x, y, n);
}

void addBias(float* y, const DeviceWeight& bias, std::int64_t n, std::int64_t rows, cudaStream_t stream) {
    if (n * rows > 0) addBiasKernel<<<blocksFor(n * rows, kThreads), kThreads, 0, stream>>>(y, bias, n, n * rows);
}

void scaleRows(float* y, const DeviceWeight& scale, std::int64_t n, std::int64_t rows, cudaStream_t stream) {
    if (n * rows > 0) scaleRowsKernel<<<blocksFor(n * rows, kThreads), kThreads, 0, stream>>>(y, scale, n, n * rows);
}

}  // namespace lumen::inference::cuda
