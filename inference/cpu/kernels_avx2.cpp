// AVX2 + FMA + F16C kernels. Compiled with per-function target attributes, so this file builds
// into the same binary as everything else and is only called on CPUs that have these features.

#include "inference/cpu/kernels.h"
#include "inference/cpu/x86_common.h"
#include "inference/cpu/row_kernels.h"
#include "inference/cpu/delta_net.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <type_traits>

#include "inference/formats/half.h"
#include "inference/formats/quants.h"

#define LUMEN_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace lumen::inference::cpu {
namespace {

LUMEN_AVX2 inline float horizontalSum(__m256 v) {
    const __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    __m128 s = _mm_add_ps(lo, hi);
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

LUMEN_AVX2 inline float horizontalMax(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

LUMEN_AVX2 float dotF32(const float* w, const float* x, std::int64_t n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    std::int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), acc1);
    }
    for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), acc0);
    float sum = horizontalSum(_mm256_add_ps(acc0, acc1));
    for (; i < n; ++i) sum += w[i] * x[i];
    return sum;
}

LUMEN_AVX2 float dotF16(const std::uint16_t* w, const float* x, std::int64_t n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    std::int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
        const __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i + 8)));
        acc0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + i), acc0);
        acc1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + i + 8), acc1);
    }
    float sum = horizontalSum(_mm256_add_ps(acc0, acc1));
    for (; i < n; ++i) sum += halfToFloat(w[i]) * x[i];
    return sum;
}

// Sum of 32 int8 x int8 products as 8 int32 lanes (signs moved onto the activations so the
// weights can be used as the unsigned operand of maddubs).
LUMEN_AVX2 inline __m256i dotBytes(__m256i w, __m256i a) {
    const __m256i products = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w));
    return _mm256_madd_epi16(products, _mm256_set1_epi16(1));
}

LUMEN_AVX2 inline float halfAt(const std::uint8_t* p) {
    std::uint16_t h;
    std::memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

// Q8_0 and Q4_0 (nibbles to bytes: elements 0-15 from the low nibbles, then 16-31, minus 8),
// with the weights' signs moved onto the activations so the byte products take them unsigned.
// One body, stamped for two instruction sets that differ only in how `PRODUCTS(magnitude, aq)`
// sums the unsigned-by-signed byte products into int32 lanes.
// Even and odd blocks go to two accumulators per row (summed at the end): one chain would wait on
// the previous block's FMA, which decode (one row) cannot hide.
#define LUMEN_DEFINE_DOT_ROWS_Q40Q80(NAME, TARGET, PRODUCTS)                                                         \
    template <bool kFour, int R>                                                                                     \
    TARGET void NAME(const std::uint8_t* w, const BlockQ8* x, std::int64_t nBlocks, float* out) {                    \
        __m256 even[R], odd[R];                                                                                      \
        for (int r = 0; r < R; ++r) even[r] = odd[r] = _mm256_setzero_ps();                                          \
        const __m256i lowMask = _mm256_set1_epi8(0x0F), eight = _mm256_set1_epi8(8);                                 \
        const auto step = [&](std::int64_t b, __m256* acc) TARGET {                                                  \
            const std::uint8_t* wb = w + b * (kFour ? 18 : 34);                                                      \
            __m256i wq;                                                                                              \
            if constexpr (kFour) {                                                                                   \
                const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(wb + 2));                       \
                wq = _mm256_sub_epi8(_mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), lowMask), eight); \
            } else {                                                                                                 \
                wq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + 2));                                   \
            }                                                                                                        \
            const __m256i magnitude = _mm256_sign_epi8(wq, wq); /* signs onto the activations, once per block */     \
            const float d = halfAt(wb);                                                                              \
            _Pragma("GCC unroll 4") for (int r = 0; r < R; ++r) {                                                    \
                const BlockQ8& a = x[r * nBlocks + b];                                                               \
                const __m256i aq = _mm256_sign_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q)), wq);  \
                const __m256i sums = PRODUCTS;                                                                       \
                acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d * a.d), _mm256_cvtepi32_ps(sums), acc[r]);                 \
            }                                                                                                        \
        };                                                                                                           \
        std::int64_t b = 0;                                                                                          \
        for (; b + 2 <= nBlocks; b += 2) {                                                                           \
            step(b, even);                                                                                           \
            step(b + 1, odd);                                                                                        \
        }                                                                                                            \
        if (b < nBlocks) step(b, even);                                                                              \
        for (int r = 0; r < R; ++r) out[r] = horizontalSum(_mm256_add_ps(even[r], odd[r]));                          \
    }

LUMEN_DEFINE_DOT_ROWS_Q40Q80(dotRowsQ40Q80, LUMEN_AVX2, _mm256_madd_epi16(_mm256_maddubs_epi16(magnitude, aq), _mm256_set1_epi16(1)))

// AVX512-VNNI's dpbusd (on 256-bit vectors) does maddubs + madd in one instruction. No sum here
// can saturate maddubs (|w| <= 127 or 8, |a| <= 127), so the integers, and the results, are
// bit-identical to the AVX2 kernel.
#define LUMEN_AVX2_VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")))
LUMEN_DEFINE_DOT_ROWS_Q40Q80(dotRowsQ40Q80Vnni, LUMEN_AVX2_VNNI, _mm256_dpbusd_epi32(_mm256_setzero_si256(), magnitude, aq))
// The same on AVX-VNNI, the VEX-encoded dpbusd of CPUs without AVX-512 (Intel since Alder Lake).
#define LUMEN_AVX2_AVX_VNNI __attribute__((target("avx2,fma,f16c,avxvnni")))
LUMEN_DEFINE_DOT_ROWS_Q40Q80(dotRowsQ40Q80AvxVnni, LUMEN_AVX2_AVX_VNNI, _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), magnitude, aq))

// The codebook formats (IQ4_NL, IQ4_XS, MXFP4): a block's 32 nibbles (elements 0-15 low,
// 16-31 high) looked up in a 16-entry table of signed bytes by one shuffle, then multiplied
// with the activation bytes as Q8_0's are (|entries| <= 127: maddubs cannot saturate).
LUMEN_AVX2 inline __m256i codebookBytes(const std::uint8_t* qs, __m256i table) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    return _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), _mm256_set1_epi8(0x0F)));
}

LUMEN_AVX2 inline __m256i codebookTable(const std::int8_t (&values)[16]) {
    return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(values)));
}

