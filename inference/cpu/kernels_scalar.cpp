#include <algorithm>
#include <cmath>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "inference/core/cpu_features.h"
#include "inference/core/log.h"
#include "inference/cpu/kernels.h"
#include "inference/formats/half.h"
#include "inference/formats/quants.h"

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

std::uint32_t loadQh(const std::uint8_t* p) {
    std::uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

float dotQ4_1(const std::uint8_t* w, const BlockQ8* x, std::int64_t nBlocks) {
    float sum = 0.0f;
    for (std::int64_t b = 0; b < nBlocks; ++b, w += 20) {
        std::int32_t acc = 0;
        for (int j = 0; j < 16; ++j) acc += (w[4 + j] & 0xF) * x[b].q[j] + (w[4 + j] >> 4) * x[b].q[j + 16];
        sum += static_cast<float>(acc) * halfAt(w) * x[b].d + halfAt(w + 2) * x[b].s;
    }
    return sum;
}

// The 5-bit value of element e of a Q5_0/Q5_1 block (qs at `qs`, fifth bits in qh).
int fiveBit(const std::uint8_t* qs, std::uint32_t qh, int e) {
    const int nibble = e < 16 ? (qs[e] & 0xF) : (qs[e - 16] >> 4);
    return nibble | static_cast<int>(((qh >> e) & 1) << 4);
}

float dotQ5_0(const std::uint8_t* w, const BlockQ8* x, std::int64_t nBlocks) {
    float sum = 0.0f;
    for (std::int64_t b = 0; b < nBlocks; ++b, w += 22) {
        const std::uint32_t qh = loadQh(w + 2);
        std::int32_t acc = 0;
        for (int e = 0; e < 32; ++e) acc += (fiveBit(w + 6, qh, e) - 16) * x[b].q[e];
        sum += static_cast<float>(acc) * halfAt(w) * x[b].d;
    }
    return sum;
}

float dotQ5_1(const std::uint8_t* w, const BlockQ8* x, std::int64_t nBlocks) {
    float sum = 0.0f;
    for (std::int64_t b = 0; b < nBlocks; ++b, w += 24) {
        const std::uint32_t qh = loadQh(w + 4);
        std::int32_t acc = 0;
        for (int e = 0; e < 32; ++e) acc += fiveBit(w + 8, qh, e) * x[b].q[e];
        sum += static_cast<float>(acc) * halfAt(w) * x[b].d + halfAt(w + 2) * x[b].s;
    }
    return sum;
}

// Q4_K, and Q5_K when FiveBits: per 32-element sub-block j the sum of q * a times its 6-bit
// scale, minus its minimum times the activations' sum. Q5_K adds qh's bit j to each value.
template <bool FiveBits>
float dotQ45_K(const std::uint8_t* w, const BlockQ8K* x, std::int64_t nBlocks) {
    constexpr std::int64_t kBytes = FiveBits ? 176 : 144;
    float sum = 0.0f;
    for (std::int64_t b = 0; b < nBlocks; ++b, w += kBytes) {
        const float d = halfAt(w) * x[b].d, dmin = halfAt(w + 2) * x[b].d;
        const std::uint8_t* qh = w + 16;
        const std::uint8_t* qs = w + (FiveBits ? 48 : 16);
        std::int32_t scaled = 0, mins = 0;
        for (int j = 0; j < 8; ++j) {
            int sc, mn;
            kQuantScaleMin(j, w + 4, sc, mn);
            const std::uint8_t* bytes = qs + 32 * (j / 2);
            std::int32_t acc = 0;
            for (int l = 0; l < 32; ++l) {
                int q = (j % 2) ? (bytes[l] >> 4) : (bytes[l] & 0xF);
                if constexpr (FiveBits) q |= ((qh[l] >> j) & 1) << 4;
                acc += q * x[b].q[32 * j + l];
            }
            scaled += sc * acc;
            mins += mn * (x[b].bsums[2 * j] + x[b].bsums[2 * j + 1]);
        }
        sum += d * static_cast<float>(scaled) - dmin * static_cast<float>(mins);
    }
    return sum;
}

// Q2_K and Q3_K: sub-block `is` (16 values) of a super-block holds elements 16 is.., taken from
// the 32-byte group of its half at bit shift 2s (s = which 32 of the half), bytes 16 * part...
inline int lowTwoBits(const std::uint8_t* qs, int is, int l) {
    const int half = is / 8, s = (is % 8) / 2, part = is % 2;
    return (qs[32 * half + 16 * part + l] >> (2 * s)) & 3;
}

float dotQ2_K(const std::uint8_t* w, const BlockQ8K* x, std::int64_t nBlocks) {
    float sum = 0.0f;
    for (std::int64_t b = 0; b < nBlocks; ++b, w += 84) {
        std::int32_t scaled = 0, mins = 0;
        for (int is = 0; is < 16; ++is) {
            std::int32_t sub = 0;
            for (int l = 0; l < 16; ++l) sub += lowTwoBits(w + 16, is, l) * x[b].q[16 * is + l];
            scaled += (w[is] & 0xF) * sub;
            mins += (w[is] >> 4) * x[b].bsums[is];
        }
        sum += x[b].d * (halfAt(w + 80) * static_cast<float>(scaled) - halfAt(w + 82) * static_cast<float>(mins));
    }
    return sum;
}

float dotQ3_K(const std::uint8_t* w, const BlockQ8K* x, std::int64_t nBlocks) {
    float sum = 0.0f;
    for (std::int64_t b = 0; b < nBlocks; ++b, w += 110) {
        std::int32_t total = 0;
        for (int is = 0; is < 16; ++is) {
            const int half = is / 8, s = (is % 8) / 2, part = is % 2;
            std::int32_t sub = 0;
            for (int l = 0; l < 16; ++l) {
                const int high = (w[16 * part + l] >> (4 * half + s)) & 1;  // hmask, indexed by the byte's place in its 32
                sub += (lowTwoBits(w + 32, is, l) - (high ? 0 : 4)) * x[b].q[16 * is + l];
            }
            total += q3kScale(w + 96, is) * sub;
        }
        sum += halfAt(w + 108) * x[b].d * static_cast<float>(total);
    }
    return sum;
}

float dotBF16(const std::uint16_t* w, const float* x, std::int64_t n) {
    float sum = 0.0f;
    for (std::int64_t i = 0; i < n; ++i) sum += bf16ToFloat(w[i]) * x[i];
    return sum;
}

float dotQ6_K(const std::uint8_t* w, const BlockQ8K* x, std::int64_t nBlocks) {
    float sum = 0.0f;
    for (std::int64_t b = 0; b < nBlocks; ++b, w += 210) {
        const auto* sc = reinterpret_cast<const std::int8_t*>(w + 192);
        std::int32_t total = 0;
        for (int half = 0; half < 2; ++half) {
            const std::uint8_t* ql = w + 64 * half;
            const std::uint8_t* qh = w + 128 + 32 * half;
            for (int e = 0; e < 128; ++e) {
                const int l = e % 32, quarter = e / 32;
                const std::uint8_t low = quarter % 2 ? ql[l + 32] : ql[l];
                const int q = ((quarter >= 2 ? low >> 4 : low & 0xF) | (((qh[l] >> (2 * quarter)) & 3) << 4)) - 32;
                total += sc[8 * half + e / 16] * q * x[b].q[128 * half + e];
            }
        }
        sum += halfAt(w + 208) * x[b].d * static_cast<float>(total);
    }
    return sum;
}

// The codebook formats: each nibble's table entry times the activation byte, per block of 32.
std::int32_t codebookBlock(const std::int8_t (&table)[16], const std::uint8_t* qs, const BlockQ8& x) {
    std::int32_t acc = 0;
    for (int j = 0; j < 16; ++j) acc += table[qs[j] & 0xF] * x.q[j] + table[qs[j] >> 4] * x.q[j + 16];
    return acc;
}

float dotIQ4_NL(const std::uint8_t* w, const BlockQ8* x, std::int64_t nBlocks) {
    float sum = 0.0f;
    for (std::int64_t b = 0; b < nBlocks; ++b, w += 18) sum += static_cast<float>(codebookBlock(kIq4nlValues, w + 2, x[b])) * (halfAt(w) * x[b].d);
    return sum;
}

float dotIQ4_XS(const std::uint8_t* w, const BlockQ8* x, std::int64_t nBlocks) {
    float sum = 0.0f;
    for (std::int64_t b = 0; b < nBlocks; b += 8, w += 136) {
        const float d = halfAt(w);
        const int high = w[2] | (w[3] << 8);
        for (int ib = 0; ib < 8; ++ib) {
            const int ls = (((w[4 + ib / 2] >> (4 * (ib % 2))) & 0xF) | (((high >> (2 * ib)) & 3) << 4)) - 32;
            sum += static_cast<float>(codebookBlock(kIq4nlValues, w + 8 + 16 * ib, x[b + ib])) * (d * static_cast<float>(ls) * x[b + ib].d);
        }
    }
    return sum;
}

float dotMXFP4(const std::uint8_t* w, const BlockQ8* x, std::int64_t nBlocks) {
    float sum = 0.0f;
    for (std::int64_t b = 0; b < nBlocks; ++b, w += 17)
        sum += static_cast<float>(codebookBlock(kMxfp4Values, w + 1, x[b])) * (e8m0Half(w[0]) * x[b].d);
    return sum;
}

const Kernels kScalar{"scalar", dotF32,  dotF16,          dotBF16,        dotQ8_0, dotQ4_0, dotQ4_1, dotQ5_0,
                      dotQ5_1,  dotQ2_K, dotQ3_K, dotQ45_K<false>, dotQ45_K<true>, dotQ6_K, nullptr, nullptr, nullptr, nullptr,
                      nullptr,  nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, quantizeActivations, quantizeActivations, nullptr, {}, {}, {},
                      dotIQ4_NL, dotIQ4_XS, dotMXFP4, nullptr, nullptr, nullptr, {}, {}, nullptr, nullptr};

}  // namespace

