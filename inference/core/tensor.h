#pragma once
// A view of a weight tensor: its type, shape (ggml order: ne[0] is a row) and bytes. Weights
// are views into the memory-mapped model file and are never copied on the CPU.

#include <array>
#include <cstdint>
#include <string>

#include "inference/formats/dtype.h"

namespace lumen::inference {

struct Tensor {
    std::string name;
    DType dtype = DType::F32;
    std::array<std::int64_t, 4> ne{1, 1, 1, 1};
    const std::uint8_t* data = nullptr;

    std::int64_t rowLength() const { return ne[0]; }
    std::int64_t rows() const { return ne[1] * ne[2] * ne[3]; }
    std::int64_t rowBytes() const { return *byteSize(dtype, ne[0]); }
    std::int64_t elements() const { return ne[0] * rows(); }
    const std::uint8_t* row(std::int64_t i) const { return data + i * rowBytes(); }
};

}  // namespace lumen::inference