// Where each format keeps a block of 32's nibbles and scale: IQ4_NL and MXFP4 one block per
// unit, IQ4_XS eight sub-blocks of a 256-element super-block.
struct IQ4NLBlocks {
    static constexpr int kBytes = 18, kSub = 1;
    static constexpr const std::int8_t (&kTable)[16] = kIq4nlValues;
    LUMEN_AVX2 static float scale(const std::uint8_t* p, int) { return halfAt(p); }
    static const std::uint8_t* nibbles(const std::uint8_t* p, int) { return p + 2; }
};
struct IQ4XSBlocks {
    static constexpr int kBytes = 136, kSub = 8;
    static constexpr const std::int8_t (&kTable)[16] = kIq4nlValues;
    LUMEN_AVX2 static float scale(const std::uint8_t* p, int ib) {
        const int ls = ((p[4 + ib / 2] >> (4 * (ib % 2))) & 0xF) | ((((p[2] | (p[3] << 8)) >> (2 * ib)) & 3) << 4);
        return halfAt(p) * static_cast<float>(ls - 32);
    }
    static const std::uint8_t* nibbles(const std::uint8_t* p, int ib) { return p + 8 + 16 * ib; }
};
struct MXFP4Blocks {
    static constexpr int kBytes = 17, kSub = 1;
    static constexpr const std::int8_t (&kTable)[16] = kMxfp4Values;
    static float scale(const std::uint8_t* p, int) { return e8m0Half(p[0]); }
    static const std::uint8_t* nibbles(const std::uint8_t* p, int) { return p + 1; }
};

// R activation rows (row k at x + k * nBlocks) against one weight row of a codebook format:
// per block, the looked-up bytes against each row's bytes (Q8_0's signed-byte products), times
// the weight's and the row's scales.
template <class C, int R>
LUMEN_AVX2 void codebookRows(const std::uint8_t* w, const BlockQ8* x, std::int64_t nBlocks, float* out) {
    const __m256i table = codebookTable(C::kTable), ones = _mm256_set1_epi16(1);
    __m256 even[R], odd[R];  // (even and odd blocks: two FMA chains, as Q8_0's kernel)
    for (int r = 0; r < R; ++r) even[r] = odd[r] = _mm256_setzero_ps();
    const auto step = [&](const std::uint8_t* unit, std::int64_t block, int ib, __m256* acc) LUMEN_AVX2 {
        const __m256i wq = codebookBytes(C::nibbles(unit, ib), table), magnitude = _mm256_sign_epi8(wq, wq);
        const float d = C::scale(unit, ib);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
            const BlockQ8& a = x[r * nBlocks + block];
            const __m256i aq = _mm256_sign_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q)), wq);
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d * a.d), _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(magnitude, aq), ones)), acc[r]);
        }
    };
    if constexpr (C::kSub == 1) {
        std::int64_t b = 0;
        for (; b + 2 <= nBlocks; b += 2, w += 2 * C::kBytes) {
            step(w, b, 0, even);
            step(w + C::kBytes, b + 1, 0, odd);
        }
        if (b < nBlocks) step(w, b, 0, even);
    } else {
        for (std::int64_t b = 0; b < nBlocks; b += C::kSub, w += C::kBytes)
            for (int ib = 0; ib < C::kSub; ib += 2) {
                step(w, b + ib, ib, even);
                step(w, b + ib + 1, ib + 1, odd);
            }
    }
    for (int r = 0; r < R; ++r) out[r] = horizontalSum(_mm256_add_ps(even[r], odd[r]));
}

template <class C>
constexpr auto kCodebookRows = someRows<BlockQ8, codebookRows<C, 1>, codebookRows<C, 2>, codebookRows<C, 3>, codebookRows<C, 4>>;

// Byte e of the result is 0xFF where bit e of x is set (the fifth bits of Q5 blocks).
LUMEN_AVX2 inline __m256i bytesFromBits(std::uint32_t x) {
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(x)),
                                               _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101,
                                                                  0x0202020202020202, 0x0303030303030303));
    const __m256i allButBit = _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe);  // byte e: every bit but e % 8
    return _mm256_cmpeq_epi8(_mm256_or_si256(spread, allButBit), _mm256_set1_epi64x(-1));
}

// A 32-element block's nibbles as bytes in element order: low nibbles (elements 0-15), then high.
LUMEN_AVX2 inline __m256i nibbles(const std::uint8_t* qs) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), _mm256_set1_epi8(0x0F));
}

LUMEN_AVX2 inline std::uint32_t loadU32(const std::uint8_t* p) {
    std::uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

// Unsigned weights (0..31) against signed activations: maddubs directly.
LUMEN_AVX2 inline __m256 dotUnsigned(__m256i w, const BlockQ8& x) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.q));
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(w, a), _mm256_set1_epi16(1)));
}

LUMEN_AVX2 float dotQ4_1(const std::uint8_t* w, const BlockQ8* x, std::int64_t nBlocks) {
    __m256 acc = _mm256_setzero_ps();
    float offsets = 0.0f;
    for (std::int64_t b = 0; b < nBlocks; ++b, w += 20) {
        acc = _mm256_fmadd_ps(_mm256_set1_ps(halfAt(w) * x[b].d), dotUnsigned(nibbles(w + 4), x[b]), acc);
        offsets += halfAt(w + 2) * x[b].s;
    }
    return horizontalSum(acc) + offsets;
}

LUMEN_AVX2 float dotQ5_0(const std::uint8_t* w, const BlockQ8* x, std::int64_t nBlocks) {
    __m256 acc = _mm256_setzero_ps();
    for (std::int64_t b = 0; b < nBlocks; ++b, w += 22) {
        const __m256i fifth = _mm256_and_si256(bytesFromBits(loadU32(w + 2)), _mm256_set1_epi8(0x10));
        const __m256i q = _mm256_sub_epi8(_mm256_or_si256(nibbles(w + 6), fifth), _mm256_set1_epi8(16));
        const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].q));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(halfAt(w) * x[b].d), _mm256_cvtepi32_ps(dotBytes(q, a)), acc);
    }
    return horizontalSum(acc);
}

LUMEN_AVX2 float dotQ5_1(const std::uint8_t* w, const BlockQ8* x, std::int64_t nBlocks) {
    __m256 acc = _mm256_setzero_ps();
    float offsets = 0.0f;
    for (std::int64_t b = 0; b < nBlocks; ++b, w += 24) {
        const __m256i fifth = _mm256_and_si256(bytesFromBits(loadU32(w + 4)), _mm256_set1_epi8(0x10));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(halfAt(w) * x[b].d), dotUnsigned(_mm256_or_si256(nibbles(w + 8), fifth), x[b]), acc);
        offsets += halfAt(w + 2) * x[b].s;
    }
    return horizontalSum(acc) + offsets;
}

