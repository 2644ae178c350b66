#pragma once
// Each quantized type's SIMD kernel is written once over R activation rows (row k at
// x + k * nBlocks), so each weight block is unpacked once for all of them (prefill). These wrap
// it for one row (decode) and for a row count known at run time. Shared by the kernel sets.

#include <cstdint>

namespace lumen::inference::cpu {

template <class Block>
using RowsKernel = void (*)(const std::uint8_t* w, const Block* x, std::int64_t nBlocks, float* out);

template <class Block, RowsKernel<Block> kKernel1>
float oneRow(const std::uint8_t* w, const Block* x, std::int64_t nBlocks) {
    float out;
    kKernel1(w, x, nBlocks, &out);
    return out;
}

template <class Block, RowsKernel<Block> k1, RowsKernel<Block> k2, RowsKernel<Block> k3, RowsKernel<Block> k4>
void someRows(const std::uint8_t* w, const Block* x, std::int64_t nBlocks, int rows, float* out) {
    switch (rows) {
        case 1: return k1(w, x, nBlocks, out);
        case 2: return k2(w, x, nBlocks, out);
        case 3: return k3(w, x, nBlocks, out);
        default: return k4(w, x, nBlocks, out);
    }
}

}  // namespace lumen::inference::cpu
