#pragma once
// Unpacking the packed 6-bit sub-block scales of the K-quant formats: one definition for the
// CPU code and the CUDA kernels (compiled for both when nvcc includes it).

#include <cstdint>

#if defined(__CUDACC__)
#define LUMEN_HOST_DEVICE __host__ __device__
#else
#define LUMEN_HOST_DEVICE
#endif

namespace lumen::inference {

// The 6-bit scale and minimum of sub-block j (0..7) of a Q4_K/Q5_K super-block, from its 12
// packed scale bytes: for j < 4 the low 6 bits of bytes j and j + 4; for j >= 4 the nibbles of
// byte j + 4 below the top 2 bits of bytes j - 4 (scale) and j (min).
// `byte(i)` gives scale byte i (the CUDA kernels read them from registers).
template <class Bytes>
LUMEN_HOST_DEVICE inline void kQuantScaleMinOf(int j, const Bytes& byte, int& scale, int& min) {
    if (j < 4) {
        scale = byte(j) & 63;
        min = byte(j + 4) & 63;
    } else {
        scale = (byte(j + 4) & 0xF) | ((byte(j - 4) >> 6) << 4);
        min = (byte(j + 4) >> 4) | ((byte(j) >> 6) << 4);
    }
}

LUMEN_HOST_DEVICE inline void kQuantScaleMin(int j, const std::uint8_t* q, int& scale, int& min) {
    kQuantScaleMinOf(j, [q](int i) { return static_cast<int>(q[i]); }, scale, min);
}

// Scale i (0..15) of a Q3_K super-block from its 12 packed bytes: low 4 bits of scales 0-7 in
// the low nibbles of bytes 0-7, of scales 8-15 in their high nibbles; the top 2 bits of scale i
// in byte 8 + (i % 4) at bit 2 * (i / 4). Stored with a bias of 32.
LUMEN_HOST_DEVICE inline int q3kScale(const std::uint8_t* s, int i) {
    const int low = i < 8 ? (s[i] & 0xF) : (s[i - 8] >> 4);
    const int high = (s[8 + (i % 4)] >> (2 * (i / 4))) & 3;
    return (low | (high << 4)) - 32;
}

}  // namespace lumen::inference
