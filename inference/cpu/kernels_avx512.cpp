// AVX-512 kernels: the AVX2+VNNI set with 512-bit Q4_0, Q8_0, Q4_K, IQ4_NL and MXFP4 (against activations
// packed per matmul into the order the weight bytes land in), Q6_K and float dots and tiles.
// Compiled with per-function target attributes like the AVX2 file; chosen only on CPUs with
// AVX512 F, BW, VL, VNNI and VBMI.
//
// Why packed: per weight block the AVX2 kernel spends most of its instructions on work that does
// not depend on the weights (loading, signing and scaling the activations). Here one 64-byte load
// plus a byte permute (VBMI) brings four Q4_0 blocks' nibbles and one word permute their four
// scales; each activation group is a few aligned loads prepared once for all weight rows:
//  - the bytes, in the order the permuted weight bytes have;
//  - c: per int32 lane, -offset * (sum of the activation bytes that lane multiplies), the lane's
//    start value, so dpbusd's unsigned weights (nibble, or byte + 128) come out as the exact
//    integer sum of signed weights times activations (stored in 16 bits);
//  - d: the activation blocks' scales, spread to their lanes by one permute.
// Each lane's integer sum is exact, as in the AVX2 kernel; only the float summation order differs.

#include "inference/cpu/kernels.h"
#include "inference/cpu/x86_common.h"
#include "inference/cpu/row_kernels.h"
#include "inference/cpu/delta_net.h"
#include "inference/formats/dtype.h"
#include "inference/formats/half.h"

#if defined(__x86_64__)
// GCC 12 reports the AVX-512 headers' deliberately undefined pass-through operands.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cmath>
#include <cstring>

#define LUMEN_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi")))

namespace lumen::inference::cpu {
namespace {

// Activations of one group of weight blocks, in the order the kernel multiplies them.
//  - Q4_0: 4 blocks (72 weight bytes). bytes[0, 64): block k's elements 0-15 at 16k (against the
//    low nibbles); bytes[64, 128): its elements 16-31 at 64 + 16k (the high nibbles). Lane l
//    (0-15) belongs to block l / 4 and sums elements 4(l%4)..+3 and 16 + 4(l%4)..+3.
//  - Q8_0: 2 blocks (68 weight bytes). bytes[0, 64): block k's elements at 32k. Lane l belongs
//    to block l / 8 and sums elements 4(l%8)..+3.
//  - one more 64-byte line: per lane a 16-bit start value (Q4_0: c itself, -8 * the lane's
//    byte sum; Q8_0: minus the byte sum, times 128 in the kernel, as c would not fit 16 bits),
//    then the blocks' scales (d[k] for block k). One load brings both, where two did.
//  - IQ4_NL and MXFP4 (kCodebook): Q4_0's layout, each nibble standing for its format's table
//    value, which the kernel takes as value + 128 (unsigned); start values as Q8_0's.
template <bool kFour, bool kCodebook = false>
struct alignas(64) Group {
    static constexpr int kBlocks = kFour ? 4 : 2;
    static constexpr int kOffset = kFour && !kCodebook ? 8 : 128;  // what the kernel's unsigned weights add to q
    static constexpr int kStored = kFour && !kCodebook ? 8 : 1;    // what the stored start values hold of it
    std::int8_t bytes[kFour ? 128 : 64];
    std::int16_t c[16];
    float d[4];  // Q8_0: d[0], d[1]
    float unused[4];

