#pragma once
// Each quantized type's SIMD kernel is written once over R activation rows (row k at
// x + k * nBlocks), so each weight block is unpacked once for all of them (prefill). These wrap
// it for one row (decode) and for a row count known at run time. Shared by the kernel sets.

#include <cstdint>
#include <type_traits>

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

// A packed kernel's dotRows (see PackedKernel) from its one-weight-row kernel
// Dot<R>::run(w, packed, nBlocks, out), which writes out[k] for activation rows k < R.
template <template <int> class Dot>
void packedRows(const std::uint8_t* w, std::int64_t rowBytes, std::int64_t wRows, const std::uint8_t* packed, std::int64_t nBlocks, int rows, float* y,
                std::int64_t yStride) {
    const auto each = [&](auto count) {
        constexpr int R = decltype(count)::value;
        float out[R];
        for (std::int64_t j = 0; j < wRows; ++j, w += rowBytes) {
            Dot<R>::run(w, packed, nBlocks, out);
            for (int k = 0; k < R; ++k) y[k * yStride + j] = out[k];
        }
    };
    switch (rows) {
        case 1: return each(std::integral_constant<int, 1>{});
        case 2: return each(std::integral_constant<int, 2>{});
        case 3: return each(std::integral_constant<int, 3>{});
        default: return each(std::integral_constant<int, 4>{});
    }
}

}  // namespace lumen::inference::cpu
