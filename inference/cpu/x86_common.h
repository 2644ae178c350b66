#pragma once
// Small vector helpers shared by the AVX2 and AVX-512 kernel files (an AVX2 function inlines into
// either).

#if defined(__x86_64__)
#include <immintrin.h>

namespace lumen::inference::cpu {

// The 16 bytes of a Q4_K/Q5_K super-block's head (d, dmin, 12 scale bytes) -> 16 bytes: the
// eight 6-bit scales, then the eight 6-bit minimums. Scale/min j < 4: the low 6 bits of byte j
// / j+4; j >= 4: a nibble of byte j+4 (low for the scale, high for the minimum) below the top two
// bits of byte j-4 / j. Bytes here count from the 12 scale bytes.
__attribute__((target("avx2"))) inline __m128i kQuantScaleBytes(__m128i head) {
    const __m128i v = _mm_srli_si128(head, 4);                           // dwords a, b, c (bytes 0-3, 4-7, 8-11)
    const __m128i acbc = _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0));  // a, c, b, c
    const __m128i aabb = _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0));  // a, a, b, b
    const __m128i low = _mm_and_si128(_mm_srlv_epi32(acbc, _mm_setr_epi32(0, 0, 0, 4)), _mm_setr_epi32(0x3F3F3F3F, 0x0F0F0F0F, 0x3F3F3F3F, 0x0F0F0F0F));
    // a byte's top two bits, as bits 4-5
    const __m128i top = _mm_and_si128(_mm_srli_epi32(aabb, 2), _mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
    return _mm_or_si128(low, top);
}

// Sums of each 4 consecutive signed bytes (a packed activation lane's share of a block).
__attribute__((target("avx2"))) inline __m128i sumsOf4(__m128i q) { return _mm_madd_epi16(_mm_maddubs_epi16(_mm_set1_epi8(1), q), _mm_set1_epi16(1)); }
__attribute__((target("avx2"))) inline __m256i sumsOf4(__m256i q) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q), _mm256_set1_epi16(1));
}

}  // namespace lumen::inference::cpu
#endif
