#include "inference/formats/quants.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "inference/formats/half.h"

namespace lumen::inference {
namespace {

constexpr int QK = 32;    // elements per block of the 32-element formats
constexpr int QK_K = 256; // elements per K-quant super-block

std::uint16_t loadU16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] | (p[1] << 8)); }
float loadHalf(const std::uint8_t* p) { return halfToFloat(loadU16(p)); }
void storeHalf(std::uint8_t* p, float v) {
    const std::uint16_t h = floatToHalf(v);
    p[0] = static_cast<std::uint8_t>(h);
    p[1] = static_cast<std::uint8_t>(h >> 8);
}

// ---- 32-element formats ----

void dequantQ4_0(const std::uint8_t* b, float* y) {
    const float d = loadHalf(b);
    const std::uint8_t* qs = b + 2;
    for (int j = 0; j < 16; ++j) {
        y[j] = static_cast<float>((qs[j] & 0xF) - 8) * d;
        y[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * d;
    }
}

void dequantQ4_1(const std::uint8_t* b, float* y) {
    const float d = loadHalf(b), m = loadHalf(b + 2);
    const std::uint8_t* qs = b + 4;
    for (int j = 0; j < 16; ++j) {
        y[j] = static_cast<float>(qs[j] & 0xF) * d + m;
        y[j + 16] = static_cast<float>(qs[j] >> 4) * d + m;
    }
}

// qh (32 bits, little-endian) holds the fifth bit of element j at bit j.
std::uint32_t loadQh(const std::uint8_t* p) {
    return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
           (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}

void dequantQ5_0(const std::uint8_t* b, float* y) {
    const float d = loadHalf(b);
    const std::uint32_t qh = loadQh(b + 2);
    const std::uint8_t* qs = b + 6;
    for (int j = 0; j < 16; ++j) {
        const int lo = (qs[j] & 0xF) | static_cast<int>(((qh >> j) & 1) << 4);
        const int hi = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1) << 4);
        y[j] = static_cast<float>(lo - 16) * d;
        y[j + 16] = static_cast<float>(hi - 16) * d;
    }
}

void dequantQ5_1(const std::uint8_t* b, float* y) {
    const float d = loadHalf(b), m = loadHalf(b + 2);
    const std::uint32_t qh = loadQh(b + 4);
    const std::uint8_t* qs = b + 8;
    for (int j = 0; j < 16; ++j) {
        const int lo = (qs[j] & 0xF) | static_cast<int>(((qh >> j) & 1) << 4);
        const int hi = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1) << 4);
        y[j] = static_cast<float>(lo) * d + m;
        y[j + 16] = static_cast<float>(hi) * d + m;
    }
}

void dequantQ8_0(const std::uint8_t* b, float* y) {
    const float d = loadHalf(b);
    for (int j = 0; j < QK; ++j) y[j] = static_cast<float>(static_cast<std::int8_t>(b[2 + j])) * d;
}

// ---- 4-bit codebook formats: each nibble indexes a table of 16 integers ----

void dequantIQ4_NL(const std::uint8_t* b, float* y) {
    const float d = loadHalf(b);
    const std::uint8_t* qs = b + 2;
    for (int j = 0; j < 16; ++j) {
        y[j] = static_cast<float>(kIq4nlValues[qs[j] & 0xF]) * d;
        y[j + 16] = static_cast<float>(kIq4nlValues[qs[j] >> 4]) * d;
    }
}

// IQ4_XS: 8 blocks of 32 (as IQ4_NL's, 16 bytes of nibbles each), block ib's 6-bit scale from
// the nibble ib % 2 of scales_l[ib / 2] and bits 2ib, 2ib+1 of scales_h above it, less 32.
int iq4xsScale(const std::uint8_t* b, int ib) {
    const int low = (b[4 + ib / 2] >> (4 * (ib % 2))) & 0xF, high = (loadU16(b + 2) >> (2 * ib)) & 3;
    return (low | (high << 4)) - 32;
}

void dequantIQ4_XS(const std::uint8_t* b, float* y) {
    const float d = loadHalf(b);
    const std::uint8_t* qs = b + 8;
    for (int ib = 0; ib < 8; ++ib, qs += 16, y += 32) {
        const float dl = d * static_cast<float>(iq4xsScale(b, ib));
        for (int j = 0; j < 16; ++j) {
            y[j] = dl * static_cast<float>(kIq4nlValues[qs[j] & 0xF]);
            y[j + 16] = dl * static_cast<float>(kIq4nlValues[qs[j] >> 4]);
        }
    }
}