LUMEN_AVX2 inline std::int32_t horizontalSumInt(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

// Q4_K, and Q5_K when FiveBits: per 32-element sub-block j, sum(q * a) (q unsigned, so it is
// maddubs' unsigned operand directly) times its 6-bit scale inside madd; the minimums from the
// activation sums (madd against each minimum twice: two 16-value sums per sub-block). Scales
// unpack on vectors (kQuantScaleBytes); each row keeps float lanes, summed across once at the
// end. Q5_K's fifth bit for the low/high half of group g is qh bit 2g/2g+1.
template <bool FiveBits, int R>
LUMEN_AVX2 void dotRowsQ45_K(const std::uint8_t* w, const BlockQ8K* x, std::int64_t nBlocks, float* out) {
    constexpr std::int64_t kBytes = FiveBits ? 176 : 144;
    const __m256i lowMask = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    const __m128i twice = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    __m256 total[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) total[r] = _mm256_setzero_ps();
    for (std::int64_t b = 0; b < nBlocks; ++b, w += kBytes) {
        const __m128i head = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w));
        const __m128 dm = _mm_cvtph_ps(head);
        const __m256 d = _mm256_broadcastss_ps(dm), dmin = _mm256_broadcastss_ps(_mm_movehdup_ps(dm));
        const __m128i scaleBytes = kQuantScaleBytes(head);
        const __m256i scales = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(scaleBytes));  // both halves: words sc0..sc7
        const __m256i mins = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(_mm_srli_si128(scaleBytes, 8), twice));
        const __m256i qh = FiveBits ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 16)) : _mm256_setzero_si256();
        __m256i acc[R];
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int g = 0; g < 4; ++g) {
            const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + (FiveBits ? 48 : 16) + 32 * g));
            __m256i lo = _mm256_and_si256(bytes, lowMask);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), lowMask);
            if constexpr (FiveBits) {
                const __m256i bitLo = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * g)), one);
                const __m256i bitHi = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * g + 1)), one);
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(bitLo, 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(bitHi, 4));
            }
            // scales 2g and 2g+1, each across a vector
            const __m256i scLow = _mm256_shuffle_epi8(scales, _mm256_set1_epi16(static_cast<short>(((4 * g + 1) << 8) | (4 * g))));
            const __m256i scHigh = _mm256_shuffle_epi8(scales, _mm256_set1_epi16(static_cast<short>(((4 * g + 3) << 8) | (4 * g + 2))));
#pragma GCC unroll 4
            for (int r = 0; r < R; ++r) {
                const std::int8_t* q = x[r * nBlocks + b].q + 64 * g;
                const __m256i a0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
                const __m256i a1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32));
                acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(_mm256_maddubs_epi16(lo, a0), scLow));
                acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(_mm256_maddubs_epi16(hi, a1), scHigh));
            }
        }
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
            const BlockQ8K& a = x[r * nBlocks + b];
            const __m256i minSums = _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.bsums)), mins);
            const __m256 block = _mm256_fmsub_ps(_mm256_cvtepi32_ps(acc[r]), d, _mm256_mul_ps(_mm256_cvtepi32_ps(minSums), dmin));
            total[r] = _mm256_fmadd_ps(block, _mm256_set1_ps(a.d), total[r]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) out[r] = horizontalSum(total[r]);
}

// 8 bf16 values as floats: bf16 is the top half of an f32.
LUMEN_AVX2 inline __m256 widenBf16(const std::uint16_t* p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
}

LUMEN_AVX2 float dotBF16(const std::uint16_t* w, const float* x, std::int64_t n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    std::int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(widenBf16(w + i), _mm256_loadu_ps(x + i), acc0);
        acc1 = _mm256_fmadd_ps(widenBf16(w + i + 8), _mm256_loadu_ps(x + i + 8), acc1);
    }
    float sum = horizontalSum(_mm256_add_ps(acc0, acc1));
    for (; i < n; ++i) sum += bf16ToFloat(w[i]) * x[i];
    return sum;
}

// Q2_K and Q3_K: each 32-value chunk (half h, shift s) of a super-block is one 32-byte group of
// 2-bit values shifted down by 2s; its two sub-blocks of 16 get their scales through madd, as
// in Q6_K. Q3_K's third bit is added as +4 and the whole offset of -4 taken out with the
// activation sums.
template <bool kThirdBit>
LUMEN_AVX2 float dotQ23_K(const std::uint8_t* w, const BlockQ8K* x, std::int64_t nBlocks) {
    constexpr int kBlockBytes = kThirdBit ? 110 : 84, kQs = kThirdBit ? 32 : 16;
    const __m256i two = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    float sum = 0.0f;
    for (std::int64_t b = 0; b < nBlocks; ++b, w += kBlockBytes) {
        int scale[16];
        for (int is = 0; is < 16; ++is) scale[is] = kThirdBit ? q3kScale(w + 96, is) : (w[is] & 0xF);
        const __m256i hmask = kThirdBit ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w)) : _mm256_setzero_si256();
        __m256i acc = _mm256_setzero_si256();
        for (int half = 0; half < 2; ++half) {
            const __m256i qs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + kQs + 32 * half));
            for (int s = 0; s < 4; ++s) {
                __m256i q = _mm256_and_si256(_mm256_srli_epi16(qs, 2 * s), two);
                if constexpr (kThirdBit) {
                    const __m256i bit = _mm256_and_si256(_mm256_srli_epi16(hmask, 4 * half + s), one);
                    q = _mm256_or_si256(q, _mm256_slli_epi16(bit, 2));  // 0..7; the -4 comes later
                }
                const int is = 8 * half + 2 * s;
                const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].q + 16 * is));
                const __m256i scales = _mm256_set_m128i(_mm_set1_epi16(static_cast<short>(scale[is + 1])), _mm_set1_epi16(static_cast<short>(scale[is])));
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(q, a), scales));
            }
        }
        std::int32_t offsets = 0;
        for (int is = 0; is < 16; ++is) offsets += (kThirdBit ? 4 * scale[is] : (w[is] >> 4)) * x[b].bsums[is];
        if constexpr (kThirdBit) {
            sum += halfAt(w + 108) * x[b].d * static_cast<float>(horizontalSumInt(acc) - offsets);
        } else {
            sum += x[b].d * (halfAt(w + 80) * static_cast<float>(horizontalSumInt(acc)) - halfAt(w + 82) * static_cast<float>(offsets));
        }
    }
    return sum;
}