    static int byteOf(int k, int e) { return kFour ? (e < 16 ? 16 * k + e : 64 + 16 * k + e - 16) : 32 * k + e; }
    static int laneOf(int k, int e) { return kFour ? 4 * k + e % 16 / 4 : 8 * k + e / 4; }
};
static_assert(sizeof(Group<true>) == 192 && sizeof(Group<false>) == 128 && sizeof(Group<true, true>) == 192);

template <bool kFour, bool kCodebook = false>
std::int64_t packedBytes(std::int64_t nBlocks) {
    using G = Group<kFour, kCodebook>;
    return (nBlocks + G::kBlocks - 1) / G::kBlocks * static_cast<std::int64_t>(sizeof(G));
}

// Missing blocks of a last, partial group are zero: they add nothing whatever the weights are.
template <bool kFour, bool kCodebook>
void packPartial(const BlockQ8* x, int count, Group<kFour, kCodebook>& o) {
    using G = Group<kFour, kCodebook>;
    std::memset(&o, 0, sizeof o);
    for (int k = 0; k < count; ++k) {
        for (int e = 0; e < 32; ++e) {
            o.bytes[G::byteOf(k, e)] = x[k].q[e];
            o.c[G::laneOf(k, e)] = static_cast<std::int16_t>(o.c[G::laneOf(k, e)] - G::kStored * x[k].q[e]);
        }
        o.d[k] = x[k].d;
    }
}


// Full groups with vector moves (the layout above, as packPartial writes it element by element).
template <bool kFour, bool kCodebook = false>
LUMEN_AVX512 void pack(const BlockQ8* x, std::int64_t nBlocks, std::uint8_t* out) {
    using G = Group<kFour, kCodebook>;
    auto* groups = reinterpret_cast<G*>(out);
    const std::int64_t full = nBlocks / G::kBlocks;
    for (std::int64_t g = 0; g < full; ++g) {
        G& o = groups[g];
        for (int k = 0; k < G::kBlocks; ++k) {
            const BlockQ8& a = x[G::kBlocks * g + k];
            if constexpr (kFour) {
                const __m128i low = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.q));
                const __m128i high = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.q + 16));
                _mm_store_si128(reinterpret_cast<__m128i*>(o.bytes + 16 * k), low);
                _mm_store_si128(reinterpret_cast<__m128i*>(o.bytes + 64 + 16 * k), high);
                const __m128i sums = _mm_add_epi32(sumsOf4(low), sumsOf4(high));
                const __m128i c = _mm_mullo_epi32(sums, _mm_set1_epi32(-G::kStored));
                _mm_storel_epi64(reinterpret_cast<__m128i*>(o.c + 4 * k), _mm_packs_epi32(c, c));
            } else {
                const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q));
                _mm256_store_si256(reinterpret_cast<__m256i*>(o.bytes + 32 * k), q);
                const __m256i c = _mm256_sub_epi32(_mm256_setzero_si256(), sumsOf4(q));
                const __m128i c16 = _mm_packs_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
                _mm_storeu_si128(reinterpret_cast<__m128i*>(o.c + 8 * k), c16);
            }
            o.d[k] = a.d;
        }
        if constexpr (!kFour) o.d[2] = o.d[3] = 0.0f;
        std::memset(o.unused, 0, sizeof o.unused);
    }
    if (full * G::kBlocks < nBlocks) packPartial<kFour, kCodebook>(x + full * G::kBlocks, static_cast<int>(nBlocks - full * G::kBlocks), groups[full]);
}

