// y = W x for one activation row (decode): memory-bound, so each thread reads whole 16-byte
// vectors of weight blocks and the warps of a block share rows between them. One "unit" is
// the piece of a row one thread handles per step; a row is split across `splits` warps when
// there are few rows, so small matrices still fill the GPU.
//
// Quantized weights meet activations quantized to 8 bits per block of 32 (as the CPU's fast
// path and llama.cpp do): a float activation vector would be read 4 times over per weight byte
// from L1 and cap the kernels near a quarter of the memory bandwidth; int8 activations and
// __dp4a (four 8-bit products per instruction) keep them memory-bound.

#include "inference/cuda/device_common.cuh"

namespace lumen::inference::cuda {
namespace {

constexpr int kThreads = 256;  // 8 warps

__device__ __forceinline__ float4 load4(const float* p) { return *reinterpret_cast<const float4*>(p); }
__device__ __forceinline__ uint4 loadVec(const std::uint8_t* p) { return *reinterpret_cast<const uint4*>(p); }
__device__ __forceinline__ std::uint32_t word(const uint4& v, int k) { return k == 0 ? v.x : k == 1 ? v.y : k == 2 ? v.z : v.w; }
// Byte i (0..15) of a 16-byte vector held in registers.
__device__ __forceinline__ int byteOf(const uint4& v, int i) { return static_cast<int>((word(v, i / 4) >> (8 * (i % 4))) & 0xFF); }
__device__ __forceinline__ float dot4(const float4& a, float b0, float b1, float b2, float b3) {
    return a.x * b0 + a.y * b1 + a.z * b2 + a.w * b3;
}

struct UnitGeneric {  // any type and shape: one element per step
    using Input = const float*;
    static constexpr int kElems = 1;
    __device__ static float dot(const DeviceWeight& w, std::int64_t row, std::int64_t u, const float* x) { return weightAt(w, row, u) * x[u]; }
};

struct UnitF32 {
    using Input = const float*;
    static constexpr int kElems = 4;
    __device__ static float dot(const DeviceWeight& w, std::int64_t row, std::int64_t u, const float* x) {
        const float4 a = *reinterpret_cast<const float4*>(w.data + row * w.rowBytes + 16 * u);
        const float4 b = load4(x + 4 * u);
        return a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w;
    }
};

struct UnitF16 {
    using Input = const float*;
    static constexpr int kElems = 8;
    __device__ static float dot(const DeviceWeight& w, std::int64_t row, std::int64_t u, const float* x) {
        const uint4 q = loadVec(w.data + row * w.rowBytes + 16 * u);
        const float4 a = load4(x + 8 * u), b = load4(x + 8 * u + 4);
        const half2* h = reinterpret_cast<const half2*>(&q);
        const float2 f0 = __half22float2(h[0]), f1 = __half22float2(h[1]), f2 = __half22float2(h[2]), f3 = __half22float2(h[3]);
        return dot4(a, f0.x, f0.y, f1.x, f1.y) + dot4(b, f2.x, f2.y, f3.x, f3.y);
    }
};

// Activations quantized per block of 32: q (int8), d (scale) and s = d * sum(q) per block.
struct ActQ8 {
    const std::int8_t* q;
    const float* d;
    const float* s;
};

__device__ __forceinline__ int4 loadQ(const std::int8_t* p) { return *reinterpret_cast<const int4*>(p); }
__device__ __forceinline__ int iword(const int4& v, int k) { return k == 0 ? v.x : k == 1 ? v.y : k == 2 ? v.z : v.w; }
constexpr int kOnes = 0x01010101;

struct UnitQ4_0x8 {
    static constexpr int kElems = 32;
    using Input = ActQ8;
    __device__ static float dot(const DeviceWeight& w, std::int64_t row, std::int64_t u, const ActQ8& x) {
        const uint4 q = loadVec(w.data + row * w.rowBytes + 16 * u);
        const int4 lo = loadQ(x.q + 32 * u), hi = loadQ(x.q + 32 * u + 16);
        int sum = 0;
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            const std::uint32_t v = word(q, k);
            sum = __dp4a(static_cast<int>(v & 0x0F0F0F0Fu), iword(lo, k), sum);
            sum = __dp4a(static_cast<int>((v >> 4) & 0x0F0F0F0Fu), iword(hi, k), sum);
        }
        return halfBits(w.scales[row * (w.cols / 32) + u]) * (x.d[u] * static_cast<float>(sum) - 8.0f * x.s[u]);
    }
};

struct UnitQ8_0x8 {
    static constexpr int kElems = 32;
    using Input = ActQ8;
    __device__ static float dot(const DeviceWeight& w, std::int64_t row, std::int64_t u, const ActQ8& x) {
        const std::uint8_t* p = w.data + row * w.rowBytes + 32 * u;
        const uint4 q0 = loadVec(p), q1 = loadVec(p + 16);
        const int4 a = loadQ(x.q + 32 * u), b = loadQ(x.q + 32 * u + 16);
        int sum = 0;
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            sum = __dp4a(static_cast<int>(word(q0, k)), iword(a, k), sum);
            sum = __dp4a(static_cast<int>(word(q1, k)), iword(b, k), sum);
        }
        return halfBits(w.scales[row * (w.cols / 32) + u]) * x.d[u] * static_cast<float>(sum);
    }
};