// Q6_K: 6-bit values kept unsigned (0..63) for maddubs, the signed scales applied per 16 by
// madd (picked from one vector of the 16 scales by byte shuffles), and the -32 offset taken out
// with the activation sums (madd against the scales); each row keeps float lanes, summed across
// once at the end.
template <int R>
LUMEN_AVX2 void dotRowsQ6_K(const std::uint8_t* w, const BlockQ8K* x, std::int64_t nBlocks, float* out) {
    const __m256i lowMask = _mm256_set1_epi8(0x0F), highMask = _mm256_set1_epi8(0x30);
    // group c of a half: scale 2c of the half's 8 across the low 128 bits, 2c + 1 across the high
    __m256i pick[4];
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c)
        pick[c] = _mm256_setr_m128i(_mm_set1_epi16(static_cast<short>(((4 * c + 1) << 8) | (4 * c))), _mm_set1_epi16(static_cast<short>(((4 * c + 3) << 8) | (4 * c + 2))));
    __m256 total[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) total[r] = _mm256_setzero_ps();
    for (std::int64_t b = 0; b < nBlocks; ++b, w += 210) {
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 192)));
        const __m256 dw = _mm256_set1_ps(halfAt(w + 208));
        __m256i acc[R];
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_si256();
#pragma GCC unroll 2
        for (int half = 0; half < 2; ++half) {
            const std::uint8_t* ql = w + 64 * half;
            const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
            const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
            const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 128 + 32 * half));
            const __m256i q[4] = {
                _mm256_or_si256(_mm256_and_si256(l0, lowMask), _mm256_and_si256(_mm256_slli_epi16(qh, 4), highMask)),
                _mm256_or_si256(_mm256_and_si256(l1, lowMask), _mm256_and_si256(_mm256_slli_epi16(qh, 2), highMask)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), lowMask), _mm256_and_si256(qh, highMask)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), lowMask), _mm256_and_si256(_mm256_srli_epi16(qh, 2), highMask)),
            };
            // the half's 8 scales in both 128-bit lanes
            const __m256i halfScales = half == 0 ? _mm256_permute2x128_si256(sc16, sc16, 0x00) : _mm256_permute2x128_si256(sc16, sc16, 0x11);
#pragma GCC unroll 4
            for (int c = 0; c < 4; ++c) {
                const __m256i scales = _mm256_shuffle_epi8(halfScales, pick[c]);
#pragma GCC unroll 4
                for (int r = 0; r < R; ++r) {
                    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[r * nBlocks + b].q + 128 * half + 32 * c));
                    acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(_mm256_maddubs_epi16(q[c], a), scales));
                }
            }
        }
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
            const BlockQ8K& a = x[r * nBlocks + b];
            // the bias: 32 * scale * activation sum per 16 values
            const __m256i offsets = _mm256_slli_epi32(_mm256_madd_epi16(sc16, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.bsums))), 5);
            total[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(acc[r], offsets)), _mm256_mul_ps(dw, _mm256_set1_ps(a.d)), total[r]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) out[r] = horizontalSum(total[r]);
}

// Float weights, 8 at a time, as floats.
struct LoadF32 {
    static constexpr bool kEightTail = true;
    LUMEN_AVX2 static inline __m256 at(const std::uint8_t* row, std::int64_t i) { return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + i); }
    static float one(const std::uint8_t* row, std::int64_t i) {
        float v;
        std::memcpy(&v, row + 4 * i, 4);
        return v;
    }
};
struct LoadF16 {
    static constexpr bool kEightTail = false;
    LUMEN_AVX2 static inline __m256 at(const std::uint8_t* row, std::int64_t i) {
        return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * i)));
    }
    static float one(const std::uint8_t* row, std::int64_t i) {
        std::uint16_t h;
        std::memcpy(&h, row + 2 * i, 2);
        return halfToFloat(h);
    }
};
struct LoadBF16 {
    static constexpr bool kEightTail = false;
    LUMEN_AVX2 static inline __m256 at(const std::uint8_t* row, std::int64_t i) { return widenBf16(reinterpret_cast<const std::uint16_t*>(row + 2 * i)); }
    static float one(const std::uint8_t* row, std::int64_t i) {
        std::uint16_t h;
        std::memcpy(&h, row + 2 * i, 2);
        return bf16ToFloat(h);
    }
};

// One weight row against T activation rows, each weight vector loaded once for all T. The sums
// are formed exactly as dotF32 / dotF16 / dotBF16 form them (two accumulators over alternate
// 8-blocks of each 16, F32 then one more 8-block, then the scalar tail), so a prompt's rows get
// bit-for-bit the values decoding them one at a time gets.
template <class Load, int T>
LUMEN_AVX2 void tileFloat(const std::uint8_t* w, const float* x, std::int64_t cols, float* out) {
    __m256 acc0[T], acc1[T];
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) acc0[t] = acc1[t] = _mm256_setzero_ps();
    std::int64_t i = 0;
    for (; i + 16 <= cols; i += 16) {
        const __m256 w0 = Load::at(w, i), w1 = Load::at(w, i + 8);
#pragma GCC unroll 4
        for (int t = 0; t < T; ++t) {
            acc0[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + t * cols + i), acc0[t]);
            acc1[t] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + t * cols + i + 8), acc1[t]);
        }
    }
    if constexpr (Load::kEightTail) {
        for (; i + 8 <= cols; i += 8) {
            const __m256 w0 = Load::at(w, i);
#pragma GCC unroll 4
            for (int t = 0; t < T; ++t) acc0[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + t * cols + i), acc0[t]);
        }
    }
    for (int t = 0; t < T; ++t) {
        float sum = horizontalSum(_mm256_add_ps(acc0[t], acc1[t]));
        for (std::int64_t j = i; j < cols; ++j) sum += Load::one(w, j) * x[t * cols + j];
        out[t] = sum;
    }
}

template <class Load>
LUMEN_AVX2 void tile(const std::uint8_t* w, std::int64_t rowBytes, int wRows, const float* x, std::int64_t cols, int xRows, float* out) {
    for (int j = 0; j < wRows; ++j, w += rowBytes, out += kMaxDotRows) {
        switch (xRows) {
            case 1: tileFloat<Load, 1>(w, x, cols, out); break;
            case 2: tileFloat<Load, 2>(w, x, cols, out); break;
            case 3: tileFloat<Load, 3>(w, x, cols, out); break;
            default: tileFloat<Load, 4>(w, x, cols, out); break;
        }
    }
}

