// AVX-512 kernels: the AVX2+VNNI set, with Q4_0 and Q8_0 on 512-bit vectors against activations
// packed per matmul into the order the weight bytes land in. Compiled with per-function target
// attributes like the AVX2 file; chosen only on CPUs with AVX512 F, BW, VL, VNNI and VBMI.
//
// Why packed: per weight block the AVX2 kernel spends most of its instructions on work that does
// not depend on the weights (loading, signing and scaling the activations). Here one 64-byte load
// plus a byte permute (VBMI) brings four Q4_0 blocks' nibbles and one word permute their four
// scales; each activation group is a few aligned loads prepared once for all weight rows:
//  - the bytes, in the order the permuted weight bytes have;
//  - c: per int32 lane, -offset * (sum of the activation bytes that lane multiplies), the lane's
//    start value, so dpbusd's unsigned weights (nibble, or byte + 128) come out as the exact
//    integer sum of signed weights times activations;
//  - d: per lane, the activation block's scale.
// Each lane's integer sum is exact, as in the AVX2 kernel; only the float summation order differs.

#include "inference/cpu/kernels.h"

#if defined(__x86_64__)
// GCC 12 reports the AVX-512 headers' deliberately undefined pass-through operands.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#define LUMEN_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi")))

namespace lumen::inference::cpu {
namespace {

// Q4_0: a group is 4 blocks (72 weight bytes). Lane l (0-15) belongs to block l / 4 and sums
// elements 4(l%4)..+3 (from `low`) and 16 + 4(l%4)..+3 (from `high`).
struct alignas(64) GroupQ4_0 {
    std::int8_t low[64];   // block k's elements 0-15 at 16k
    std::int8_t high[64];  // block k's elements 16-31 at 16k
    std::int32_t c[16];
    float d[16];
};
static_assert(sizeof(GroupQ4_0) == 256);

// Q8_0: a group is 2 blocks (68 weight bytes); lane l belongs to block l / 8, elements 4(l%8)..+3.
struct alignas(64) GroupQ8_0 {
    std::int8_t q[64];
    std::int32_t c[16];
    float d[16];
};
static_assert(sizeof(GroupQ8_0) == 192);

template <class Group, int kPerGroup>
std::int64_t packedBytes(std::int64_t nBlocks) {
    return (nBlocks + kPerGroup - 1) / kPerGroup * static_cast<std::int64_t>(sizeof(Group));
}

// Missing blocks of a last, partial group are zero: they add nothing whatever the weights are.
void packQ4_0(const BlockQ8* x, std::int64_t nBlocks, std::uint8_t* out) {
    auto* groups = reinterpret_cast<GroupQ4_0*>(out);
    for (std::int64_t g = 0; g < (nBlocks + 3) / 4; ++g) {
        GroupQ4_0& o = groups[g];
        std::memset(&o, 0, sizeof o);
        for (int k = 0; k < 4 && 4 * g + k < nBlocks; ++k) {
            const BlockQ8& a = x[4 * g + k];
            std::memcpy(o.low + 16 * k, a.q, 16);
            std::memcpy(o.high + 16 * k, a.q + 16, 16);
            for (int l = 0; l < 4; ++l) {
                int sum = 0;
                for (int e = 0; e < 4; ++e) sum += a.q[4 * l + e] + a.q[16 + 4 * l + e];
                o.c[4 * k + l] = -8 * sum;  // the nibbles are q + 8
                o.d[4 * k + l] = a.d;
            }
        }
    }
}

void packQ8_0(const BlockQ8* x, std::int64_t nBlocks, std::uint8_t* out) {
    auto* groups = reinterpret_cast<GroupQ8_0*>(out);
    for (std::int64_t g = 0; g < (nBlocks + 1) / 2; ++g) {
        GroupQ8_0& o = groups[g];
        std::memset(&o, 0, sizeof o);
        for (int k = 0; k < 2 && 2 * g + k < nBlocks; ++k) {
            const BlockQ8& a = x[2 * g + k];
            std::memcpy(o.q + 32 * k, a.q, 32);
            for (int l = 0; l < 8; ++l) {
                int sum = 0;
                for (int e = 0; e < 4; ++e) sum += a.q[4 * l + e];
                o.c[8 * k + l] = -128 * sum;  // the weight bytes are q + 128
                o.d[8 * k + l] = a.d;
            }
        }
    }
}

// Byte i of a Q4_0 group's permuted nibbles: block i / 16, byte i % 16 of its 16 (at 18k + 2).
// Word i of the scales: block i / 4's half at byte 18k (word 9k).
// Q8_0: byte i is block i / 32's byte i % 32 (at 34k + 2); the scales are words 0 and 17.
struct Indices {
    alignas(64) std::uint8_t q4[64];
    alignas(64) std::uint16_t d4[32];
    alignas(64) std::uint8_t q8[64];
    alignas(64) std::uint16_t d8[32];
};
constexpr Indices kIndices = [] {
    Indices t{};
    for (int i = 0; i < 64; ++i) {
        t.q4[i] = static_cast<std::uint8_t>(18 * (i / 16) + 2 + i % 16);
        t.q8[i] = static_cast<std::uint8_t>(34 * (i / 32) + 2 + i % 32);
    }
    for (int i = 0; i < 16; ++i) {
        t.d4[i] = static_cast<std::uint16_t>(9 * (i / 4));
        t.d8[i] = static_cast<std::uint16_t>(17 * (i / 8));
    }
    return t;
}();

// One group's weights: the 64 bytes at w and `tail` (the group's bytes 64.., loaded exactly so
// nothing past the tensor is read) as unsigned bytes (Q4_0: low and high nibbles) and scales.
template <bool kFour>
struct GroupWeights {
    __m512i low, high;  // Q8_0: low only
    __m512 d;
};

template <bool kFour>
LUMEN_AVX512 inline GroupWeights<kFour> loadGroup(const std::uint8_t* w) {
    GroupWeights<kFour> g;
    const __m512i head = _mm512_loadu_si512(w);
    const __m512i tail = kFour ? _mm512_castsi128_si512(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(w + 64)))
                               : _mm512_castsi128_si512(_mm_cvtsi32_si128(static_cast<int>([&] {
                                     std::uint32_t v;
                                     std::memcpy(&v, w + 64, 4);
                                     return v;
                                 }())));
    const __m512i bytes = _mm512_permutex2var_epi8(head, _mm512_load_si512(kFour ? kIndices.q4 : kIndices.q8), tail);
    if constexpr (kFour) {
        const __m512i mask = _mm512_set1_epi8(0x0F);
        g.low = _mm512_and_si512(bytes, mask);
        g.high = _mm512_and_si512(_mm512_srli_epi16(bytes, 4), mask);
    } else {
        g.low = _mm512_xor_si512(bytes, _mm512_set1_epi8(static_cast<char>(0x80)));
    }
    g.d = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(_mm512_load_si512(kFour ? kIndices.d4 : kIndices.d8), head)));
    return g;
}