// Q4_K / Q5_K: a unit is 16 bytes of one 32-byte nibble group g of a super-block (h: which
// half): 16 elements of sub-block 2g (low nibbles), lying in activation block 2g at bytes 16h..,
// and 16 of sub-block 2g + 1 (high nibbles), in activation block 2g + 1.
template <bool kFifthBit>
struct UnitQ45_Kx8 {
    static constexpr int kElems = 32;
    using Input = ActQ8;
    __device__ static float dot(const DeviceWeight& w, std::int64_t row, std::int64_t u, const ActQ8& x) {
        constexpr int kBlockBytes = kFifthBit ? 176 : 144, kQs = kFifthBit ? 48 : 16;
        const std::int64_t b = u / 8;
        const int t = static_cast<int>(u % 8), g = t / 2, h = t % 2;
        const std::uint8_t* blk = w.data + row * w.rowBytes + kBlockBytes * b;
        const uint4 q = loadVec(blk + kQs + 32 * g + 16 * h);
        uint4 qh{};
        if constexpr (kFifthBit) qh = loadVec(blk + 16 + 16 * h);
        const std::int64_t ab = 8 * b + 2 * g;
        const int4 xl = loadQ(x.q + 32 * ab + 16 * h), xh = loadQ(x.q + 32 * (ab + 1) + 16 * h);
        int sl = 0, sh = 0, ql = 0, qhSum = 0;
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            const std::uint32_t v = word(q, k);
            std::uint32_t lo = v & 0x0F0F0F0Fu, hi = (v >> 4) & 0x0F0F0F0Fu;
            if constexpr (kFifthBit) {
                const std::uint32_t e = word(qh, k);
                lo |= ((e >> (2 * g)) & 0x01010101u) << 4;
                hi |= ((e >> (2 * g + 1)) & 0x01010101u) << 4;
            }
            sl = __dp4a(static_cast<int>(lo), iword(xl, k), sl);
            sh = __dp4a(static_cast<int>(hi), iword(xh, k), sh);
            ql = __dp4a(kOnes, iword(xl, k), ql);
            qhSum = __dp4a(kOnes, iword(xh, k), qhSum);
        }
        // (Loading the 16-byte header as one vector and picking its bytes in registers measured
        // slower here: 1.35 against 2.15 TB/s. Byte loads of it hit L1.)
        int sc1, m1, sc2, m2;
        kQuantScaleMin(2 * g, blk + 4, sc1, m1);
        kQuantScaleMin(2 * g + 1, blk + 4, sc2, m2);
        const float dl = x.d[ab], dh = x.d[ab + 1], dmin = halfAt(blk + 2);
        return halfAt(blk) * (static_cast<float>(sc1) * dl * static_cast<float>(sl) + static_cast<float>(sc2) * dh * static_cast<float>(sh)) -
               dmin * (static_cast<float>(m1) * dl * static_cast<float>(ql) + static_cast<float>(m2) * dh * static_cast<float>(qhSum));
    }
};