// MXFP4's E8M0 scale, halved (the table holds the E2M1 values doubled): 2^(e - 128), exact
// (subnormal for e < 2).
float mxfp4Scale(std::uint8_t e) { return std::ldexp(1.0f, static_cast<int>(e) - 128); }

void dequantMXFP4(const std::uint8_t* b, float* y) {
    const float d = mxfp4Scale(b[0]);
    const std::uint8_t* qs = b + 1;
    for (int j = 0; j < 16; ++j) {
        y[j] = static_cast<float>(kMxfp4Values[qs[j] & 0xF]) * d;
        y[j + 16] = static_cast<float>(kMxfp4Values[qs[j] >> 4]) * d;
    }
}

// ---- K-quants: 256-element super-blocks of 16 or 32-element sub-blocks ----

// Q2_K: 16 sub-blocks of 16. scales[i]: low nibble = scale, high nibble = min (4 bits each).
// qs: 2-bit values; in each 128-element half, byte l of its 32 holds elements l, l+32, l+64,
// l+96 at bit shifts 0, 2, 4, 6. x = d * scale * q - dmin * min.
void dequantQ2_K(const std::uint8_t* b, float* y) {
    const std::uint8_t* scales = b;
    const std::uint8_t* qs = b + 16;
    const float d = loadHalf(b + 80), dmin = loadHalf(b + 82);
    int is = 0;
    for (int half = 0; half < 2; ++half) {
        const std::uint8_t* q = qs + 32 * half;
        for (int shift = 0; shift < 8; shift += 2) {
            for (int part = 0; part < 2; ++part) {
                const std::uint8_t sc = scales[is++];
                const float dl = d * static_cast<float>(sc & 0xF), ml = dmin * static_cast<float>(sc >> 4);
                for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<float>((q[16 * part + l] >> shift) & 3) - ml;
            }
        }
    }
}

// Q3_K: 16 sub-blocks of 16. Low 2 bits as in Q2_K; the third bit of element e sits in
// hmask[e % 32] at bit e / 32, and when it is clear the value is lowered by 4. x = d * scale * q.
void dequantQ3_K(const std::uint8_t* b, float* y) {
    const std::uint8_t* hmask = b;
    const std::uint8_t* qs = b + 32;
    const std::uint8_t* scales = b + 96;
    const float d = loadHalf(b + 108);
    int is = 0;
    std::uint8_t m = 1;
    for (int half = 0; half < 2; ++half) {
        const std::uint8_t* q = qs + 32 * half;
        for (int shift = 0; shift < 8; shift += 2, m = static_cast<std::uint8_t>(m << 1)) {
            for (int part = 0; part < 2; ++part) {
                const float dl = d * static_cast<float>(q3kScale(scales, is++));
                for (int l = 16 * part; l < 16 * part + 16; ++l) {
                    const int v = ((q[l] >> shift) & 3) - ((hmask[l] & m) ? 0 : 4);
                    *y++ = dl * static_cast<float>(v);
                }
            }
        }
    }
}

