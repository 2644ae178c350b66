#pragma once
// Tensor element types, numbered as GGUF (ggml_type) numbers them, so a GGUF file's type field
// maps directly. Block formats store `blockSize` elements in `blockBytes` bytes.
//
//   type   id  elements/block  bytes/block  layout (little-endian; "half" = IEEE fp16)
//   F32     0        1             4
//   F16     1        1             2
//   Q4_0    2       32            18        half d; u8 qs[16]            x = (q - 8) * d
//   Q4_1    3       32            20        half d, m; u8 qs[16]         x = q * d + m
//   Q5_0    6       32            22        half d; u8 qh[4]; u8 qs[16]  x = (q - 16) * d
//   Q5_1    7       32            24        half d, m; u8 qh[4]; qs[16]  x = q * d + m
//   Q8_0    8       32            34        half d; i8 qs[32]            x = q * d
//   Q2_K   10      256            84        u8 scales[16]; u8 qs[64]; half d, dmin
//   Q3_K   11      256           110        u8 hmask[32]; u8 qs[64]; u8 scales[12]; half d
//   Q4_K   12      256           144        half d, dmin; u8 scales[12]; u8 qs[128]
//   Q5_K   13      256           176        half d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]
//   Q6_K   14      256           210        u8 ql[128]; u8 qh[64]; i8 scales[16]; half d
//   IQ4_NL 20       32            18        half d; u8 qs[16]            x = kIq4nl[q] * d
//   IQ4_XS 23      256           136        half d; u16 scales_h; u8 scales_l[4]; u8 qs[128]
//                                             32 at a time: x = d * (ls - 32) * kIq4nl[q],
//                                             ls = 4 bits of scales_l | 2 of scales_h << 4
//   BF16   30        1             2
//   MXFP4  39       32            17        u8 e; u8 qs[16]              x = kMxfp4[q] * 2^(e - 128)
// kIq4nl = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
// kMxfp4 = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12} (FP4 E2M1, doubled; the
// E8M0 scale halved).
// In the 32-element formats, byte j of qs holds element j (low nibble) and j + 16 (high
// nibble). quants.cpp documents the K-quant sub-block layouts where it decodes them.

#include <cstdint>
#include <optional>
#include <string_view>

namespace lumen::inference {

enum class DType : std::uint32_t {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    IQ4_NL = 20,
    IQ4_XS = 23,
    BF16 = 30,
    MXFP4 = 39,
};

struct DTypeTraits {
    std::string_view name;
    std::int64_t blockSize;   // elements per block
    std::int64_t blockBytes;  // bytes per block
    bool quantized;
};

// nullopt for a GGUF type number we do not support.
std::optional<DType> dtypeFromGguf(std::uint32_t id);
std::optional<DType> dtypeFromName(std::string_view name);  // "Q4_K", "f16" (any case)
const DTypeTraits& traits(DType type);
inline std::string_view name(DType type) { return traits(type).name; }

// Bytes for `elements` elements of `type`; nullopt when `elements` is not a whole number of
// blocks or the size overflows int64.
std::optional<std::int64_t> byteSize(DType type, std::int64_t elements);

// Every supported type, for tests and tools.
inline constexpr DType kAllDTypes[] = {DType::F32,  DType::F16,  DType::BF16,   DType::Q4_0,   DType::Q4_1,  DType::Q5_0,
                                       DType::Q5_1, DType::Q8_0, DType::Q2_K,   DType::Q3_K,   DType::Q4_K,  DType::Q5_K,
                                       DType::Q6_K, DType::IQ4_NL, DType::IQ4_XS, DType::MXFP4};

// The 4-bit codebooks of IQ4_NL / IQ4_XS and MXFP4 (above).
inline constexpr std::int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
inline constexpr std::int8_t kMxfp4Values[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

}  // namespace lumen::inference