void quantizeActivations(const float* x, std::int64_t n, BlockQ8* out) {
    for (std::int64_t b = 0; b < n / 32; ++b, x += 32) {
        float amax = 0.0f;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127.0f;
        const float id = d > 0.0f ? 1.0f / d : 0.0f;
        out[b].d = d;
        int total = 0;
        for (int j = 0; j < 32; ++j) {
            out[b].q[j] = static_cast<std::int8_t>(std::lround(x[j] * id));
            total += out[b].q[j];
        }
        out[b].s = d * static_cast<float>(total);
    }
}

void quantizeActivations(const float* x, std::int64_t n, BlockQ8K* out) {
    for (std::int64_t b = 0; b < n / 256; ++b, x += 256) {
        float amax = 0.0f;
        for (int j = 0; j < 256; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127.0f;
        const float id = d > 0.0f ? 1.0f / d : 0.0f;
        out[b].d = d;
        for (int g = 0; g < 16; ++g) {
            int sum = 0;
            for (int j = 16 * g; j < 16 * g + 16; ++j) {
                out[b].q[j] = static_cast<std::int8_t>(std::lround(x[j] * id));
                sum += out[b].q[j];
            }
            out[b].bsums[g] = static_cast<std::int16_t>(sum);
        }
    }
}

const Kernels& scalarKernels() { return kScalar; }

const Kernels* runnableKernels(std::string_view name) {
    const auto& f = cpuFeatures();
    const bool avx2 = f.avx2 && f.fma && f.f16c, vnni = avx2 && f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni;
    const auto lower = [](std::string_view s) {
        std::string out(s);
        for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return out;
    };
    const std::string n = lower(name);
    if (n == "scalar") return &kScalar;
    if (n == "avx2") return avx2 ? avx2Kernels() : nullptr;
    if (n == "avx2+avx-vnni") return avx2 && f.avxVnni ? avx2AvxVnniKernels() : nullptr;
    if (n == "avx2+vnni") return vnni ? avx2VnniKernels() : nullptr;
    if (n == "avx-512" || n == "avx512") return vnni && f.avx512vbmi ? avx512Kernels() : nullptr;
    return nullptr;
}

const Kernels& bestKernels() {
    static const Kernels* best = [] {
        const Kernels* fastest = &kScalar;
        for (const char* name : {"avx2", "avx2+avx-vnni", "avx2+vnni", "avx-512"})
            if (const Kernels* k = runnableKernels(name)) fastest = k;
        if (const char* asked = std::getenv("LUMEN_CPU_KERNELS"); asked && *asked) {
            if (const Kernels* k = runnableKernels(asked)) return k;
            Log(LogLevel::Warning) << "LUMEN_CPU_KERNELS=" << asked << " is not a kernel set this CPU runs (scalar, avx2, avx2+avx-vnni, avx2+vnni, avx-512); using "
                                   << fastest->name;
        }
        return fastest;
    }();
    return *best;
}

}  // namespace lumen::inference::cpu