// Byte i of a Q4_0 group's permuted nibbles: block i / 16, byte i % 16 of its 16 (at 18k + 2).
// Word i of the scales: block i / 4's half at byte 18k (word 9k).
// Q8_0: byte i is block i / 32's byte i % 32 (at 34k + 2); the scales are words 0 and 17.
// Lane l's activation scale: dword 8 + l / 4 (Q4_0) or 8 + l / 8 (Q8_0) of a group's last line.
struct Indices {
    alignas(64) std::uint8_t q4[64];
    alignas(64) std::uint16_t d4[32];
    alignas(64) std::uint8_t q8[64];
    alignas(64) std::uint16_t d8[32];
    alignas(64) std::uint32_t lanes4[16];
    alignas(64) std::uint32_t lanes8[16];
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
        t.lanes4[i] = static_cast<std::uint32_t>(8 + i / 4);
        t.lanes8[i] = static_cast<std::uint32_t>(8 + i / 8);
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

// A loaded vector kept in its register. Without this GCC loads the same bytes again as the memory
// operand of a later instruction. Loads are what these kernels run short of when the weights
// stream from memory (each one in flight holds a slot the stream needs): one load less per
// group was ~10% more bandwidth on one core.
LUMEN_AVX512 inline __m512i inRegister(__m512i v) {
    __asm__("" : "+v"(v));
    return v;
}

template <bool kFour>
LUMEN_AVX512 inline GroupWeights<kFour> loadGroup(const std::uint8_t* w) {
    GroupWeights<kFour> g;
    const __m512i head = inRegister(_mm512_loadu_si512(w));
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
    using Group = cpu::Group<kFour>;
    constexpr int kPerGroup = Group::kBlocks;
    constexpr std::int64_t kBlockBytes = kFour ? 18 : 34, kGroupBytes = kPerGroup * kBlockBytes;
    const std::int64_t groups = (nBlocks + kPerGroup - 1) / kPerGroup, full = nBlocks / kPerGroup;
    const auto* a = reinterpret_cast<const Group*>(packed);
    const __m512i lanes = _mm512_load_si512(kFour ? kIndices.lanes4 : kIndices.lanes8);
    __m512 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    const auto step = [&](const std::uint8_t* wg, std::int64_t g) LUMEN_AVX512 {
        const GroupWeights<kFour> wq = loadGroup<kFour>(wg);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
            const Group& x = a[r * groups + g];
            const __m512i line = inRegister(_mm512_load_si512(x.c));  // start values and scales
            __m512i sums = _mm512_cvtepi16_epi32(_mm512_castsi512_si256(line));
            if constexpr (kFour) {
                sums = _mm512_dpbusd_epi32(sums, wq.low, _mm512_load_si512(x.bytes));
                sums = _mm512_dpbusd_epi32(sums, wq.high, _mm512_load_si512(x.bytes + 64));
            } else {
                sums = _mm512_dpbusd_epi32(_mm512_slli_epi32(sums, 7), wq.low, _mm512_load_si512(x.bytes));
            }
            const __m512 scales = _mm512_mul_ps(wq.d, _mm512_permutexvar_ps(lanes, _mm512_castsi512_ps(line)));
            acc[r] = _mm512_fmadd_ps(scales, _mm512_cvtepi32_ps(sums), acc[r]);
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

template <bool kFour>
struct PackedQ8Dot {
    template <int R>
    struct Rows {
        LUMEN_AVX512 static void run(const std::uint8_t* w, const std::uint8_t* packed, std::int64_t nBlocks, float* out) {
            dotRowsPacked<kFour, R>(w, packed, nBlocks, out);
        }
    };
};

// IQ4_NL (18-byte blocks: an F16 scale, then 16 nibble bytes, as Q4_0's) and MXFP4 (17-byte
// blocks: an E8M0 exponent, then 16 nibble bytes) against packed activations (Group<true, true>):
// four blocks' nibbles by one byte permute, as Q4_0's, then looked up (value + 128) by a byte
// shuffle of the format's table; the scales by a word permute (F16) or from the exponent bytes'
// bits (MXFP4: 2^(e - 128), the half of E8M0 that the doubled table values call for).
struct Iq4nlCodes {
    static constexpr std::int64_t kBlockBytes = 18, kQs = 2;
    static constexpr const std::int8_t (&kTable)[16] = kIq4nlValues;
};
struct Mxfp4Codes {
    static constexpr std::int64_t kBlockBytes = 17, kQs = 1;
    static constexpr const std::int8_t (&kTable)[16] = kMxfp4Values;
};

template <class C>
struct CodebookIndices {
    alignas(64) std::uint8_t q[64];        // byte i: block i / 16's nibble byte i % 16
    alignas(64) std::uint8_t scale[64];    // dword i's low byte: block i / 4's first byte (MXFP4)
    alignas(64) std::uint16_t half[32];    // word i: block i / 4's F16 scale (IQ4_NL)
    alignas(64) std::uint8_t table[16];    // the table's values + 128
};
template <class C>
constexpr CodebookIndices<C> kCodebookIndices = [] {
    CodebookIndices<C> t{};
    for (int i = 0; i < 64; ++i) t.q[i] = static_cast<std::uint8_t>(C::kBlockBytes * (i / 16) + C::kQs + i % 16);
    for (int i = 0; i < 16; ++i) {
        t.scale[4 * i] = static_cast<std::uint8_t>(C::kBlockBytes * (i / 4));
        t.half[i] = static_cast<std::uint16_t>(C::kBlockBytes / 2 * (i / 4));
        t.table[i] = static_cast<std::uint8_t>(C::kTable[i] + 128);
    }
    return t;
}();

template <class C, int R>
struct PackedCodebookDot {
    LUMEN_AVX512 static void run(const std::uint8_t* w, const std::uint8_t* packed, std::int64_t nBlocks, float* out) {
        using G = Group<true, true>;
        constexpr std::int64_t kGroupBytes = 4 * C::kBlockBytes;
        const CodebookIndices<C>& ix = kCodebookIndices<C>;
        const std::int64_t groups = (nBlocks + 3) / 4, full = nBlocks / 4;
        const auto* a = reinterpret_cast<const G*>(packed);
        const __m512i lanes = _mm512_load_si512(kIndices.lanes4), mask = _mm512_set1_epi8(0x0F);
        const __m512i table = _mm512_broadcast_i32x4(_mm_load_si128(reinterpret_cast<const __m128i*>(ix.table)));
        __m512 acc[R];
        for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
        const auto step = [&](const std::uint8_t* wg, std::int64_t g) LUMEN_AVX512 {
            const __m512i head = inRegister(_mm512_loadu_si512(wg));
            std::uint64_t tailBytes = 0;
            std::memcpy(&tailBytes, wg + 64, static_cast<std::size_t>(kGroupBytes - 64));
            const __m512i tail = _mm512_castsi128_si512(_mm_cvtsi64_si128(static_cast<long long>(tailBytes)));
            const __m512i bytes = _mm512_permutex2var_epi8(head, _mm512_load_si512(ix.q), tail);
            const __m512i low = _mm512_shuffle_epi8(table, _mm512_and_si512(bytes, mask));
            const __m512i high = _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srli_epi16(bytes, 4), mask));
            __m512 d;
            if constexpr (C::kBlockBytes == 17) {
                // 2^(e - 128): exponent field e - 1 from e = 2 on; 0x200000 << e (subnormal) below
                const __m512i e = _mm512_and_si512(_mm512_permutexvar_epi8(_mm512_load_si512(ix.scale), head), _mm512_set1_epi32(0xFF));
                const __m512i normal = _mm512_slli_epi32(_mm512_sub_epi32(e, _mm512_set1_epi32(1)), 23);
                const __m512i tiny = _mm512_sllv_epi32(_mm512_set1_epi32(0x200000), e);
                d = _mm512_castsi512_ps(_mm512_mask_blend_epi32(_mm512_cmpge_epi32_mask(e, _mm512_set1_epi32(2)), tiny, normal));
            } else {
                d = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(_mm512_load_si512(ix.half), head)));
            }
#pragma GCC unroll 4
            for (int r = 0; r < R; ++r) {
                const G& x = a[r * groups + g];
                const __m512i line = inRegister(_mm512_load_si512(x.c));  // start values (-sum) and scales
                __m512i sums = _mm512_slli_epi32(_mm512_cvtepi16_epi32(_mm512_castsi512_si256(line)), 7);
                sums = _mm512_dpbusd_epi32(sums, low, _mm512_load_si512(x.bytes));
                sums = _mm512_dpbusd_epi32(sums, high, _mm512_load_si512(x.bytes + 64));
                const __m512 scales = _mm512_mul_ps(d, _mm512_permutexvar_ps(lanes, _mm512_castsi512_ps(line)));
                acc[r] = _mm512_fmadd_ps(scales, _mm512_cvtepi32_ps(sums), acc[r]);
            }
        };
        for (std::int64_t g = 0; g < full; ++g) step(w + g * kGroupBytes, g);
        if (full < groups) {  // a partial last group, from a zero-padded copy
            alignas(64) std::uint8_t last[2 * 64] = {};
            std::memcpy(last, w + full * kGroupBytes, static_cast<std::size_t>((nBlocks - full * 4) * C::kBlockBytes));
            step(last, full);
        }
        for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(acc[r]);
    }
};
template <int R>
using PackedIq4nlDot = PackedCodebookDot<Iq4nlCodes, R>;
template <int R>
using PackedMxfp4Dot = PackedCodebookDot<Mxfp4Codes, R>;

