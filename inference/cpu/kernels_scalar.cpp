#include <algorithm>
#include <cmath>
#include <cstring>

#include "inference/core/cpu_features.h"
#include "inference/cpu/kernels.h"
#include "inference/formats/half.h"

namespace lumen::inference::cpu {
namespace {

float halfAt(const std::uint8_t* p) {
    std::uint16_t h;
    std::memcpy(&h, p, 2);
    return halfToFloat(h);
}

float dotF32(const float* w, const float* x, std::int64_t n) {
    float sum = 0.0f;
    for (std::int64_t i = 0; i < n; ++i) sum += w[i] * x[i];
    return sum;
}

float dotF16(const std::uint16_t* w, const float* x, std::int64_t n) {
    float sum = 0.0f;
    for (std::int64_t i = 0; i < n; ++i) sum += halfToFloat(w[i]) * x[i];
    return sum;
}

float dotQ8_0(const std::uint8_t* w, const BlockQ8* x, std::int64_t nBlocks) {
    float sum = 0.0f;
    for (std::int64_t b = 0; b < nBlocks; ++b, w += 34) {
        std::int32_t acc = 0;
        for (int j = 0; j < 32; ++j) acc += static_cast<std::int8_t>(w[2 + j]) * x[b].q[j];
        sum += static_cast<float>(acc) * halfAt(w) * x[b].d;
    }
    return sum;
}

float dotQ4_0(const std::uint8_t* w, const BlockQ8* x, std::int64_t nBlocks) {
    float sum = 0.0f;
    for (std::int64_t b = 0; b < nBlocks; ++b, w += 18) {
        std::int32_t acc = 0;
        for (int j = 0; j < 16; ++j) {
            acc += ((w[2 + j] & 0xF) - 8) * x[b].q[j];
            acc += ((w[2 + j] >> 4) - 8) * x[b].q[j + 16];
        }
        sum += static_cast<float>(acc) * halfAt(w) * x[b].d;
    }
    return sum;
}

const Kernels kScalar{"scalar", dotF32, dotF16, dotQ8_0, dotQ4_0};

}  // namespace

void quantizeActivations(const float* x, std::int64_t n, BlockQ8* out) {
    for (std::int64_t b = 0; b < n / 32; ++b, x += 32) {
        float amax = 0.0f;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127.0f;
        const float id = d > 0.0f ? 1.0f / d : 0.0f;
        out[b].d = d;
        for (int j = 0; j < 32; ++j) out[b].q[j] = static_cast<std::int8_t>(std::lround(x[j] * id));
    }
}

const Kernels& scalarKernels() { return kScalar; }

const Kernels& bestKernels() {
    static const Kernels* best = [] {
        const auto& f = cpuFeatures();
        if (avx2Kernels() && f.avx2 && f.fma && f.f16c) return avx2Kernels();
        return &kScalar;
    }();
    return *best;
}

}  // namespace lumen::inference::cpu
