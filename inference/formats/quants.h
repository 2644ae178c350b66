#pragma once
// Scalar reference implementations for every DType: dequantize, dot and (for some) quantize.
// These are the spec: SIMD and CUDA kernels are tested against them. Lengths are element
// counts and must be whole blocks; pointers address packed blocks as stored in model files.

#include <cstdint>

#include "inference/formats/block_scales.h"
#include "inference/formats/dtype.h"

namespace lumen::inference {

// dst[0..n) = the n elements at src.
void dequantize(DType type, const void* src, float* dst, std::int64_t n);

// sum over i < n of w[i] * x[i], where w is stored as `type`; accumulated in double.
float dot(DType type, const void* w, const float* x, std::int64_t n);


// Whether `quantize` supports the type (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q6_K).
bool canQuantize(DType type);

// Writes n elements of src as `type` to dst (byteSize(type, n) bytes). Throws
// std::invalid_argument for a type without a quantizer or n not a whole number of blocks.
void quantize(DType type, const float* src, void* dst, std::int64_t n);

}  // namespace lumen::inference