LUMEN_AVX512 inline float halfAt(const std::uint8_t* p) {
    std::uint16_t h;
    std::memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

// Word indices: words 0-15 take entry `lo`, 16-31 entry `hi` of a 16-word table.
LUMEN_AVX512 inline __m512i splitIndex(int lo, int hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16(static_cast<short>(lo))), _mm256_set1_epi16(static_cast<short>(hi)), 1);
}

// Q4_K against packed activations (one matmul's BlockQ8K rows, repacked once). A super-block's
// 128 nibble bytes are two 64-byte loads; masked and shifted they give four vectors of two
// 32-value sub-blocks each: (0, 2), (1, 3), (4, 6), (5, 7). The packed activations come in that
// order, with each sub-block's sum already scaled (d * sum) for the minimums. The 12 scale bytes
// unpack on vectors (kQuantScaleBytes) instead of scalar code.
struct alignas(64) GroupQ4K {
    std::int8_t q[256];  // sub-blocks 0, 2, 1, 3, 4, 6, 5, 7
    float sums[8];       // d * (sum of sub-block j's 32 values), j = 0..7
    float d;
    float unused[7];
};
static_assert(sizeof(GroupQ4K) == 320);

std::int64_t packedBytesQ4K(std::int64_t nBlocks) { return nBlocks * static_cast<std::int64_t>(sizeof(GroupQ4K)); }