// Q4_K: 8 sub-blocks of 32. qs byte l of each 32-byte group g holds element 64g + l (low
// nibble) and 64g + 32 + l (high nibble). x = d * scale * q - dmin * min.
void dequantQ4_K(const std::uint8_t* b, float* y) {
    const float d = loadHalf(b), dmin = loadHalf(b + 2);
    const std::uint8_t* scales = b + 4;
    const std::uint8_t* q = b + 16;
    for (int g = 0; g < 4; ++g, q += 32) {
        int sc, mn;
        kQuantScaleMin(2 * g, scales, sc, mn);
        const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(mn);
        kQuantScaleMin(2 * g + 1, scales, sc, mn);
        const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(mn);
        for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
        for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
}

// Q5_K: Q4_K plus a fifth bit: element 64g + l has it in qh[l] at bit 2g, element
// 64g + 32 + l at bit 2g + 1.
void dequantQ5_K(const std::uint8_t* b, float* y) {
    const float d = loadHalf(b), dmin = loadHalf(b + 2);
    const std::uint8_t* scales = b + 4;
    const std::uint8_t* qh = b + 16;
    const std::uint8_t* ql = b + 48;
    for (int g = 0; g < 4; ++g, ql += 32) {
        int sc, mn;
        kQuantScaleMin(2 * g, scales, sc, mn);
        const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(mn);
        kQuantScaleMin(2 * g + 1, scales, sc, mn);
        const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(mn);
        for (int l = 0; l < 32; ++l)
            *y++ = d1 * static_cast<float>((ql[l] & 0xF) + (((qh[l] >> (2 * g)) & 1) << 4)) - m1;
        for (int l = 0; l < 32; ++l)
            *y++ = d2 * static_cast<float>((ql[l] >> 4) + (((qh[l] >> (2 * g + 1)) & 1) << 4)) - m2;
    }
}

// Q6_K: 16 sub-blocks of 16, signed 8-bit scales. In each 128-element half (ql 64 bytes,
// qh 32 bytes), for l < 32: element l = ql[l] low | qh[l] bits 0-1, l+32 = ql[l+32] low |
// bits 2-3, l+64 = ql[l] high | bits 4-5, l+96 = ql[l+32] high | bits 6-7; biased by 32.
void dequantQ6_K(const std::uint8_t* b, float* y) {
    const std::uint8_t* ql = b;
    const std::uint8_t* qh = b + 128;
    const auto* sc = reinterpret_cast<const std::int8_t*>(b + 192);
    const float d = loadHalf(b + 208);
    for (int half = 0; half < 2; ++half, ql += 64, qh += 32, sc += 8, y += 128) {
        for (int l = 0; l < 32; ++l) {
            const int is = l / 16;
            const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
            y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
            y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
            y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
        }
    }
}

using BlockDequant = void (*)(const std::uint8_t*, float*);

BlockDequant blockDequant(DType type) {
    switch (type) {
        case DType::Q4_0: return dequantQ4_0;
        case DType::Q4_1: return dequantQ4_1;
        case DType::Q5_0: return dequantQ5_0;
        case DType::Q5_1: return dequantQ5_1;
        case DType::Q8_0: return dequantQ8_0;
        case DType::Q2_K: return dequantQ2_K;
        case DType::Q3_K: return dequantQ3_K;
        case DType::Q4_K: return dequantQ4_K;
        case DType::Q5_K: return dequantQ5_K;
        case DType::Q6_K: return dequantQ6_K;
        case DType::IQ4_NL: return dequantIQ4_NL;
        case DType::IQ4_XS: return dequantIQ4_XS;
        case DType::MXFP4: return dequantMXFP4;
        default: return nullptr;
    }
}

void requireWholeBlocks(DType type, std::int64_t n, const char* what) {
    if (n < 0 || n % traits(type).blockSize != 0)
        throw std::invalid_argument(std::string(what) + ": " + std::to_string(n) + " elements is not a whole number of " +
                                    std::string(name(type)) + " blocks");
}

// ---- quantizers ----

int nearest(float v) { return static_cast<int>(std::lround(v)); }

// The value of largest magnitude, keeping its sign.
float signedAbsMax(const float* x, int n) {
    float best = 0.0f;
    for (int i = 0; i < n; ++i)
        if (std::fabs(x[i]) > std::fabs(best)) best = x[i];
    return best;
}

// The index of the table entry nearest v (the first of equals).
int nearestIndex(const std::int8_t (&table)[16], float v) {
    int best = 0;
    for (int i = 1; i < 16; ++i)
        if (std::fabs(static_cast<float>(table[i]) - v) < std::fabs(static_cast<float>(table[best]) - v)) best = i;
    return best;
}

// 32 values as nibbles of `table` times scale (0: every value 0).
void codebookNibbles(const std::int8_t (&table)[16], const float* x, float scale, std::uint8_t* qs) {
    const float inverse = scale != 0.0f ? 1.0f / scale : 0.0f;
    for (int j = 0; j < 16; ++j)
        qs[j] = static_cast<std::uint8_t>(nearestIndex(table, x[j] * inverse) | (nearestIndex(table, x[j + 16] * inverse) << 4));
}

// IQ4_NL: the value of largest magnitude on the table's -127 end, then the scale refitted by
// least squares to the chosen entries and the entries chosen again.
void quantIQ4_NL(const float* x, std::uint8_t* b) {
    float d = signedAbsMax(x, QK) / -127.0f;
    codebookNibbles(kIq4nlValues, x, d, b + 2);
    double xv = 0, vv = 0;
    for (int j = 0; j < QK; ++j) {
        const float v = kIq4nlValues[(b[2 + j % 16] >> (4 * (j / 16))) & 0xF];
        xv += static_cast<double>(x[j]) * v;
        vv += static_cast<double>(v) * v;
    }
    if (vv > 0 && xv != 0) d = static_cast<float>(xv / vv);
    storeHalf(b, d);
    codebookNibbles(kIq4nlValues, x, loadHalf(b), b + 2);
}

// IQ4_XS: each block of 32's own scale (as IQ4_NL's first guess) in 6 signed bits of d.
void quantIQ4_XS(const float* x, std::uint8_t* b) {
    float scales[8], largest = 0.0f;
    for (int ib = 0; ib < 8; ++ib) largest = std::max(largest, std::fabs(scales[ib] = signedAbsMax(x + 32 * ib, 32) / -127.0f));
    storeHalf(b, largest / 31.0f);
    const float d = loadHalf(b);
    std::uint16_t high = 0;
    std::memset(b + 4, 0, 4);
    for (int ib = 0; ib < 8; ++ib) {
        const int ls = d > 0.0f ? std::clamp(nearest(scales[ib] / d) + 32, 0, 63) : 32;
        b[4 + ib / 2] = static_cast<std::uint8_t>(b[4 + ib / 2] | ((ls & 0xF) << (4 * (ib % 2))));
        high = static_cast<std::uint16_t>(high | ((ls >> 4) << (2 * ib)));
        codebookNibbles(kIq4nlValues, x + 32 * ib, d * static_cast<float>(ls - 32), b + 8 + 16 * ib);
    }
    b[2] = static_cast<std::uint8_t>(high);
    b[3] = static_cast<std::uint8_t>(high >> 8);
}

// MXFP4: the smallest power of two that brings the largest magnitude within the table's 12.
void quantMXFP4(const float* x, std::uint8_t* b) {
    float amax = 0.0f;
    for (int j = 0; j < QK; ++j) amax = std::max(amax, std::fabs(x[j]));
    int e = 0;
    if (amax > 0.0f) {
        int exponent = 0;
        std::frexp(amax / 12.0f, &exponent);  // amax / 12 < 2^exponent
        e = std::clamp(exponent + 128, 0, 255);
    }
    b[0] = static_cast<std::uint8_t>(e);
    codebookNibbles(kMxfp4Values, x, amax > 0.0f ? mxfp4Scale(b[0]) : 0.0f, b + 1);
}

void quantQ8_0(const float* x, std::uint8_t* b) {
    float amax = 0.0f;
    for (int j = 0; j < QK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    storeHalf(b, d);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < QK; ++j) b[2 + j] = static_cast<std::uint8_t>(static_cast<std::int8_t>(std::clamp(nearest(x[j] * id), -127, 127)));
}

// Symmetric 4/5-bit: the largest-magnitude value maps to -2^(bits-1), using the full range.
void quantSymmetric(const float* x, std::uint8_t* b, int bits) {
    const int levels = 1 << bits, bias = levels / 2;
    const float d = signedAbsMax(x, QK) / static_cast<float>(-bias);
    storeHalf(b, d);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    std::uint8_t* qs = b + (bits == 4 ? 2 : 6);
    std::uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
        const int lo = std::clamp(nearest(x[j] * id) + bias, 0, levels - 1);
        const int hi = std::clamp(nearest(x[j + 16] * id) + bias, 0, levels - 1);
        qs[j] = static_cast<std::uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
        qh |= static_cast<std::uint32_t>((lo >> 4) & 1) << j;
        qh |= static_cast<std::uint32_t>((hi >> 4) & 1) << (j + 16);
    }
    if (bits == 5)
        for (int i = 0; i < 4; ++i) b[2 + i] = static_cast<std::uint8_t>(qh >> (8 * i));
}

