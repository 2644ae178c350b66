#pragma once
// Random weight matrices of any dtype for backend parity tests (no Qt: the CUDA tests use it
// too). Types our quantizer writes are quantized from normal values; the others get random
// bytes with small F16 scales.

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "inference/core/tensor.h"
#include "inference/formats/quants.h"

namespace lumen::test {

struct Matrix {
    inference::Tensor tensor;
    std::vector<std::uint8_t> bytes;
    std::vector<float> values;  // dequantized
};

inline Matrix randomMatrix(inference::DType type, std::int64_t cols, std::int64_t rows, unsigned seed) {
    using namespace lumen::inference;
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> src(static_cast<std::size_t>(cols * rows));
    for (auto& v : src) v = normal(rng);
    Matrix m;
    m.bytes.resize(static_cast<std::size_t>(*byteSize(type, cols * rows)));
    if (canQuantize(type)) {
        quantize(type, src.data(), m.bytes.data(), cols * rows);
    } else {
        for (auto& b : m.bytes) b = static_cast<std::uint8_t>(rng() & 0x37);  // small fp16 scales
    }
    m.values.resize(src.size());
    dequantize(type, m.bytes.data(), m.values.data(), cols * rows);
    m.tensor.name = std::string(1, 'w');  // (assigning a literal trips a GCC 12 -Wrestrict false positive)
    m.tensor.dtype = type;
    m.tensor.ne = {cols, rows, 1, 1};
    m.tensor.data = m.bytes.data();
    return m;
}

}  // namespace lumen::test