LUMEN_AVX512 void packQ4K(const BlockQ8K* x, std::int64_t nBlocks, std::uint8_t* out) {
    auto* groups = reinterpret_cast<GroupQ4K*>(out);
    for (std::int64_t b = 0; b < nBlocks; ++b) {
        const BlockQ8K& a = x[b];
        GroupQ4K& o = groups[b];
        for (int k = 0; k < 8; ++k) {
            const int sub = (k & ~3) | ((k & 1) << 1) | ((k >> 1) & 1);  // 0, 2, 1, 3, 4, 6, 5, 7
            _mm256_store_si256(reinterpret_cast<__m256i*>(o.q + 32 * k), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q + 32 * sub)));
        }
        // the 16-value sums in pairs: madd against ones adds neighbouring words
        const __m256i pairs = _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.bsums)), _mm256_set1_epi16(1));
        _mm256_store_ps(o.sums, _mm256_mul_ps(_mm256_cvtepi32_ps(pairs), _mm256_set1_ps(a.d)));
        o.d = a.d;
        std::memset(o.unused, 0, sizeof o.unused);
    }
}

template <int R>
struct PackedQ4KDot {
    LUMEN_AVX512 static void run(const std::uint8_t* w, const std::uint8_t* packed, std::int64_t nBlocks, float* out) {
        const auto* a = reinterpret_cast<const GroupQ4K*>(packed);
        const __m512i mask = _mm512_set1_epi8(0x0F);
        const __m512i index[4] = {splitIndex(0, 2), splitIndex(1, 3), splitIndex(4, 6), splitIndex(5, 7)};
        __m512 total[R];
        __m256 minTotal[R];
        for (int r = 0; r < R; ++r) total[r] = _mm512_setzero_ps(), minTotal[r] = _mm256_setzero_ps();
        for (std::int64_t b = 0; b < nBlocks; ++b, w += 144) {
            const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w));  // d, dmin, the 12 scale bytes
            const __m128 dm = _mm_cvtph_ps(raw);
            const __m512 d = _mm512_broadcastss_ps(dm);
            const __m128i scaleBytes = kQuantScaleBytes(raw);
            const __m512i table = _mm512_castsi256_si512(_mm256_cvtepu8_epi16(scaleBytes));
            const __m256 mins = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(scaleBytes, 8))), _mm256_broadcastss_ps(_mm_movehdup_ps(dm)));
            const __m512i bytes0 = _mm512_loadu_si512(w + 16), bytes1 = _mm512_loadu_si512(w + 80);
            const __m512i q[4] = {_mm512_and_si512(bytes0, mask), _mm512_and_si512(_mm512_srli_epi16(bytes0, 4), mask), _mm512_and_si512(bytes1, mask),
                                  _mm512_and_si512(_mm512_srli_epi16(bytes1, 4), mask)};
            __m512i scales[4];