// exp on 8 lanes: x = n ln2 + r with |r| <= ln2 / 2 (ln2 in two parts so r is exact enough),
// e^r by its degree-7 Taylor-like minimax polynomial (Cephes' expf coefficients), times 2^n
// built in the exponent bits. Inputs below -87.3 give about 1e-38 instead of underflowing.
LUMEN_AVX2 inline __m256 exp8(__m256 x) {
    x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.3762626647949f)), _mm256_set1_ps(-87.3365447505531f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i scale = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(scale));
}

LUMEN_AVX2 float expShifted(float* x, std::int64_t n, float shift) {
    const __m256 s = _mm256_set1_ps(shift);
    __m256 total = _mm256_setzero_ps();
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), s));
        _mm256_storeu_ps(x + i, e);
        total = _mm256_add_ps(total, e);
    }
    float sum = horizontalSum(total);
    if (i < n) {  // the last 1-7 values through the same vector code
        alignas(32) float tail[8];
        for (int k = 0; k < 8; ++k) tail[k] = i + k < n ? x[i + k] - shift : -100.0f;
        _mm256_store_ps(tail, exp8(_mm256_load_ps(tail)));
        for (; i < n; ++i) sum += (x[i] = tail[i % 8]);
    }
    return sum;
}

// Key or value rows of a KV cache: the 8 values from element i on, as floats.
struct KvF32 {
    const float* p;
    LUMEN_AVX2 __m256 at(std::int64_t i) const { return _mm256_loadu_ps(p + i); }
};
struct KvF16 {
    const std::uint16_t* p;
    LUMEN_AVX2 __m256 at(std::int64_t i) const { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i))); }
};
struct KvQ8 {  // (8 values never straddle two 32-value blocks)
    const std::int8_t* p;
    const float* scales;
    LUMEN_AVX2 __m256 at(std::int64_t i) const {
        const __m256 q = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + i))));
        return _mm256_mul_ps(q, _mm256_broadcast_ss(scales + i / 32));
    }
};

LUMEN_AVX2 void siluMul(float* gate, const float* up, std::int64_t n) {
    const __m256 one = _mm256_set1_ps(1.0f), signBit = _mm256_set1_ps(-0.0f);
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 g = _mm256_loadu_ps(gate + i);
        const __m256 sigmoidDenominator = _mm256_add_ps(one, exp8(_mm256_xor_ps(g, signBit)));
        _mm256_storeu_ps(gate + i, _mm256_mul_ps(_mm256_div_ps(g, sigmoidDenominator), _mm256_loadu_ps(up + i)));
    }
    for (; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

// One head's scores against `count` keys over the C * 8 values of q at `q` (s = the sums; add:
// to what s holds). C is a constant so the accumulators live in registers.
template <class Kv, int C>
LUMEN_AVX2 void scoreSlice(const float* q, const Kv& keys, std::int64_t at, std::int64_t stride, std::int64_t count, bool add, float* s) {
    __m256 qv[C];
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) qv[c] = _mm256_loadu_ps(q + 8 * c);
    std::int64_t t = 0;
    for (; t + 4 <= count; t += 4) {
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c)
#pragma GCC unroll 4
            for (int j = 0; j < 4; ++j) acc[j] = _mm256_fmadd_ps(keys.at(at + (t + j) * stride + 8 * c), qv[c], acc[j]);
        // four sums at once: pairwise adds within, then across the 128-bit halves
        const __m256 pairs = _mm256_hadd_ps(_mm256_hadd_ps(acc[0], acc[1]), _mm256_hadd_ps(acc[2], acc[3]));
        __m128 sums = _mm_add_ps(_mm256_castps256_ps128(pairs), _mm256_extractf128_ps(pairs, 1));
        if (add) sums = _mm_add_ps(sums, _mm_loadu_ps(s + t));
        _mm_storeu_ps(s + t, sums);
    }
    for (; t < count; ++t) {
        __m256 acc = _mm256_setzero_ps();
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c) acc = _mm256_fmadd_ps(keys.at(at + t * stride + 8 * c), qv[c], acc);
        s[t] = (add ? s[t] : 0.0f) + horizontalSum(acc);
    }
}

// out[0 .. C * 8) (+)= sum over positions u of w[u] * value row u: set on the first block of
// positions, added to on the others, times `inverse` after the last.
template <class Kv, int C>
LUMEN_AVX2 void valueSlice(const float* w, const Kv& values, std::int64_t at, std::int64_t stride, std::int64_t count, bool first, bool last,
                           float inverse, float* out) {
    __m256 acc[C];
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) acc[c] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(out + 8 * c);
    for (std::int64_t u = 0; u < count; ++u) {
        const __m256 weight = _mm256_set1_ps(w[u]);
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c) acc[c] = _mm256_fmadd_ps(weight, values.at(at + u * stride + 8 * c), acc[c]);
    }
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) _mm256_storeu_ps(out + 8 * c, last ? _mm256_mul_ps(acc[c], _mm256_set1_ps(inverse)) : acc[c]);
}

// f(std::integral_constant<int, C>{}) for C = chunks (1 to 8), known at run time.
template <class F>
LUMEN_AVX2 void withChunks(int chunks, F f) {
    switch (chunks) {
        case 1: return f(std::integral_constant<int, 1>{});
        case 2: return f(std::integral_constant<int, 2>{});
        case 3: return f(std::integral_constant<int, 3>{});
        case 4: return f(std::integral_constant<int, 4>{});
        case 5: return f(std::integral_constant<int, 5>{});
        case 6: return f(std::integral_constant<int, 6>{});
        case 7: return f(std::integral_constant<int, 7>{});
        default: return f(std::integral_constant<int, 8>{});
    }
}

// Attention for a few queries sharing a KV head (see Kernels::attendF32). Keys and values go
// by in blocks that stay in L1 for all the queries: per query, its scores with each 64-value
// slice of q in registers and keys four at a time, their sums reduced together; the softmax
// numerators; the values' weighted sums with 64 outputs in registers over each block, scaled by
// the softmax's 1 / sum after the last. The blocking changes no sum's order.
// The softmax's denominator over s[0..count) (maximum maxScore) and a sink logit (-inf: none):
// the numerators exp(s - max) replace s, the sink's has no place.
LUMEN_AVX2 inline float withSink(float* s, std::int64_t count, float maxScore, float sink) {
    const float top = std::max(maxScore, sink);
    return expShifted(s, count, top) + (sink == -INFINITY ? 0.0f : std::exp(sink - top));
}