template <bool kFour, int R>
LUMEN_AVX512 void dotRowsPacked(const std::uint8_t* w, const std::uint8_t* packed, std::int64_t nBlocks, float* out) {
    using Group = std::conditional_t<kFour, GroupQ4_0, GroupQ8_0>;
    constexpr int kPerGroup = kFour ? 4 : 2;
    constexpr std::int64_t kBlockBytes = kFour ? 18 : 34, kGroupBytes = kPerGroup * kBlockBytes;
    const std::int64_t groups = (nBlocks + kPerGroup - 1) / kPerGroup, full = nBlocks / kPerGroup;
    const auto* a = reinterpret_cast<const Group*>(packed);
    __m512 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    const auto step = [&](const std::uint8_t* wg, std::int64_t g) LUMEN_AVX512 {
        const GroupWeights<kFour> wq = loadGroup<kFour>(wg);
        for (int r = 0; r < R; ++r) {
            const Group& x = a[r * groups + g];
            __m512i sums;
            if constexpr (kFour) {
                sums = _mm512_dpbusd_epi32(_mm512_load_si512(x.c), wq.low, _mm512_load_si512(x.low));
                sums = _mm512_dpbusd_epi32(sums, wq.high, _mm512_load_si512(x.high));
            } else {
                sums = _mm512_dpbusd_epi32(_mm512_load_si512(x.c), wq.low, _mm512_load_si512(x.q));
            }
            acc[r] = _mm512_fmadd_ps(_mm512_mul_ps(wq.d, _mm512_load_ps(x.d)), _mm512_cvtepi32_ps(sums), acc[r]);
        }
    };
    for (std::int64_t g = 0; g < full; ++g) step(w + g * kGroupBytes, g);
    if (full < groups) {  // a partial last group, from a zero-padded copy
        alignas(64) std::uint8_t last[2 * 64] = {};
        std::memcpy(last, w + full * kGroupBytes, static_cast<std::size_t>((nBlocks - full * kPerGroup) * kBlockBytes));
        step(last, full);
    }
    for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(acc[r]);
}

template <bool kFour, int R>
LUMEN_AVX512 void weightRows(const std::uint8_t* w, std::int64_t rowBytes, std::int64_t wRows, const std::uint8_t* packed, std::int64_t nBlocks,
                             float* y, std::int64_t yStride) {
    float out[R];
    for (std::int64_t j = 0; j < wRows; ++j, w += rowBytes) {
        dotRowsPacked<kFour, R>(w, packed, nBlocks, out);
        for (int k = 0; k < R; ++k) y[k * yStride + j] = out[k];
    }
}

template <bool kFour>
LUMEN_AVX512 void dotRowsPackedAny(const std::uint8_t* w, std::int64_t rowBytes, std::int64_t wRows, const std::uint8_t* packed, std::int64_t nBlocks,
                                   int rows, float* y, std::int64_t yStride) {
    switch (rows) {
        case 1: return weightRows<kFour, 1>(w, rowBytes, wRows, packed, nBlocks, y, yStride);
        case 2: return weightRows<kFour, 2>(w, rowBytes, wRows, packed, nBlocks, y, yStride);
        case 3: return weightRows<kFour, 3>(w, rowBytes, wRows, packed, nBlocks, y, yStride);
        default: return weightRows<kFour, 4>(w, rowBytes, wRows, packed, nBlocks, y, yStride);
    }
}

}  // namespace

const Kernels* avx512Kernels() {
    // Built on first use: the AVX2+VNNI set it starts from lives in another file.
    static const Kernels k = [] {
        Kernels set = *avx2VnniKernels();
        set.name = "AVX-512";
        set.packedQ8_0 = {packedBytes<GroupQ8_0, 2>, packQ8_0, dotRowsPackedAny<false>};
        set.packedQ4_0 = {packedBytes<GroupQ4_0, 4>, packQ4_0, dotRowsPackedAny<true>};
        return set;
    }();
    return &k;
}

}  // namespace lumen::inference::cpu

#else

namespace lumen::inference::cpu {
const Kernels* avx512Kernels() { return nullptr; }
}  // namespace lumen::inference::cpu

#endif