#pragma GCC unroll 4
            for (int v = 0; v < 4; ++v) scales[v] = _mm512_permutexvar_epi16(index[v], table);
#pragma GCC unroll 4
            for (int r = 0; r < R; ++r) {
                const GroupQ4K& x = a[r * nBlocks + b];
                __m512i acc = _mm512_madd_epi16(_mm512_maddubs_epi16(q[0], _mm512_load_si512(x.q)), scales[0]);
#pragma GCC unroll 4
                for (int v = 1; v < 4; ++v) acc = _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(q[v], _mm512_load_si512(x.q + 64 * v)), scales[v]));
                total[r] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc), d), _mm512_set1_ps(x.d), total[r]);
                minTotal[r] = _mm256_fmadd_ps(mins, _mm256_load_ps(x.sums), minTotal[r]);
            }
        }
        for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(total[r]) - _mm512_reduce_add_ps(_mm512_zextps256_ps512(minTotal[r]));
    }
};

// Q6_K on 512-bit vectors: per 128-value half, 64 low-nibble bytes and 32 two-bit bytes make
// two vectors of 64 six-bit values in element order; each 16 values' scale goes into madd, and
// the bias of 32 comes off through the activation sums, as in the AVX2 kernel; float lanes
// summed across once at the end.
template <int R>
LUMEN_AVX512 void dotRowsQ6_K(const std::uint8_t* w, const BlockQ8K* x, std::int64_t nBlocks, float* out) {
    __m512 total[R];
    for (int r = 0; r < R; ++r) total[r] = _mm512_setzero_ps();
    const __m512i lowMask = _mm512_set1_epi8(0x0F), highMask = _mm512_set1_epi8(0x30);
    const __m512i shiftsLow = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16(4)), _mm256_set1_epi16(2), 1);   // values 0-63: qh << 4, << 2
    const __m512i shiftsHigh = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);                            // values 64-127: qh, qh >> 2
    __m512i groupIndex[4];  // words 0-31 of vector v of half h: scale 8h + 4v' + word / 8, v' = v % 2
    for (int v = 0; v < 4; ++v) {
        alignas(64) std::int16_t idx[32];
        for (int k = 0; k < 32; ++k) idx[k] = static_cast<std::int16_t>(8 * (v / 2) + 4 * (v % 2) + k / 8);
        groupIndex[v] = _mm512_load_si512(idx);
    }
    for (std::int64_t b = 0; b < nBlocks; ++b, w += 210) {
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 192)));
        const __m512i sc512 = _mm512_castsi256_si512(sc16);
        __m512i acc[R];
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_si512();
#pragma GCC unroll 2
        for (int half = 0; half < 2; ++half) {
            const __m512i ql = _mm512_loadu_si512(w + 64 * half);
            const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 128 + 32 * half)));
            const __m512i q[2] = {
                _mm512_or_si512(_mm512_and_si512(ql, lowMask), _mm512_and_si512(_mm512_sllv_epi16(qh, shiftsLow), highMask)),
                _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), lowMask), _mm512_and_si512(_mm512_srlv_epi16(qh, shiftsHigh), highMask)),
            };
