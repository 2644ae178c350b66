#pragma once
// IEEE 754 half precision and bfloat16 <-> float, exact scalar conversions (round to nearest
// even on the way down). The spec for any faster versions.

#include <bit>
#include <cstdint>

namespace lumen::inference {

inline float halfToFloat(std::uint16_t h) {
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000) << 16;
    const std::uint32_t exponent = (h >> 10) & 0x1F;
    std::uint32_t mantissa = h & 0x3FF;
    std::uint32_t bits;
    if (exponent == 0) {
        if (mantissa == 0) {
            bits = sign;
        } else {  // subnormal: normalise
            int e = -1;
            do {
                ++e;
                mantissa <<= 1;
            } while ((mantissa & 0x400) == 0);
            bits = sign | (static_cast<std::uint32_t>(127 - 15 - e) << 23) | ((mantissa & 0x3FF) << 13);
        }
    } else if (exponent == 0x1F) {
        bits = sign | 0x7F800000 | (mantissa << 13);  // inf or nan
    } else {
        bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
    }
    return std::bit_cast<float>(bits);
}

inline std::uint16_t floatToHalf(float f) {
    const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
    const std::uint16_t sign = static_cast<std::uint16_t>((x >> 16) & 0x8000);
    const std::uint32_t absBits = x & 0x7FFFFFFF;
    if (absBits > 0x7F800000) return static_cast<std::uint16_t>(sign | 0x7E00);  // nan
    if (absBits >= 0x477FF000) return static_cast<std::uint16_t>(sign | 0x7C00);  // overflow -> inf
    if (absBits < 0x38800000) {
        // Subnormal or zero in half: shift the implicit-one mantissa into place, rounding.
        if (absBits < 0x33000000) return sign;  // below half of the smallest subnormal
        const std::uint32_t e = absBits >> 23;
        const std::uint32_t m = (absBits & 0x7FFFFF) | 0x800000;
        const std::uint32_t shift = 126 - e;  // 14 + (113 - e) ... bits dropped
        const std::uint32_t halfM = m >> shift;
        const std::uint32_t rest = m & ((1u << shift) - 1);
        const std::uint32_t halfway = 1u << (shift - 1);
        std::uint32_t r = halfM;
        if (rest > halfway || (rest == halfway && (halfM & 1))) ++r;
        return static_cast<std::uint16_t>(sign | r);
    }
    std::uint32_t r = ((absBits >> 13) - ((127 - 15) << 10));
    const std::uint32_t rest = absBits & 0x1FFF;
    if (rest > 0x1000 || (rest == 0x1000 && (r & 1))) ++r;
    return static_cast<std::uint16_t>(sign | r);
}

inline float bf16ToFloat(std::uint16_t b) { return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16); }

inline std::uint16_t floatToBf16(float f) {
    const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
    if ((x & 0x7FFFFFFF) > 0x7F800000) return static_cast<std::uint16_t>((x >> 16) | 0x40);  // quiet nan
    return static_cast<std::uint16_t>((x + 0x7FFF + ((x >> 16) & 1)) >> 16);
}

}  // namespace lumen::inference