// Affine 4/5-bit: min .. max over 2^bits levels.
void quantAffine(const float* x, std::uint8_t* b, int bits) {
    const int levels = (1 << bits) - 1;
    const auto [lo, hi] = std::minmax_element(x, x + QK);
    const float d = (*hi - *lo) / static_cast<float>(levels);
    storeHalf(b, d);
    storeHalf(b + 2, *lo);
    const float m = loadHalf(b + 2), dq = loadHalf(b);
    const float id = dq != 0.0f ? 1.0f / dq : 0.0f;
    std::uint8_t* qs = b + (bits == 4 ? 4 : 8);
    std::uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
        const int q0 = std::clamp(nearest((x[j] - m) * id), 0, levels);
        const int q1 = std::clamp(nearest((x[j + 16] - m) * id), 0, levels);
        qs[j] = static_cast<std::uint8_t>((q0 & 0xF) | ((q1 & 0xF) << 4));
        qh |= static_cast<std::uint32_t>((q0 >> 4) & 1) << j;
        qh |= static_cast<std::uint32_t>((q1 >> 4) & 1) << (j + 16);
    }
    if (bits == 5)
        for (int i = 0; i < 4; ++i) b[4 + i] = static_cast<std::uint8_t>(qh >> (8 * i));
}

// Q4_K: per 32-element sub-block an affine range [lo, hi] with lo <= 0, its scale and offset
// quantized to 6 bits against the super-block's d and dmin; then the 4-bit values are chosen
// against the quantized parameters so rounding of the scales is compensated.
void quantQ4_K(const float* x, std::uint8_t* b) {
    std::array<float, 8> scale{}, offset{};
    for (int j = 0; j < 8; ++j) {
        const auto [lo, hi] = std::minmax_element(x + 32 * j, x + 32 * j + 32);
        const float low = std::min(*lo, 0.0f);
        scale[j] = (*hi - low) / 15.0f;
        offset[j] = -low;
    }
    const float maxScale = *std::max_element(scale.begin(), scale.end());
    const float maxOffset = *std::max_element(offset.begin(), offset.end());
    storeHalf(b, maxScale / 63.0f);
    storeHalf(b + 2, maxOffset / 63.0f);
    const float d = loadHalf(b), dmin = loadHalf(b + 2);
    std::array<int, 8> sc{}, mn{};
    for (int j = 0; j < 8; ++j) {
        sc[j] = d > 0.0f ? std::clamp(nearest(scale[j] / d), 0, 63) : 0;
        mn[j] = dmin > 0.0f ? std::clamp(nearest(offset[j] / dmin), 0, 63) : 0;
        // Round the scale up when rounding down would clip the sub-block's largest value.
        if (d > 0.0f && sc[j] < 63 && static_cast<float>(sc[j]) * d * 15.0f < scale[j] * 15.0f - 1e-12f) ++sc[j];
    }
    std::uint8_t* s = b + 4;
    std::memset(s, 0, 12);
    for (int j = 0; j < 4; ++j) {
        s[j] = static_cast<std::uint8_t>((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
        s[j + 4] = static_cast<std::uint8_t>((mn[j] & 63) | ((mn[j + 4] >> 4) << 6));
        s[j + 8] = static_cast<std::uint8_t>((sc[j + 4] & 0xF) | ((mn[j + 4] & 0xF) << 4));
    }
    std::uint8_t* qs = b + 16;
    for (int g = 0; g < 4; ++g) {
        for (int half = 0; half < 2; ++half) {
            const int j = 2 * g + half;
            const float dj = d * static_cast<float>(sc[j]), mj = dmin * static_cast<float>(mn[j]);
            const float id = dj > 0.0f ? 1.0f / dj : 0.0f;
            for (int l = 0; l < 32; ++l) {
                const int q = std::clamp(nearest((x[32 * j + l] + mj) * id), 0, 15);
                std::uint8_t& byte = qs[32 * g + l];
                byte = half == 0 ? static_cast<std::uint8_t>((byte & 0xF0) | q)
                                 : static_cast<std::uint8_t>((byte & 0x0F) | (q << 4));
            }
        }
    }
}

// Q6_K: per 16-element sub-block a signed scale mapping its largest-magnitude value to -32,
// quantized to int8 against the super-block's d.
void quantQ6_K(const float* x, std::uint8_t* b) {
    std::array<float, 16> scale{};
    float maxAbsScale = 0.0f, maxScale = 0.0f;
    for (int j = 0; j < 16; ++j) {
        scale[j] = signedAbsMax(x + 16 * j, 16) / -32.0f;
        if (std::fabs(scale[j]) > maxAbsScale) {
            maxAbsScale = std::fabs(scale[j]);
            maxScale = scale[j];
        }
    }
    storeHalf(b + 208, maxScale / -128.0f);
    const float d = loadHalf(b + 208);
    auto* sc = reinterpret_cast<std::int8_t*>(b + 192);
    for (int j = 0; j < 16; ++j)
        sc[j] = static_cast<std::int8_t>(d != 0.0f ? std::clamp(nearest(scale[j] / d), -128, 127) : 0);
    std::array<int, QK_K> q{};
    for (int e = 0; e < QK_K; ++e) {
        const float dj = d * static_cast<float>(sc[e / 16]);
        q[static_cast<std::size_t>(e)] = dj != 0.0f ? std::clamp(nearest(x[e] / dj), -32, 31) + 32 : 32;
    }
    std::uint8_t* ql = b;
    std::uint8_t* qh = b + 128;
    for (int half = 0; half < 2; ++half) {
        const int* v = q.data() + 128 * half;
        for (int l = 0; l < 32; ++l) {
            ql[64 * half + l] = static_cast<std::uint8_t>((v[l] & 0xF) | ((v[l + 64] & 0xF) << 4));
            ql[64 * half + l + 32] = static_cast<std::uint8_t>((v[l + 32] & 0xF) | ((v[l + 96] & 0xF) << 4));
            qh[32 * half + l] = static_cast<std::uint8_t>((v[l] >> 4) | ((v[l + 32] >> 4) << 2) |
                                                           ((v[l + 64] >> 4) << 4) | ((v[l + 96] >> 4) << 6));
        }
    }
}

}  // namespace

void dequantize(DType type, const void* src, float* dst, std::int64_t n) {
    requireWholeBlocks(type, n, "dequantize");
    const auto* p = static_cast<const std::uint8_t*>(src);
    switch (type) {
        case DType::F32: std::memcpy(dst, p, static_cast<std::size_t>(n) * 4); return;
        case DType::F16:
            for (std::int64_t i = 0; i < n; ++i) dst[i] = halfToFloat(loadU16(p + 2 * i));
            return;
        case DType::BF16:
            for (std::int64_t i = 0; i < n; ++i) dst[i] = bf16ToFloat(loadU16(p + 2 * i));
            return;
        default: break;
    }
    const DTypeTraits& t = traits(type);
    const BlockDequant f = blockDequant(type);
    for (std::int64_t i = 0; i < n / t.blockSize; ++i) f(p + i * t.blockBytes, dst + i * t.blockSize);
}

float dot(DType type, const void* w, const float* x, std::int64_t n) {
    requireWholeBlocks(type, n, "dot");
    const DTypeTraits& t = traits(type);
    const auto* p = static_cast<const std::uint8_t*>(w);
    std::array<float, QK_K> block{};
    double sum = 0.0;
    for (std::int64_t i = 0; i < n; i += t.blockSize) {
        dequantize(type, p + (i / t.blockSize) * t.blockBytes, block.data(), t.blockSize);
        for (std::int64_t j = 0; j < t.blockSize; ++j)
            sum += static_cast<double>(block[static_cast<std::size_t>(j)]) * static_cast<double>(x[i + j]);
    }
    return static_cast<float>(sum);
}

bool canQuantize(DType type) {
    switch (type) {
        case DType::Q2_K:
        case DType::Q3_K:
        case DType::Q5_K: return false;
        default: return true;
    }
}

void quantize(DType type, const float* src, void* dst, std::int64_t n) {
    if (!canQuantize(type))
        throw std::invalid_argument("quantize: no quantizer for " + std::string(name(type)));
    requireWholeBlocks(type, n, "quantize");
    auto* out = static_cast<std::uint8_t*>(dst);
    const DTypeTraits& t = traits(type);
    for (std::int64_t i = 0; i < n; i += t.blockSize) {
        const float* x = src + i;
        std::uint8_t* b = out + (i / t.blockSize) * t.blockBytes;
        switch (type) {
            case DType::F32: std::memcpy(b, x, 4); break;
            case DType::F16: {
                const std::uint16_t h = floatToHalf(*x);
                b[0] = static_cast<std::uint8_t>(h);
                b[1] = static_cast<std::uint8_t>(h >> 8);
                break;
            }
            case DType::BF16: {
                const std::uint16_t h = floatToBf16(*x);
                b[0] = static_cast<std::uint8_t>(h);
                b[1] = static_cast<std::uint8_t>(h >> 8);
                break;
            }
            case DType::Q4_0: quantSymmetric(x, b, 4); break;
            case DType::Q5_0: quantSymmetric(x, b, 5); break;
            case DType::Q4_1: quantAffine(x, b, 4); break;
            case DType::Q5_1: quantAffine(x, b, 5); break;
            case DType::Q8_0: quantQ8_0(x, b); break;
            case DType::Q4_K: quantQ4_K(x, b); break;
            case DType::Q6_K: quantQ6_K(x, b); break;
            case DType::IQ4_NL: quantIQ4_NL(x, b); break;
            case DType::IQ4_XS: quantIQ4_XS(x, b); break;
            case DType::MXFP4: quantMXFP4(x, b); break;
            default: throw std::invalid_argument("quantize: no quantizer for " + std::string(name(type)));
        }
    }
}

}  // namespace lumen::inference