#pragma GCC unroll 2
            for (int v = 0; v < 2; ++v) {
                const __m512i scales = _mm512_permutexvar_epi16(groupIndex[2 * half + v], sc512);
#pragma GCC unroll 4
                for (int r = 0; r < R; ++r) {
                    const __m512i a = _mm512_loadu_si512(x[r * nBlocks + b].q + 128 * half + 64 * v);
                    acc[r] = _mm512_add_epi32(acc[r], _mm512_madd_epi16(_mm512_maddubs_epi16(q[v], a), scales));
                }
            }
        }
        const float dw = halfAt(w + 208);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
            const BlockQ8K& a = x[r * nBlocks + b];
            const __m256i bsums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.bsums));
            // the bias: 32 * scale * activation sum per 16 values, off the first 8 lanes
            const __m256i offsets = _mm256_slli_epi32(_mm256_madd_epi16(sc16, bsums), 5);
            const __m512i exact = _mm512_sub_epi32(acc[r], _mm512_zextsi256_si512(offsets));
            total[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(exact), _mm512_set1_ps(dw * a.d), total[r]);
        }
    }
    for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(total[r]);
}

// Float weights, 16 at a time, as floats.
struct Wide32 {
    LUMEN_AVX512 static __m512 at(const std::uint8_t* row, std::int64_t i) { return _mm512_loadu_ps(reinterpret_cast<const float*>(row) + i); }
    static float one(const std::uint8_t* row, std::int64_t i) {
        float v;
        std::memcpy(&v, row + 4 * i, 4);
        return v;
    }
};
struct Wide16 {
    LUMEN_AVX512 static __m512 at(const std::uint8_t* row, std::int64_t i) {
        return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * i)));
    }
    static float one(const std::uint8_t* row, std::int64_t i) { return halfToFloat(halfBits(row + 2 * i)); }
    static std::uint16_t halfBits(const std::uint8_t* p) {
        std::uint16_t h;
        std::memcpy(&h, p, 2);
        return h;
    }
};
struct WideBf16 {
    LUMEN_AVX512 static __m512 at(const std::uint8_t* row, std::int64_t i) {
        const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * i));
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));  // bf16: the top half of an f32
    }
    static float one(const std::uint8_t* row, std::int64_t i) {
        const std::uint32_t bits = static_cast<std::uint32_t>(Wide16::halfBits(row + 2 * i)) << 16;
        float v;
        std::memcpy(&v, &bits, 4);
        return v;
    }
};

// W (1 or 2) weight rows against T activation rows: each output summed as the AVX-512 dots sum
// it (two accumulators over alternate 16-blocks of each 32, one more 16-block into the first,
// then the scalar tail), so a prompt's rows and one token at a time agree bit for bit. Two
// weight rows per pass halve the activation loads per multiply.
template <class Load, int W, int T>
LUMEN_AVX512 void tileWide(const std::uint8_t* w, std::int64_t rowBytes, const float* x, std::int64_t cols, float* out) {
    __m512 acc0[W][T], acc1[W][T];
#pragma GCC unroll 8
    for (int j = 0; j < W; ++j)
#pragma GCC unroll 4
        for (int t = 0; t < T; ++t) acc0[j][t] = acc1[j][t] = _mm512_setzero_ps();
    std::int64_t i = 0;
    for (; i + 32 <= cols; i += 32) {
        __m512 w0[W], w1[W];
#pragma GCC unroll 2
        for (int j = 0; j < W; ++j) {
            w0[j] = Load::at(w + j * rowBytes, i);
            w1[j] = Load::at(w + j * rowBytes, i + 16);
        }
#pragma GCC unroll 4
        for (int t = 0; t < T; ++t) {
            const __m512 x0 = _mm512_loadu_ps(x + t * cols + i), x1 = _mm512_loadu_ps(x + t * cols + i + 16);
#pragma GCC unroll 2
            for (int j = 0; j < W; ++j) {
                acc0[j][t] = _mm512_fmadd_ps(w0[j], x0, acc0[j][t]);
                acc1[j][t] = _mm512_fmadd_ps(w1[j], x1, acc1[j][t]);
            }
        }
    }
    if (i + 16 <= cols) {
#pragma GCC unroll 2
        for (int j = 0; j < W; ++j) {
            const __m512 w0 = Load::at(w + j * rowBytes, i);
#pragma GCC unroll 4
            for (int t = 0; t < T; ++t) acc0[j][t] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x + t * cols + i), acc0[j][t]);
        }
        i += 16;
    }
    for (int j = 0; j < W; ++j)
        for (int t = 0; t < T; ++t) {
            float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0[j][t], acc1[j][t]));
            for (std::int64_t e = i; e < cols; ++e) sum = std::fma(Load::one(w + j * rowBytes, e), x[t * cols + e], sum);
            out[j * kMaxDotRows + t] = sum;
        }
}

