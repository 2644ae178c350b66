// Gated DeltaNet's ops: the short causal convolution and the recurrence (see DeltaNetSpec), and
// the gate multiply of gated attention.
//
// The recurrence runs token by token, one block per value head and one thread per value column:
// column j of a head's state (kDim values) only ever meets column j of v, so each thread keeps its
// column in registers for the whole call and the block shares each row's normalised q and k.

#include <algorithm>
#include <stdexcept>
#include <string>

#include "inference/cuda/device_common.cuh"

namespace lumen::inference::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxTaps = 8;

__device__ __forceinline__ float silu(float x) { return x / (1.0f + __expf(-x)); }

// One thread per channel: its last K - 1 inputs in registers.
__global__ void shortConvKernel(const float* x, std::int64_t rows, std::int64_t channels, DeviceWeight weight, int taps, float* state, float* out) {
    const std::int64_t c = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
    if (c >= channels) return;
    const int held = taps - 1;
    float w[kMaxTaps], history[kMaxTaps];
    for (int j = 0; j < taps; ++j) w[j] = weightAt(weight, c, j);
    for (int j = 0; j < held; ++j) history[j] = state[j * channels + c];
    for (std::int64_t t = 0; t < rows; ++t) {
        const float v = x[t * channels + c];
        float sum = w[held] * v;
        for (int j = 0; j < held; ++j) sum += w[j] * history[j];
        out[t * channels + c] = silu(sum);
        for (int j = 0; j + 1 < held; ++j) history[j] = history[j + 1];
        if (held > 0) history[held - 1] = v;
    }
    for (int j = 0; j < held; ++j) state[j * channels + c] = history[j];
}

__device__ float blockSum(float v, float* partial) {
    v = warpSum(v);
    __syncthreads();
    if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = v;
    __syncthreads();
    float total = 0.0f;
    for (unsigned i = 0; i < (blockDim.x + 31) / 32; ++i) total += partial[i];
    return total;
}

template <int KD>
__global__ void deltaNetKernel(const float* qkv, const float* alpha, const float* beta, std::int64_t rows, DeltaNetSpec spec, const float* a,
                               const float* dtBias, float* state, float* out) {
    const std::int64_t h = blockIdx.x, j = threadIdx.x, vd = spec.vDim, nK = spec.nKHeads, nV = spec.nVHeads;
    // (DeltaNetSpec::inputWidth and kHead, which are host functions)
    const std::int64_t width = 2 * nK * KD + nV * vd, kh = h % nK;
    __shared__ float q[KD], k[KD], partial[32];
    float s[KD];
    float* column = state + h * KD * vd + j;
    const bool active = j < vd;
    for (int i = 0; i < KD; ++i) s[i] = active ? column[i * vd] : 0.0f;
    const float qScale = rsqrtf(static_cast<float>(KD));
    for (std::int64_t t = 0; t < rows; ++t) {
        const float* row = qkv + t * width;
        float qq = 0.0f, kk = 0.0f;
        for (int i = threadIdx.x; i < KD; i += blockDim.x) {
            q[i] = row[kh * KD + i];
            k[i] = row[(nK + kh) * KD + i];
            qq += q[i] * q[i];
            kk += k[i] * k[i];
        }
        const float qNorm = qScale * rsqrtf(blockSum(qq, partial) + spec.eps);
        const float kNorm = rsqrtf(blockSum(kk, partial) + spec.eps);
        const float x = alpha[t * nV + h] + dtBias[h];
        const float decay = __expf(a[h] * (x > 20.0f ? x : log1pf(__expf(x))));
        const float b = 1.0f / (1.0f + __expf(-beta[t * nV + h]));
        if (active) {
            float kv = 0.0f;
            for (int i = 0; i < KD; ++i) {
                s[i] *= decay;
                kv += s[i] * k[i];
            }
            const float delta = (row[2 * nK * KD + h * vd + j] - kv * kNorm) * b;
            float o = 0.0f;
            for (int i = 0; i < KD; ++i) {
                s[i] += k[i] * kNorm * delta;
                o += s[i] * q[i];
            }
            out[t * nV * vd + h * vd + j] = o * qNorm;
        }
        __syncthreads();  // before the next row's q and k
    }
    if (active)
        for (int i = 0; i < KD; ++i) column[i * vd] = s[i];
}

__global__ void sigmoidMulKernel(float* x, const float* gate, std::int64_t n) {
    const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
    if (i < n) x[i] /= 1.0f + __expf(-gate[i]);
}

}  // namespace

void shortConv(const float* x, std::int64_t rows, std::int64_t channels, const DeviceWeight& weight, float* state, float* out, cudaStream_t stream) {
    const int taps = static_cast<int>(weight.cols);
    if (taps < 1 || taps > kMaxTaps) throw std::invalid_argument("a short convolution of " + std::to_string(taps) + " taps (this backend runs 1 to 8)");
    if (rows > 0 && channels > 0)
        shortConvKernel<<<blocksFor(channels, kThreads), kThreads, 0, stream>>>(x, rows, channels, weight, taps, state, out);
}

bool deltaNetSupports(const DeltaNetSpec& spec) {
    // (a thread per value column holds its kDim state values in registers: a block's share of
    // them bounds kDim x vDim)
    return (spec.kDim == 16 || spec.kDim == 32 || spec.kDim == 64 || spec.kDim == 128 || spec.kDim == 256) && spec.vDim <= 1024 &&
           spec.kDim * spec.vDim <= 32768;
}

void deltaNet(const float* qkv, const float* alpha, const float* beta, std::int64_t rows, const DeltaNetSpec& spec, const float* a, const float* dtBias,
              float* state, float* out, cudaStream_t stream) {
    if (rows <= 0) return;
    // at least a warp, and whole warps, for the block sums
    const unsigned threads = static_cast<unsigned>((std::max<std::int64_t>(spec.vDim, 32) + 31) / 32 * 32);
    const auto grid = static_cast<unsigned>(spec.nVHeads);
    switch (spec.kDim) {
        case 16: deltaNetKernel<16><<<grid, threads, 0, stream>>>(qkv, alpha, beta, rows, spec, a, dtBias, state, out); break;
        case 32: deltaNetKernel<32><<<grid, threads, 0, stream>>>(qkv, alpha, beta, rows, spec, a, dtBias, state, out); break;
        case 64: deltaNetKernel<64><<<grid, threads, 0, stream>>>(qkv, alpha, beta, rows, spec, a, dtBias, state, out); break;
        case 128: deltaNetKernel<128><<<grid, threads, 0, stream>>>(qkv, alpha, beta, rows, spec, a, dtBias, state, out); break;
        case 256: deltaNetKernel<256><<<grid, threads, 0, stream>>>(qkv, alpha, beta, rows, spec, a, dtBias, state, out); break;
        default: throw std::invalid_argument("DeltaNet heads of " + std::to_string(spec.kDim) + " key dimensions (this backend runs 16 to 256, powers of 2)");
    }
}

void sigmoidMul(float* x, const float* gate, std::int64_t n, cudaStream_t stream) {
    if (n > 0) sigmoidMulKernel<<<blocksFor(n, kThreads), kThreads, 0, stream>>>(x, gate, n);
}

}  // namespace lumen::inference::cuda