// Q6_K (repacked: 208-byte bodies of ql, qh and scales, d apart): a unit is 64 elements, 16 of
// each quarter j of half h of a super-block, lying in activation block 8b + 4h + j at bytes l0..
struct UnitQ6_Kx8 {
    static constexpr int kElems = 64;
    using Input = ActQ8;
    __device__ static float dot(const DeviceWeight& w, std::int64_t row, std::int64_t u, const ActQ8& x) {
        const std::int64_t b = u / 4;
        const int t = static_cast<int>(u % 4), h = t / 2, l0 = 16 * (t % 2);
        const std::uint8_t* body = w.data + row * w.rowBytes + 208 * b;
        const uint4 qa = loadVec(body + 64 * h + l0), qb = loadVec(body + 64 * h + 32 + l0), qh = loadVec(body + 128 + 32 * h + l0);
        const uint4 scales = loadVec(body + 192);  // 16 signed scale bytes, one load
        float total = 0.0f;
#pragma unroll
        for (int quarter = 0; quarter < 4; ++quarter) {
            const std::int64_t ab = 8 * b + 4 * h + quarter;
            const int4 xv = loadQ(x.q + 32 * ab + l0);
            int sum = 0, ones = 0;
#pragma unroll
            for (int k = 0; k < 4; ++k) {
                const std::uint32_t src = (quarter & 1) ? word(qb, k) : word(qa, k);
                const std::uint32_t vals = ((src >> (quarter < 2 ? 0 : 4)) & 0x0F0F0F0Fu) | (((word(qh, k) >> (2 * quarter)) & 0x03030303u) << 4);
                sum = __dp4a(static_cast<int>(vals), iword(xv, k), sum);
                ones = __dp4a(kOnes, iword(xv, k), ones);
            }
            const auto sc = static_cast<std::int8_t>(byteOf(scales, 8 * h + l0 / 16 + 2 * quarter));
            total += static_cast<float>(sc) * x.d[ab] * static_cast<float>(sum - 32 * ones);
        }
        return halfBits(w.scales[row * (w.cols / 256) + b]) * total;
    }
};

// One warp per block of 32 activations: scale by the largest magnitude, round to int8.
__global__ void quantizeActivationsKernel(const float* x, std::int64_t n, std::int8_t* q, float* d, float* s) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const float v = i < n ? x[i] : 0.0f;
    const float amax = warpMax(fabsf(v));
    const float scale = amax / 127.0f;
    const int qi = amax == 0.0f ? 0 : static_cast<int>(rintf(v / scale));
    const float sum = warpSum(static_cast<float>(qi));
    if (i < n) q[i] = static_cast<std::int8_t>(qi);
    if (threadIdx.x % 32 == 0 && i < n) {
        d[i / 32] = scale;
        s[i / 32] = scale * sum;
    }
}

// The rows of W that block `block` of a launch over W owns: `splits` warps per row, each
// summing every splits-th group of 32 units, then one warp adds the parts.
template <class Unit>
__device__ __forceinline__ void matvecRows(const DeviceWeight& w, const typename Unit::Input& x, float* __restrict__ y, int splits,
                                           unsigned block) {
    const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
    const int rowsPerBlock = (kThreads / 32) / splits;
    const int part = warp % splits;
    const std::int64_t row = static_cast<std::int64_t>(block) * rowsPerBlock + warp / splits;
    float sum = 0.0f;
    if (row < w.rows) {
        const std::int64_t units = w.cols / Unit::kElems;
        for (std::int64_t u = part * 32 + lane; u < units; u += 32 * splits) sum += Unit::dot(w, row, u, x);
    }
    sum = warpSum(sum);
    __shared__ float partial[kThreads / 32];
    if (lane == 0) partial[warp] = sum;
    __syncthreads();
    if (part == 0 && lane == 0 && row < w.rows) {
        float total = 0.0f;
        for (int i = 0; i < splits; ++i) total += partial[warp + i];
        y[row] = total;
    }
}

template <class Unit>
__global__ void __launch_bounds__(kThreads) matvecKernel(DeviceWeight w, typename Unit::Input x, float* __restrict__ y, int splits) {
    matvecRows<Unit>(w, x, y, splits, blockIdx.x);
}

// Up to three matrices that read the same activations (q, k, v; gate, up) in one launch: the
// blocks are dealt out to the matrices in turn.
template <class Unit>
__global__ void __launch_bounds__(kThreads) matvecManyKernel(MatvecBatch batch, typename Unit::Input x) {
    int m = 0;
    while (m + 1 < batch.count && blockIdx.x >= batch.firstBlock[m + 1]) ++m;
    matvecRows<Unit>(batch.weights[m], x, batch.outputs[m], batch.splits[m], blockIdx.x - batch.firstBlock[m]);
}