template <class Kv>
LUMEN_AVX2 void attendHeads(const float* q, int queries, std::int64_t qStride, const Kv& keys, const Kv& values, std::int64_t stride, std::int64_t count,
                            std::int64_t headDim, float scale, float softcap, const float* sinks, float* scratch, float* out) {
    constexpr std::int64_t kSlice = 64, kBlock = 64;  // 64 positions of 64 values: 16 KB of F32 keys
    const __m256 scaleV = _mm256_set1_ps(scale);
    const auto slices = [&](auto fn) LUMEN_AVX2 {
        for (std::int64_t c0 = 0; c0 < headDim; c0 += kSlice)
            withChunks(static_cast<int>(std::min(kSlice, headDim - c0) / 8), [&](auto chunks) LUMEN_AVX2 { fn(c0, chunks); });
    };
    for (std::int64_t b = 0; b < count; b += kBlock) {
        const std::int64_t n = std::min(kBlock, count - b);
        for (int i = 0; i < queries; ++i)
            slices([&](std::int64_t c0, auto chunks) LUMEN_AVX2 {
                scoreSlice<Kv, decltype(chunks)::value>(q + i * qStride + c0, keys, b * stride + c0, stride, n, c0 > 0, scratch + i * count + b);
            });
    }
    float inverse[kMaxAttentionQueries];
    for (int i = 0; i < queries; ++i) {
        // Softmax numerators of the scaled scores: exp(scale * s - max).
        float* s = scratch + i * count;
        if (softcap > 0.0f) {
            // Soft-capped first (one tanh per score; the dot products above dominate).
            float maxScore = -INFINITY;
            for (std::int64_t t = 0; t < count; ++t) maxScore = std::max(maxScore, s[t] = softcap * std::tanh(s[t] * scale / softcap));
            inverse[i] = 1.0f / withSink(s, count, maxScore, sinks ? sinks[i] : -INFINITY);
            continue;
        }
        __m256 maxV = _mm256_set1_ps(-INFINITY);
        std::int64_t t = 0;
        for (; t + 8 <= count; t += 8) {
            const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(s + t), scaleV);
            _mm256_storeu_ps(s + t, v);
            maxV = _mm256_max_ps(maxV, v);
        }
        float maxScore = horizontalMax(maxV);
        for (; t < count; ++t) maxScore = std::max(maxScore, s[t] *= scale);
        inverse[i] = 1.0f / withSink(s, count, maxScore, sinks ? sinks[i] : -INFINITY);
    }
    for (std::int64_t b = 0; b < count; b += kBlock) {
        const std::int64_t n = std::min(kBlock, count - b);
        for (int i = 0; i < queries; ++i)
            slices([&](std::int64_t c0, auto chunks) LUMEN_AVX2 {
                valueSlice<Kv, decltype(chunks)::value>(scratch + i * count + b, values, b * stride + c0, stride, n, b == 0, b + n == count, inverse[i],
                                                        out + i * qStride + c0);
            });
    }
}

LUMEN_AVX2 void attendF32(const float* q, int queries, std::int64_t qStride, const float* keys, const float* values, std::int64_t stride,
                          std::int64_t count, std::int64_t headDim, float scale, float softcap, const float* sinks, float* scratch, float* out) {
    attendHeads(q, queries, qStride, KvF32{keys}, KvF32{values}, stride, count, headDim, scale, softcap, sinks, scratch, out);
}

LUMEN_AVX2 void attendF16(const float* q, int queries, std::int64_t qStride, const std::uint16_t* keys, const std::uint16_t* values,
                          std::int64_t stride, std::int64_t count, std::int64_t headDim, float scale, float softcap, const float* sinks, float* scratch, float* out) {
    attendHeads(q, queries, qStride, KvF16{keys}, KvF16{values}, stride, count, headDim, scale, softcap, sinks, scratch, out);
}

LUMEN_AVX2 void attendQ8(const float* q, int queries, std::int64_t qStride, const std::int8_t* keys, const std::int8_t* values, const float* keyScales,
                         const float* valueScales, std::int64_t stride, std::int64_t count, std::int64_t headDim, float scale, float softcap,
                         const float* sinks, float* scratch, float* out) {
    attendHeads(q, queries, qStride, KvQ8{keys, keyScales}, KvQ8{values, valueScales}, stride, count, headDim, scale, softcap, sinks, scratch, out);
}

// quantizeActivations' arithmetic on 8 lanes: d = amax / 127, q = lround(x * (1 / d)) (halves
// away from zero: the truncation plus one where the dropped fraction is at least a half).
LUMEN_AVX2 inline __m256 absMax(const float* x, int vectors) {
    __m256 amax = _mm256_setzero_ps();
    for (int k = 0; k < vectors; ++k) amax = _mm256_max_ps(amax, _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_loadu_ps(x + 8 * k)));
    return amax;
}

LUMEN_AVX2 inline __m256i roundedQuotients(const float* x, __m256 id) {
    const __m256 signBit = _mm256_set1_ps(-0.0f);
    const __m256 scaled = _mm256_mul_ps(_mm256_loadu_ps(x), id);
    const __m256 whole = _mm256_round_ps(scaled, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 up = _mm256_cmp_ps(_mm256_andnot_ps(signBit, _mm256_sub_ps(scaled, whole)), _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    const __m256 step = _mm256_or_ps(_mm256_and_ps(scaled, signBit), _mm256_set1_ps(1.0f));  // +-1 with the value's sign
    return _mm256_cvttps_epi32(_mm256_add_ps(whole, _mm256_and_ps(up, step)));
}

// 32 int32 quotients as 32 bytes, in order (packs interleave 128-bit lanes; the permute restores it).
LUMEN_AVX2 inline void storeBytes(const __m256i (&q)[4], std::int8_t* out) {
    const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}

LUMEN_AVX2 void quantizeQ8(const float* x, std::int64_t n, BlockQ8* out) {
    for (std::int64_t b = 0; b < n / 32; ++b, x += 32) {
        const float d = horizontalMax(absMax(x, 4)) / 127.0f;
        const __m256 id = _mm256_set1_ps(d > 0.0f ? 1.0f / d : 0.0f);
        __m256i q[4];
        for (int k = 0; k < 4; ++k) q[k] = roundedQuotients(x + 8 * k, id);
        storeBytes(q, out[b].q);
        out[b].d = d;
        out[b].s = d * static_cast<float>(horizontalSumInt(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]))));
    }
}

