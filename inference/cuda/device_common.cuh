#pragma once
// Device-side helpers shared by the kernels: checked launch sizes, warp reductions, and the
// value of element j of a weight row in every supported dtype (the layouts of quants.cpp).

#include <cuda_fp16.h>

#include <cstdint>

#include "inference/cuda/kernels.h"
#include "inference/formats/block_scales.h"

namespace lumen::inference::cuda {

inline unsigned blocksFor(std::int64_t n, int threads) { return static_cast<unsigned>((n + threads - 1) / threads); }

__device__ __forceinline__ float warpSum(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

__device__ __forceinline__ float warpMax(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

__device__ __forceinline__ float halfAt(const std::uint8_t* p) {
    const auto bits = static_cast<unsigned short>(p[0] | (p[1] << 8));
    return __half2float(__ushort_as_half(bits));
}

__device__ __forceinline__ float halfBits(std::uint16_t bits) { return __half2float(__ushort_as_half(bits)); }

__device__ __forceinline__ std::uint32_t u32At(const std::uint8_t* p) {
    return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) | (static_cast<std::uint32_t>(p[2]) << 16) |
           (static_cast<std::uint32_t>(p[3]) << 24);
}

// Element `col` of row `row` of a weight, dequantized. Slow (byte loads, a switch) but complete:
// the fallback for every type and shape the vectorised kernels do not cover.
__device__ inline int iq4nlValue(int i) {
    constexpr std::int8_t kValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
    return kValues[i];
}
__device__ inline int mxfp4Value(int i) {
    constexpr std::int8_t kValues[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
    return kValues[i];
}

__device__ inline float weightAt(const DeviceWeight& w, std::int64_t row, std::int64_t col) {
    const std::uint8_t* r = w.data + row * w.rowBytes;
    switch (w.dtype) {
        case DType::F32: return reinterpret_cast<const float*>(r)[col];
        case DType::F16: return halfAt(r + 2 * col);
        case DType::BF16: {
            const std::uint32_t bits = static_cast<std::uint32_t>(r[2 * col] | (r[2 * col + 1] << 8)) << 16;
            return __uint_as_float(bits);
        }
        case DType::Q4_0: {
            const std::int64_t b = col / 32;
            const int j = static_cast<int>(col % 32);
            const float d = halfBits(w.scales[row * (w.cols / 32) + b]);
            const std::uint8_t q = r[16 * b + (j % 16)];
            return static_cast<float>((j < 16 ? (q & 0xF) : (q >> 4)) - 8) * d;
        }
        case DType::Q8_0: {
            const std::int64_t b = col / 32;
            const float d = halfBits(w.scales[row * (w.cols / 32) + b]);
            return static_cast<float>(static_cast<std::int8_t>(r[32 * b + col % 32])) * d;
        }
        case DType::Q4_1: {
            const std::uint8_t* p = r + 20 * (col / 32);
            const int j = static_cast<int>(col % 32);
            const std::uint8_t q = p[4 + (j % 16)];
            return static_cast<float>(j < 16 ? (q & 0xF) : (q >> 4)) * halfAt(p) + halfAt(p + 2);
        }
        case DType::Q5_0: {
            const std::uint8_t* p = r + 22 * (col / 32);
            const int j = static_cast<int>(col % 32);
            const std::uint8_t q = p[6 + (j % 16)];
            const int v = (j < 16 ? (q & 0xF) : (q >> 4)) | static_cast<int>(((u32At(p + 2) >> j) & 1) << 4);
            return static_cast<float>(v - 16) * halfAt(p);
        }
        case DType::Q5_1: {
            const std::uint8_t* p = r + 24 * (col / 32);
            const int j = static_cast<int>(col % 32);
            const std::uint8_t q = p[8 + (j % 16)];
            const int v = (j < 16 ? (q & 0xF) : (q >> 4)) | static_cast<int>(((u32At(p + 4) >> j) & 1) << 4);
            return static_cast<float>(v) * halfAt(p) + halfAt(p + 2);
        }
        case DType::Q2_K: {
            const std::uint8_t* p = r + 84 * (col / 256);
            const int e = static_cast<int>(col % 256), half = e / 128, s = (e % 128) / 32, l32 = e % 32, part = l32 / 16;
            const std::uint8_t sc = p[half * 8 + s * 2 + part];
            const int q = (p[16 + 32 * half + l32] >> (2 * s)) & 3;
            return halfAt(p + 80) * static_cast<float>(sc & 0xF) * static_cast<float>(q) - halfAt(p + 82) * static_cast<float>(sc >> 4);
        }
        case DType::Q3_K: {
            const std::uint8_t* p = r + 110 * (col / 256);
            const int e = static_cast<int>(col % 256), half = e / 128, s = (e % 128) / 32, l32 = e % 32, part = l32 / 16;
            const int m = 1 << (half * 4 + s);
            const int q = ((p[32 + 32 * half + l32] >> (2 * s)) & 3) - ((p[l32] & m) ? 0 : 4);
            return halfAt(p + 108) * static_cast<float>(q3kScale(p + 96, half * 8 + s * 2 + part)) * static_cast<float>(q);
        }
        case DType::Q4_K: {
            const std::uint8_t* p = r + 144 * (col / 256);
            const int e = static_cast<int>(col % 256), g = e / 64, hi = (e % 64) / 32, l = e % 32;
            int sc, mn;
            kQuantScaleMin(2 * g + hi, p + 4, sc, mn);
            const std::uint8_t q = p[16 + 32 * g + l];
            return halfAt(p) * static_cast<float>(sc) * static_cast<float>(hi ? (q >> 4) : (q & 0xF)) - halfAt(p + 2) * static_cast<float>(mn);
        }
        case DType::Q5_K: {
            const std::uint8_t* p = r + 176 * (col / 256);
            const int e = static_cast<int>(col % 256), g = e / 64, hi = (e % 64) / 32, l = e % 32;
            int sc, mn;
            kQuantScaleMin(2 * g + hi, p + 4, sc, mn);
            const std::uint8_t q = p[48 + 32 * g + l];
            const int v = (hi ? (q >> 4) : (q & 0xF)) + (((p[16 + l] >> (2 * g + hi)) & 1) << 4);
            return halfAt(p) * static_cast<float>(sc) * static_cast<float>(v) - halfAt(p + 2) * static_cast<float>(mn);
        }
        case DType::Q6_K: {
            const std::int64_t b = col / 256;
            const std::uint8_t* p = r + 208 * b;
            const int e = static_cast<int>(col % 256), half = e / 128, quarter = (e % 128) / 32, l = e % 32;
            const std::uint8_t ql = p[64 * half + l + (quarter & 1) * 32];
            const int lo = quarter < 2 ? (ql & 0xF) : (ql >> 4);
            const int hi = (p[128 + 32 * half + l] >> (2 * quarter)) & 3;
            const auto sc = static_cast<std::int8_t>(p[192 + 8 * half + l / 16 + 2 * quarter]);
            return halfBits(w.scales[row * (w.cols / 256) + b]) * static_cast<float>(sc) * static_cast<float>((lo | (hi << 4)) - 32);
        }
        // The 4-bit codebook formats (dtype.h): element j of a block of 32 is nibble j % 16 of
        // its 16 bytes (low for j < 16) looked up in the table.
        case DType::IQ4_NL: {
            const std::uint8_t* p = r + 18 * (col / 32);
            const int j = static_cast<int>(col % 32), q = j < 16 ? (p[2 + j] & 0xF) : (p[2 + j - 16] >> 4);
            return static_cast<float>(iq4nlValue(q)) * halfAt(p);
        }
        case DType::IQ4_XS: {
            const std::uint8_t* p = r + 136 * (col / 256);
            const int e = static_cast<int>(col % 256), ib = e / 32, j = e % 32;
            const int ls = (((p[4 + ib / 2] >> (4 * (ib % 2))) & 0xF) | ((((p[2] | (p[3] << 8)) >> (2 * ib)) & 3) << 4)) - 32;
            const std::uint8_t* qs = p + 8 + 16 * ib;
            const int q = j < 16 ? (qs[j] & 0xF) : (qs[j - 16] >> 4);
            return halfAt(p) * static_cast<float>(ls) * static_cast<float>(iq4nlValue(q));
        }
        case DType::MXFP4: {
            const std::uint8_t* p = r + 17 * (col / 32);
            const int j = static_cast<int>(col % 32), q = j < 16 ? (p[1 + j] & 0xF) : (p[1 + j - 16] >> 4);
            return static_cast<float>(mxfp4Value(q)) * ldexpf(1.0f, static_cast<int>(p[0]) - 128);
        }
        default: return 0.0f;
    }
}

}  // namespace lumen::inference::cuda