int multiprocessorCount() {
    static const int count = [] {
        int device = 0, n = 0;
        cudaGetDevice(&device);
        cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device);
        return n > 0 ? n : 1;
    }();
    return count;
}

// Enough warps for every multiprocessor to keep many loads in flight, but no idle lanes.
template <class Unit>
int splitsFor(const DeviceWeight& w) {
    const std::int64_t units = w.cols / Unit::kElems;
    int splits = 1;
    while (splits < 8 && units >= 64 * splits && w.rows * splits < 64LL * multiprocessorCount()) splits *= 2;
    return splits;
}

template <class Unit>
void launch(const DeviceWeight& w, typename Unit::Input x, float* y, cudaStream_t stream) {
    const int splits = splitsFor<Unit>(w);
    const std::int64_t rowsPerBlock = (kThreads / 32) / splits;
    matvecKernel<Unit><<<blocksFor(w.rows, static_cast<int>(rowsPerBlock)), kThreads, 0, stream>>>(w, x, y, splits);
}

template <class Unit>
void launchMany(MatvecBatch batch, typename Unit::Input x, cudaStream_t stream) {
    unsigned blocks = 0;
    for (int m = 0; m < batch.count; ++m) {
        batch.splits[m] = splitsFor<Unit>(batch.weights[m]);
        batch.firstBlock[m] = blocks;
        blocks += blocksFor(batch.weights[m].rows, (kThreads / 32) / batch.splits[m]);
    }
    matvecManyKernel<Unit><<<blocks, kThreads, 0, stream>>>(batch, x);
}

}  // namespace

bool takesQuantizedActivations(const DeviceWeight& w) {
    switch (w.dtype) {
        case DType::Q4_0:
        case DType::Q8_0:
        case DType::Q4_K:
        case DType::Q5_K:
        case DType::Q6_K: return w.rowBytes % 16 == 0 && reinterpret_cast<std::uintptr_t>(w.data) % 16 == 0;
        default: return false;
    }
}

void quantizeActivations(const float* x, std::int64_t n, std::int8_t* q, float* d, float* s, cudaStream_t stream) {
    if (n > 0) quantizeActivationsKernel<<<blocksFor(n, kThreads), kThreads, 0, stream>>>(x, n, q, d, s);
}

void matvecQuantized(const MatvecBatch& batch, const std::int8_t* q, const float* d, const float* s, cudaStream_t stream) {
    const ActQ8 x{q, d, s};
    if (batch.count == 1) {
        const DeviceWeight& w = batch.weights[0];
        float* y = batch.outputs[0];
        switch (w.dtype) {
            case DType::Q4_0: return launch<UnitQ4_0x8>(w, x, y, stream);
            case DType::Q8_0: return launch<UnitQ8_0x8>(w, x, y, stream);
            case DType::Q4_K: return launch<UnitQ45_Kx8<false>>(w, x, y, stream);
            case DType::Q5_K: return launch<UnitQ45_Kx8<true>>(w, x, y, stream);
            case DType::Q6_K: return launch<UnitQ6_Kx8>(w, x, y, stream);
            default: return;
        }
    }
    switch (batch.weights[0].dtype) {
        case DType::Q4_0: return launchMany<UnitQ4_0x8>(batch, x, stream);
        case DType::Q8_0: return launchMany<UnitQ8_0x8>(batch, x, stream);
        case DType::Q4_K: return launchMany<UnitQ45_Kx8<false>>(batch, x, stream);
        case DType::Q5_K: return launchMany<UnitQ45_Kx8<true>>(batch, x, stream);
        case DType::Q6_K: return launchMany<UnitQ6_Kx8>(batch, x, stream);
        default: return;
    }
}

void matvec(const DeviceWeight& w, const float* x, float* y, cudaStream_t stream) {
    const bool aligned = w.rowBytes % 16 == 0 && reinterpret_cast<std::uintptr_t>(w.data) % 16 == 0 &&
                         reinterpret_cast<std::uintptr_t>(x) % 16 == 0;
    if (aligned) {
        switch (w.dtype) {
            case DType::F32: if (w.cols % 4 == 0) return launch<UnitF32>(w, x, y, stream); break;
            case DType::F16: if (w.cols % 8 == 0) return launch<UnitF16>(w, x, y, stream); break;
            default: break;
        }
    }
    launch<UnitGeneric>(w, x, y, stream);
}

}  // namespace lumen::inference::cuda