LUMEN_AVX2 void quantizeQ8K(const float* x, std::int64_t n, BlockQ8K* out) {
    for (std::int64_t b = 0; b < n / 256; ++b, x += 256) {
        const float d = horizontalMax(absMax(x, 32)) / 127.0f;
        const __m256 id = _mm256_set1_ps(d > 0.0f ? 1.0f / d : 0.0f);
        out[b].d = d;
        for (int j = 0; j < 8; ++j) {  // 32 values: two 16-value sums
            __m256i q[4];
            for (int k = 0; k < 4; ++k) q[k] = roundedQuotients(x + 32 * j + 8 * k, id);
            storeBytes(q, out[b].q + 32 * j);
            out[b].bsums[2 * j] = static_cast<std::int16_t>(horizontalSumInt(_mm256_add_epi32(q[0], q[1])));
            out[b].bsums[2 * j + 1] = static_cast<std::int16_t>(horizontalSumInt(_mm256_add_epi32(q[2], q[3])));
        }
    }
}

LUMEN_AVX2 void toHalf(const float* x, std::int64_t n, std::uint16_t* out) {
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; ++i) out[i] = floatToHalf(x[i]);
}

// Q4_0 against packed activations (one matmul's BlockQ8 rows, repacked once): two blocks at a
// time, their 16 nibble bytes in one vector. Per pair of blocks the packed activations are
//  - low: block 0's elements 0-15, then block 1's (against the low nibbles); high: 16-31;
//  - c: per int32 lane, -8 * the sum of the 8 activations it multiplies (16 bits each), the
//    lane's start value, so the unsigned nibbles come out as the exact sums of (q - 8) * a;
//  - d: the two blocks' scales.
// Lane j belongs to block j / 4 and sums elements 4(j%4)..+3 and 16 + 4(j%4)..+3.
struct alignas(32) PairQ4 {
    std::int8_t low[32];
    std::int8_t high[32];
    std::int16_t c[8];
    float d[2];
    float unused[2];
};
static_assert(sizeof(PairQ4) == 96);

std::int64_t packedBytesQ4(std::int64_t nBlocks) { return ((nBlocks + 1) / 2 * static_cast<std::int64_t>(sizeof(PairQ4)) + 63) / 64 * 64; }

LUMEN_AVX2 void packQ4(const BlockQ8* x, std::int64_t nBlocks, std::uint8_t* out) {
    auto* pairs = reinterpret_cast<PairQ4*>(out);
    for (std::int64_t p = 0; p < (nBlocks + 1) / 2; ++p) {
        PairQ4& o = pairs[p];
        std::memset(&o, 0, sizeof o);
        for (int k = 0; k < 2 && 2 * p + k < nBlocks; ++k) {
            const BlockQ8& a = x[2 * p + k];
            const __m128i low = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.q));
            const __m128i high = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.q + 16));
            _mm_store_si128(reinterpret_cast<__m128i*>(o.low + 16 * k), low);
            _mm_store_si128(reinterpret_cast<__m128i*>(o.high + 16 * k), high);
            const __m128i sums = _mm_add_epi32(sumsOf4(low), sumsOf4(high));
            const __m128i c = _mm_mullo_epi32(sums, _mm_set1_epi32(-8));
            _mm_storel_epi64(reinterpret_cast<__m128i*>(o.c + 4 * k), _mm_packs_epi32(c, c));
            o.d[k] = a.d;
        }
    }
}

// One weight row against R packed activation rows; PRODUCTS(start, low, high, a) is the int32
// lanes start + the lanes' sums of nibbles times activations (a: low's and high's activations).
#define LUMEN_DEFINE_PACKED_Q4_0(NAME, TARGET, PRODUCTS)                                                                        \
    template <int R>                                                                                                            \
    struct NAME {                                                                                                               \
        TARGET static void run(const std::uint8_t* w, const std::uint8_t* packed, std::int64_t nBlocks, float* out) {           \
            const PairQ4* x[R]; /* row r's pairs */                                                                             \
            _Pragma("GCC unroll 4") for (int r = 0; r < R; ++r) x[r] = reinterpret_cast<const PairQ4*>(packed + r * packedBytesQ4(nBlocks)); \
            const std::int64_t pairs = (nBlocks + 1) / 2, full = nBlocks / 2;                                                   \
            const __m256i mask = _mm256_set1_epi8(0x0F);                                                                        \
            const __m256i firstTwo = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1), scaleLanes = _mm256_setr_epi32(4, 4, 4, 4, 5, 5, 5, 5); \
            __m256 acc[R];                                                                                                      \
            _Pragma("GCC unroll 4") for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();                                   \
            const auto step = [&](const std::uint8_t* wp, std::int64_t p) TARGET {                                              \
                const __m256i both = _mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(wp + 20), reinterpret_cast<const __m128i*>(wp + 2)); \
                const __m256i low = _mm256_and_si256(both, mask), high = _mm256_and_si256(_mm256_srli_epi16(both, 4), mask);  \
                std::uint16_t h0, h1;                                                                                           \
                std::memcpy(&h0, wp, 2);                                                                                        \
                std::memcpy(&h1, wp + 18, 2);                                                                                   \
                const __m128 d01 = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(h0 | (static_cast<std::uint32_t>(h1) << 16)))); \
                const __m256 dw = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(d01), firstTwo);                              \
                _Pragma("GCC unroll 4") for (int r = 0; r < R; ++r) {                                                           \
                    const PairQ4& a = x[r][p];                                                                                  \
                    const __m256i line = _mm256_load_si256(reinterpret_cast<const __m256i*>(a.c)); /* c, then d */              \
                    const __m256i start = _mm256_cvtepi16_epi32(_mm256_castsi256_si128(line));                                  \
                    const __m256i a0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(a.low));                              \
                    const __m256i a1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(a.high));                             \
                    const __m256i sums = PRODUCTS;                                                                              \
                    const __m256 scales = _mm256_mul_ps(dw, _mm256_permutevar8x32_ps(_mm256_castsi256_ps(line), scaleLanes));   \
                    acc[r] = _mm256_fmadd_ps(scales, _mm256_cvtepi32_ps(sums), acc[r]);                                         \
                }                                                                                                               \
            };                                                                                                                  \
            for (std::int64_t p = 0; p < full; ++p) step(w + 36 * p, p);                                                        \
            if (full < pairs) { /* a last, odd block, from a zero-padded copy */                                                \
                std::uint8_t last[40] = {};                                                                                     \
                std::memcpy(last, w + 36 * full, 18);                                                                           \
                step(last, full);                                                                                               \
            }                                                                                                                   \
            _Pragma("GCC unroll 4") for (int r = 0; r < R; ++r) out[r] = horizontalSum(acc[r]);                                 \
        }                                                                                                                       \
    };

