// RoPE: one thread per rotated pair, the angle computed as the CPU reference does.

#include "inference/cuda/device_common.cuh"

namespace lumen::inference::cuda {
namespace {

__global__ void ropeKernel(float* x, std::int64_t rows, Position position, RopeSpec spec, const float* factors) {
    const std::int64_t pos0 = position.device ? *position.device : position.value;
    const std::int64_t half = spec.nRot / 2;
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= rows * spec.nHeads * half) return;
    const std::int64_t pair = i % half, head = (i / half) % spec.nHeads, row = i / (half * spec.nHeads);
    float theta = static_cast<float>(pos0 + row) * spec.freqScale * powf(spec.freqBase, -2.0f * static_cast<float>(pair) / static_cast<float>(spec.nRot));
    if (factors) theta /= factors[pair];
    float s, c;
    sincosf(theta, &s, &c);
    s *= spec.attnFactor;
    c *= spec.attnFactor;
    float* v = x + (row * spec.nHeads + head) * spec.headDim;
    const std::int64_t a = spec.style == RopeStyle::Interleaved ? 2 * pair : pair;
    const std::int64_t b = spec.style == RopeStyle::Interleaved ? 2 * pair + 1 : pair + half;
    const float x0 = v[a], x1 = v[b];
    v[a] = x0 * c - x1 * s;
    v[b] = x0 * s + x1 * c;
}

}  // namespace

void rope(float* x, std::int64_t rows, const Position& pos0, const RopeSpec& spec, const float* freqFactors, cudaStream_t stream) {
    const std::int64_t n = rows * spec.nHeads * (spec.nRot / 2);
    RopeSpec s = spec;
    s.freqFactors = nullptr;  // a host-side view; the kernel gets the device copy
    if (n > 0) ropeKernel<<<blocksFor(n, 256), 256, 0, stream>>>(x, rows, pos0, s, freqFactors);
}

}  // namespace lumen::inference::cuda
