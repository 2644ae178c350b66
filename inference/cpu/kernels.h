#pragma once
// The CPU backend's kernels (row dots, row tiles for prompts, attention, a few elementwise ops) in
// sets: the scalar reference, AVX2, AVX2+VNNI and AVX-512, the best one the CPU runs chosen once
// at run time. Quantized weights are multiplied with activations quantized once per matmul to 8
// bits in blocks of 32 or 256 (as the fastest engines do): integer products per block, one float
// scale per block pair.

#include <cstdint>
#include <cstring>
#include <string_view>

namespace lumen::inference::cpu {

struct DeltaHead;

// An activation block: 32 values as round(x / d), |q| <= 127, and s = d * sum(q) (the
// offset formats Q4_1/Q5_1 multiply their minimum by it).
struct BlockQ8 {
    float d;
    float s;
    std::int8_t q[32];
};

// A K-quant activation block: 256 values as round(x / d), with the sum of each 16 of them
// (the weights' minimums and offsets multiply those sums).
struct BlockQ8K {
    float d;
    std::int8_t q[256];
    std::int16_t bsums[16];
};

// A weight type's kernel on activations packed into its own layout (the AVX-512 set's Q4_0, Q8_0
// and Q4_K): the activation rows (BlockQ8 or BlockQ8K) are repacked once per matmul, so the inner
// loop loads them whole.
template <class Block>
struct PackedKernel {
    // Bytes of one packed activation row of nBlocks blocks (a multiple of 64).
    std::int64_t (*bytes)(std::int64_t nBlocks);
    void (*pack)(const Block* x, std::int64_t nBlocks, std::uint8_t* out);
    // Weight rows 0..wRows-1 (rowBytes apart from w) against `rows` (1 to 4) packed activation
    // rows, row k at packed + k * bytes(nBlocks): y[k * yStride + j] is weight row j times
    // activation row k, the same bits for any `rows` and wRows.
    void (*dotRows)(const std::uint8_t* w, std::int64_t rowBytes, std::int64_t wRows, const std::uint8_t* packed, std::int64_t nBlocks,
                    int rows, float* y, std::int64_t yStride);
};

struct Kernels {
    const char* name;
    float (*dotF32)(const float* w, const float* x, std::int64_t n);
    float (*dotF16)(const std::uint16_t* w, const float* x, std::int64_t n);
    float (*dotBF16)(const std::uint16_t* w, const float* x, std::int64_t n);
    // One weight row of nBlocks Q8_0 / Q4_0 blocks against quantized activations.
    float (*dotQ8_0)(const std::uint8_t* w, const BlockQ8* x, std::int64_t nBlocks);
    float (*dotQ4_0)(const std::uint8_t* w, const BlockQ8* x, std::int64_t nBlocks);
    float (*dotQ4_1)(const std::uint8_t* w, const BlockQ8* x, std::int64_t nBlocks);
    float (*dotQ5_0)(const std::uint8_t* w, const BlockQ8* x, std::int64_t nBlocks);
    float (*dotQ5_1)(const std::uint8_t* w, const BlockQ8* x, std::int64_t nBlocks);
    // One weight row of nBlocks K-quant super-blocks against K activations.
    float (*dotQ2_K)(const std::uint8_t* w, const BlockQ8K* x, std::int64_t nBlocks);
    float (*dotQ3_K)(const std::uint8_t* w, const BlockQ8K* x, std::int64_t nBlocks);
    float (*dotQ4_K)(const std::uint8_t* w, const BlockQ8K* x, std::int64_t nBlocks);
    float (*dotQ5_K)(const std::uint8_t* w, const BlockQ8K* x, std::int64_t nBlocks);
    float (*dotQ6_K)(const std::uint8_t* w, const BlockQ8K* x, std::int64_t nBlocks);
    // Prefill: one weight row against `rows` (1 to 4) activation rows at once, row k of them at
    // x + k * nBlocks, so each weight block is unpacked once for all of them; out[k] is row k's
    // dot. nullptr where a set has none (the scalar set) or for other types.
    void (*dotRowsQ8_0)(const std::uint8_t* w, const BlockQ8* x, std::int64_t nBlocks, int rows, float* out);
    void (*dotRowsQ4_0)(const std::uint8_t* w, const BlockQ8* x, std::int64_t nBlocks, int rows, float* out);
    void (*dotRowsQ4_K)(const std::uint8_t* w, const BlockQ8K* x, std::int64_t nBlocks, int rows, float* out);
    void (*dotRowsQ6_K)(const std::uint8_t* w, const BlockQ8K* x, std::int64_t nBlocks, int rows, float* out);
    // Float weights (F32, F16, BF16): wRows (1 to kMaxTileWeightRows) weight rows, rowBytes
    // apart from w, against xRows (1 to 4) activation rows, cols apart: out[j * kMaxDotRows + k]
    // is weight row j times activation row k, equal bit for bit to dotF32 / dotF16 / dotBF16 of
    // those rows. nullptr in the scalar set.
    void (*tileF32)(const std::uint8_t* w, std::int64_t rowBytes, int wRows, const float* x, std::int64_t cols, int xRows, float* out);
    void (*tileF16)(const std::uint8_t* w, std::int64_t rowBytes, int wRows, const float* x, std::int64_t cols, int xRows, float* out);
    void (*tileBF16)(const std::uint8_t* w, std::int64_t rowBytes, int wRows, const float* x, std::int64_t cols, int xRows, float* out);
    // Attention of `queries` (1 to kMaxAttentionQueries) query vectors, qStride apart (headDim a
    // multiple of 8), that share one KV head over `count` positions, key and value rows `stride`
    // elements apart: out (laid out like q) = softmax(cap(q k^T * scale)) v, cap(s) = softcap *
    // tanh(s / softcap) when softcap > 0 (Gemma 2), else s. sinks (or nullptr): one logit per query
    // that joins its softmax with no value (gpt-oss). scratch holds queries * count floats.
    // Each query's result is the same whichever others come with it. nullptr in the scalar set.
    void (*attendF32)(const float* q, int queries, std::int64_t qStride, const float* keys, const float* values, std::int64_t stride,
                      std::int64_t count, std::int64_t headDim, float scale, float softcap, const float* sinks, float* scratch, float* out);
    void (*attendF16)(const float* q, int queries, std::int64_t qStride, const std::uint16_t* keys, const std::uint16_t* values,
                      std::int64_t stride, std::int64_t count, std::int64_t headDim, float scale, float softcap, const float* sinks, float* scratch, float* out);
    // The same over a Q8_0 cache: element i of keys is keys[i] * keyScales[i / 32] (headDim a
    // multiple of 32), and so for values.
    void (*attendQ8)(const float* q, int queries, std::int64_t qStride, const std::int8_t* keys, const std::int8_t* values, const float* keyScales,
                     const float* valueScales, std::int64_t stride, std::int64_t count, std::int64_t headDim, float scale, float softcap,
                     const float* sinks, float* scratch, float* out);
    // gate[i] = silu(gate[i]) * up[i] (exp on 8 lanes). nullptr in the scalar set.
    void (*siluMul)(float* gate, const float* up, std::int64_t n);
    // quantizeActivations for BlockQ8, the same bits.
    void (*quantizeQ8)(const float* x, std::int64_t n, BlockQ8* out);
    // quantizeActivations for BlockQ8K (the K-quants' activations), the same bits.
    void (*quantizeQ8K)(const float* x, std::int64_t n, BlockQ8K* out);
    // out[i] = floatToHalf(x[i]) (F16C), the same bits but for NaN payloads. nullptr in the
    // scalar set.
    void (*toHalf)(const float* x, std::int64_t n, std::uint16_t* out);
    // Packed-activation kernels that replace dotQ8_0/dotQ4_0/dotQ4_K and their row versions in
    // matmuls where set (dotRows nullptr: none).
    PackedKernel<BlockQ8> packedQ8_0;
    PackedKernel<BlockQ8> packedQ4_0;
    PackedKernel<BlockQ8K> packedQ4_K;
    // The 4-bit codebook formats against quantized activations, nBlocks blocks of 32 (IQ4_XS:
    // a multiple of 8, its super-blocks' sub-blocks).
    float (*dotIQ4_NL)(const std::uint8_t* w, const BlockQ8* x, std::int64_t nBlocks);
    float (*dotIQ4_XS)(const std::uint8_t* w, const BlockQ8* x, std::int64_t nBlocks);
    float (*dotMXFP4)(const std::uint8_t* w, const BlockQ8* x, std::int64_t nBlocks);
    // Their row kernels (see dotRowsQ8_0); nullptr in the scalar set.
    void (*dotRowsIQ4_NL)(const std::uint8_t* w, const BlockQ8* x, std::int64_t nBlocks, int rows, float* out);
    void (*dotRowsIQ4_XS)(const std::uint8_t* w, const BlockQ8* x, std::int64_t nBlocks, int rows, float* out);
    void (*dotRowsMXFP4)(const std::uint8_t* w, const BlockQ8* x, std::int64_t nBlocks, int rows, float* out);
    // Packed-activation kernels of the codebook formats (AVX-512 only), as packedQ4_0.
    PackedKernel<BlockQ8> packedIQ4_NL;
    PackedKernel<BlockQ8> packedMXFP4;
    // One value head of Gated DeltaNet (delta_net.h; kDim and vDim multiples of 16): token by
    // token, and in chunks (prompts). nullptr in the scalar set.
    void (*deltaNetRecurrent)(const DeltaHead& head);
    void (*deltaNetChunked)(const DeltaHead& head);
};

// MXFP4's E8M0 scale e, halved (its table holds the E2M1 values doubled): 2^(e - 128), exactly
// (subnormal below e = 2), built from its bits.
inline float e8m0Half(std::uint8_t e) {
    const std::uint32_t bits = e < 2 ? std::uint32_t{0x00200000} << e : static_cast<std::uint32_t>(e - 1) << 23;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

constexpr int kMaxDotRows = 4;
constexpr int kMaxTileWeightRows = 2;
constexpr int kMaxAttentionQueries = 16;

void quantizeActivations(const float* x, std::int64_t n, BlockQ8* out);   // n a multiple of 32
void quantizeActivations(const float* x, std::int64_t n, BlockQ8K* out);  // n a multiple of 256


const Kernels& scalarKernels();
const Kernels* avx2Kernels();  // nullptr when not compiled for x86
// AVX2 with AVX-VNNI (VEX) for the Q8_0/Q4_0 byte products (same results): CPUs with AVX-VNNI but
// no AVX-512. nullptr when not compiled for x86.
const Kernels* avx2AvxVnniKernels();
// AVX2 with AVX512-VNNI for the Q8_0/Q4_0 byte products (same results); the CPU must have
// avx512f, avx512bw, avx512vl and avx512vnni.
const Kernels* avx2VnniKernels();
// AVX-512 (F, BW, VL, VNNI, VBMI): the AVX2+VNNI set with 512-bit kernels for Q8_0, Q4_0 and Q4_K
// (packed activations), Q6_K and the float dots and tiles. nullptr when not compiled for x86.
const Kernels* avx512Kernels();
// The set a name asks for ("scalar", "avx2", "avx2+avx-vnni", "avx2+vnni", "avx-512"; any case)
// when this CPU runs
// it, else nullptr.
const Kernels* runnableKernels(std::string_view name);
// The best set this CPU runs, or the one the environment variable LUMEN_CPU_KERNELS names (for
// comparing sets on one machine; a warning and the best set when the CPU cannot run it).
const Kernels& bestKernels();

}  // namespace lumen::inference::cpu