template <class Load>
LUMEN_AVX512 void tileWideAny(const std::uint8_t* w, std::int64_t rowBytes, int wRows, const float* x, std::int64_t cols, int xRows, float* out) {
    if (wRows >= 2) {
        switch (xRows) {
            case 1: return tileWide<Load, 2, 1>(w, rowBytes, x, cols, out);
            case 2: return tileWide<Load, 2, 2>(w, rowBytes, x, cols, out);
            case 3: return tileWide<Load, 2, 3>(w, rowBytes, x, cols, out);
            default: return tileWide<Load, 2, 4>(w, rowBytes, x, cols, out);
        }
    }
    switch (xRows) {
        case 1: return tileWide<Load, 1, 1>(w, rowBytes, x, cols, out);
        case 2: return tileWide<Load, 1, 2>(w, rowBytes, x, cols, out);
        case 3: return tileWide<Load, 1, 3>(w, rowBytes, x, cols, out);
        default: return tileWide<Load, 1, 4>(w, rowBytes, x, cols, out);
    }
}

// The dots: a tile of one weight row and one activation row.
template <class Load, class Element>
LUMEN_AVX512 float dotWide(const Element* w, const float* x, std::int64_t n) {
    float out[kMaxDotRows];
    tileWide<Load, 1, 1>(reinterpret_cast<const std::uint8_t*>(w), 0, x, n, out);
    return out[0];
}

typedef float Float16 __attribute__((vector_size(64)));
LUMEN_AVX512 void deltaNetRecurrent16(const DeltaHead& head) { deltaNetRecurrent<Float16>(head); }
LUMEN_AVX512 void deltaNetChunked16(const DeltaHead& head) { deltaNetChunked<Float16>(head); }

}  // namespace

const Kernels* avx512Kernels() {
    // Built on first use: the AVX2+VNNI set it starts from lives in another file.
    static const Kernels k = [] {
        Kernels set = *avx2VnniKernels();
        set.name = "AVX-512";
        set.packedQ8_0 = {packedBytes<false>, pack<false>, packedRows<PackedQ8Dot<false>::Rows>};
        set.packedQ4_0 = {packedBytes<true>, pack<true>, packedRows<PackedQ8Dot<true>::Rows>};
        set.packedQ4_K = {packedBytesQ4K, packQ4K, packedRows<PackedQ4KDot>};
        set.packedIQ4_NL = {packedBytes<true, true>, pack<true, true>, packedRows<PackedIq4nlDot>};
        set.packedMXFP4 = {packedBytes<true, true>, pack<true, true>, packedRows<PackedMxfp4Dot>};
        set.dotF32 = dotWide<Wide32, float>;
        set.dotF16 = dotWide<Wide16, std::uint16_t>;
        set.dotBF16 = dotWide<WideBf16, std::uint16_t>;
        set.tileF32 = tileWideAny<Wide32>;
        set.tileF16 = tileWideAny<Wide16>;
        set.tileBF16 = tileWideAny<WideBf16>;
        set.dotQ6_K = oneRow<BlockQ8K, dotRowsQ6_K<1>>;
        set.dotRowsQ6_K = someRows<BlockQ8K, dotRowsQ6_K<1>, dotRowsQ6_K<2>, dotRowsQ6_K<3>, dotRowsQ6_K<4>>;
        set.deltaNetRecurrent = deltaNetRecurrent16;
        set.deltaNetChunked = deltaNetChunked16;
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