// AVX2: maddubs of both halves (|sum| <= 2 * 2 * 15 * 127 fits 16 bits), madd into pairs.
LUMEN_DEFINE_PACKED_Q4_0(PackedQ4Dot, LUMEN_AVX2,
                         _mm256_add_epi32(start, _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(low, a0), _mm256_maddubs_epi16(high, a1)),
                                                                   _mm256_set1_epi16(1))))
LUMEN_DEFINE_PACKED_Q4_0(PackedQ4DotVnni, LUMEN_AVX2_VNNI, _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(start, low, a0), high, a1))
LUMEN_DEFINE_PACKED_Q4_0(PackedQ4DotAvxVnni, LUMEN_AVX2_AVX_VNNI, _mm256_dpbusd_avx_epi32(_mm256_dpbusd_avx_epi32(start, low, a0), high, a1))

template <bool kFour>
constexpr auto kRowsQ40Q80 = someRows<BlockQ8, dotRowsQ40Q80<kFour, 1>, dotRowsQ40Q80<kFour, 2>, dotRowsQ40Q80<kFour, 3>, dotRowsQ40Q80<kFour, 4>>;
template <bool kFour>
constexpr auto kRowsQ40Q80Vnni =
    someRows<BlockQ8, dotRowsQ40Q80Vnni<kFour, 1>, dotRowsQ40Q80Vnni<kFour, 2>, dotRowsQ40Q80Vnni<kFour, 3>, dotRowsQ40Q80Vnni<kFour, 4>>;
template <bool kFour>
constexpr auto kRowsQ40Q80AvxVnni =
    someRows<BlockQ8, dotRowsQ40Q80AvxVnni<kFour, 1>, dotRowsQ40Q80AvxVnni<kFour, 2>, dotRowsQ40Q80AvxVnni<kFour, 3>, dotRowsQ40Q80AvxVnni<kFour, 4>>;
template <bool FiveBits>
constexpr auto kRowsQ45_K = someRows<BlockQ8K, dotRowsQ45_K<FiveBits, 1>, dotRowsQ45_K<FiveBits, 2>, dotRowsQ45_K<FiveBits, 3>, dotRowsQ45_K<FiveBits, 4>>;
constexpr auto kRowsQ6_K = someRows<BlockQ8K, dotRowsQ6_K<1>, dotRowsQ6_K<2>, dotRowsQ6_K<3>, dotRowsQ6_K<4>>;

typedef float Float8 __attribute__((vector_size(32)));
LUMEN_AVX2 void deltaNetRecurrent8(const DeltaHead& head) { deltaNetRecurrent<Float8>(head); }
LUMEN_AVX2 void deltaNetChunked8(const DeltaHead& head) { deltaNetChunked<Float8>(head); }

const Kernels kAvx2{"AVX2",
                    dotF32,
                    dotF16,
                    dotBF16,
                    oneRow<BlockQ8, dotRowsQ40Q80<false, 1>>,
                    oneRow<BlockQ8, dotRowsQ40Q80<true, 1>>,
                    dotQ4_1,
                    dotQ5_0,
                    dotQ5_1,
                    dotQ23_K<false>,
                    dotQ23_K<true>,
                    oneRow<BlockQ8K, dotRowsQ45_K<false, 1>>,
                    oneRow<BlockQ8K, dotRowsQ45_K<true, 1>>,
                    oneRow<BlockQ8K, dotRowsQ6_K<1>>,
                    kRowsQ40Q80<false>,
                    kRowsQ40Q80<true>,
                    kRowsQ45_K<false>,
                    kRowsQ6_K,
                    tile<LoadF32>,
                    tile<LoadF16>,
                    tile<LoadBF16>,
                    attendF32,
                    attendF16,
                    attendQ8,
                    siluMul,
                    quantizeQ8,
                    quantizeQ8K,
                    toHalf,
                    {},
                    {packedBytesQ4, packQ4, packedRows<PackedQ4Dot>},
                    {},
                    oneRow<BlockQ8, codebookRows<IQ4NLBlocks, 1>>,
                    oneRow<BlockQ8, codebookRows<IQ4XSBlocks, 1>>,
                    oneRow<BlockQ8, codebookRows<MXFP4Blocks, 1>>,
                    kCodebookRows<IQ4NLBlocks>,
                    kCodebookRows<IQ4XSBlocks>,
                    kCodebookRows<MXFP4Blocks>,
                    {},
                    {},
                    deltaNetRecurrent8,
                    deltaNetChunked8};

// The AVX2 set with the Q8_0 and Q4_0 kernels on VNNI (bit-identical results).
const Kernels kAvx2Vnni = [] {
    Kernels k = kAvx2;
    k.name = "AVX2+VNNI";
    k.dotQ8_0 = oneRow<BlockQ8, dotRowsQ40Q80Vnni<false, 1>>;
    k.dotQ4_0 = oneRow<BlockQ8, dotRowsQ40Q80Vnni<true, 1>>;
    k.dotRowsQ8_0 = kRowsQ40Q80Vnni<false>;
    k.dotRowsQ4_0 = kRowsQ40Q80Vnni<true>;
    k.packedQ4_0 = {packedBytesQ4, packQ4, packedRows<PackedQ4DotVnni>};
    return k;
}();

// The same on AVX-VNNI.
const Kernels kAvx2AvxVnni = [] {
    Kernels k = kAvx2;
    k.name = "AVX2+AVX-VNNI";
    k.dotQ8_0 = oneRow<BlockQ8, dotRowsQ40Q80AvxVnni<false, 1>>;
    k.dotQ4_0 = oneRow<BlockQ8, dotRowsQ40Q80AvxVnni<true, 1>>;
    k.dotRowsQ8_0 = kRowsQ40Q80AvxVnni<false>;
    k.dotRowsQ4_0 = kRowsQ40Q80AvxVnni<true>;
    k.packedQ4_0 = {packedBytesQ4, packQ4, packedRows<PackedQ4DotAvxVnni>};
    return k;
}();

}  // namespace

const Kernels* avx2Kernels() { return &kAvx2; }
const Kernels* avx2AvxVnniKernels() { return &kAvx2AvxVnni; }
const Kernels* avx2VnniKernels() { return &kAvx2Vnni; }

}  // namespace lumen::inference::cpu

#else

namespace lumen::inference::cpu {
const Kernels* avx2Kernels() { return nullptr; }
const Kernels* avx2AvxVnniKernels() { return nullptr; }
const Kernels* avx2VnniKernels() { return nullptr; }
}  // namespace lumen::inference::cpu

#endif
