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
__device__ __forceinline__ float dot4(const float4& a, float b0, float b1, float b2, float b3) {
    return a.x * b0 + a.y * b1 + a.z * b2 + a.w * b3;
}
__device__ __forceinline__ float hsum(const float4& a) { return a.x + a.y + a.z + a.w; }
// Nibble i (0..7) of a word.
__device__ __forceinline__ float nib(std::uint32_t v, int i) { return static_cast<float>((v >> (4 * i)) & 0xF); }
__device__ __forceinline__ float sbyteAt(std::uint32_t v, int i) { return static_cast<float>(static_cast<std::int8_t>((v >> (8 * i)) & 0xFF)); }

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

struct UnitQ4_0 {  // repacked: 16 bytes of nibbles per block, scale apart
    using Input = const float*;
    static constexpr int kElems = 32;
    __device__ static float dot(const DeviceWeight& w, std::int64_t row, std::int64_t u, const float* x) {
        const uint4 q = loadVec(w.data + row * w.rowBytes + 16 * u);
        const float d = halfBits(w.scales[row * (w.cols / 32) + u]);
        const float* xs = x + 32 * u;
        float s = 0.0f, sx = 0.0f;
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            const std::uint32_t v = word(q, k);
            const float4 lo = load4(xs + 4 * k), hi = load4(xs + 16 + 4 * k);
            s += dot4(lo, nib(v, 0), nib(v, 2), nib(v, 4), nib(v, 6)) + dot4(hi, nib(v, 1), nib(v, 3), nib(v, 5), nib(v, 7));
            sx += hsum(lo) + hsum(hi);
        }
        return d * (s - 8.0f * sx);
    }
};

struct UnitQ8_0 {  // repacked: 32 signed bytes per block, scale apart
    using Input = const float*;
    static constexpr int kElems = 32;
    __device__ static float dot(const DeviceWeight& w, std::int64_t row, std::int64_t u, const float* x) {
        const std::uint8_t* p = w.data + row * w.rowBytes + 32 * u;
        const uint4 q0 = loadVec(p), q1 = loadVec(p + 16);
        const float d = halfBits(w.scales[row * (w.cols / 32) + u]);
        const float* xs = x + 32 * u;
        float s = 0.0f;
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            const std::uint32_t a = word(q0, k), b = word(q1, k);
            s += dot4(load4(xs + 4 * k), sbyteAt(a, 0), sbyteAt(a, 1), sbyteAt(a, 2), sbyteAt(a, 3));
            s += dot4(load4(xs + 16 + 4 * k), sbyteAt(b, 0), sbyteAt(b, 1), sbyteAt(b, 2), sbyteAt(b, 3));
        }
        return d * s;
    }
};

// Q4_K and Q5_K: a unit is 16 bytes of one 32-byte nibble group: 16 elements of sub-block 2g
// (low nibbles) and 16 of sub-block 2g + 1 (high nibbles).
template <bool kFifthBit>
struct UnitQ45_K {
    static constexpr int kElems = 32;
    using Input = const float*;
    __device__ static float dot(const DeviceWeight& w, std::int64_t row, std::int64_t u, const float* x) {
        constexpr int kBlockBytes = kFifthBit ? 176 : 144, kQs = kFifthBit ? 48 : 16;
        const std::int64_t b = u / 8;
        const int t = static_cast<int>(u % 8), g = t / 2, h = t % 2;
        const std::uint8_t* blk = w.data + row * w.rowBytes + kBlockBytes * b;
        const uint4 q = loadVec(blk + kQs + 32 * g + 16 * h);
        uint4 qh{};
        if constexpr (kFifthBit) qh = loadVec(blk + 16 + 16 * h);
        const float* xs = x + 256 * b + 64 * g + 16 * h;
        float sLo = 0.0f, sHi = 0.0f, xLo = 0.0f, xHi = 0.0f;
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            const std::uint32_t v = word(q, k);
            const float4 lo = load4(xs + 4 * k), hi = load4(xs + 32 + 4 * k);
            float l0 = nib(v, 0), l1 = nib(v, 2), l2 = nib(v, 4), l3 = nib(v, 6);
            float h0 = nib(v, 1), h1 = nib(v, 3), h2 = nib(v, 5), h3 = nib(v, 7);
            if constexpr (kFifthBit) {
                const std::uint32_t e = word(qh, k);
                const auto bit = [&](int i, int shift) { return static_cast<float>(((e >> (8 * i + shift)) & 1) << 4); };
                l0 += bit(0, 2 * g), l1 += bit(1, 2 * g), l2 += bit(2, 2 * g), l3 += bit(3, 2 * g);
                h0 += bit(0, 2 * g + 1), h1 += bit(1, 2 * g + 1), h2 += bit(2, 2 * g + 1), h3 += bit(3, 2 * g + 1);
            }
            sLo += dot4(lo, l0, l1, l2, l3);
            sHi += dot4(hi, h0, h1, h2, h3);
            xLo += hsum(lo);
            xHi += hsum(hi);
        }
        int sc1, m1, sc2, m2;
        scaleMinK(2 * g, blk + 4, sc1, m1);
        scaleMinK(2 * g + 1, blk + 4, sc2, m2);
        const float d = halfAt(blk), dmin = halfAt(blk + 2);
        return d * (static_cast<float>(sc1) * sLo + static_cast<float>(sc2) * sHi) - dmin * (static_cast<float>(m1) * xLo + static_cast<float>(m2) * xHi);
    }
};

struct UnitQ6_K {  // repacked: 208-byte bodies (ql, qh, scales), d apart; a unit is 64 elements
    using Input = const float*;
    static constexpr int kElems = 64;
    __device__ static float dot(const DeviceWeight& w, std::int64_t row, std::int64_t u, const float* x) {
        const std::int64_t b = u / 4;
        const int t = static_cast<int>(u % 4), h = t / 2, l0 = 16 * (t % 2);
        const std::uint8_t* body = w.data + row * w.rowBytes + 208 * b;
        const uint4 qa = loadVec(body + 64 * h + l0), qb = loadVec(body + 64 * h + 32 + l0), qh = loadVec(body + 128 + 32 * h + l0);
        const float* xs = x + 256 * b + 128 * h + l0;
        float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            const std::uint32_t a = word(qa, k), c = word(qb, k), e = word(qh, k);
#pragma unroll
            for (int quarter = 0; quarter < 4; ++quarter) {
                const std::uint32_t src = (quarter & 1) ? c : a;
                const int shift = quarter < 2 ? 0 : 4;
                const float4 xv = load4(xs + 32 * quarter + 4 * k);
                float q[4];
#pragma unroll
                for (int i = 0; i < 4; ++i)
                    q[i] = static_cast<float>(static_cast<int>(((src >> (8 * i + shift)) & 0xF) | (((e >> (8 * i + 2 * quarter)) & 3) << 4)) - 32);
                s[quarter] += dot4(xv, q[0], q[1], q[2], q[3]);
            }
        }
        const auto* sc = reinterpret_cast<const std::int8_t*>(body + 192 + 8 * h + l0 / 16);
        const float d = halfBits(w.scales[row * (w.cols / 256) + b]);
        return d * (static_cast<float>(sc[0]) * s[0] + static_cast<float>(sc[2]) * s[1] + static_cast<float>(sc[4]) * s[2] +
                    static_cast<float>(sc[6]) * s[3]);
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

// Q4_K / Q5_K: the unit of UnitQ45_K. Its low nibbles lie in activation block 2g of the
// super-block, bytes 16h.., its high nibbles in block 2g + 1.
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
        int sc1, m1, sc2, m2;
        scaleMinK(2 * g, blk + 4, sc1, m1);
        scaleMinK(2 * g + 1, blk + 4, sc2, m2);
        const float dl = x.d[ab], dh = x.d[ab + 1];
        return halfAt(blk) * (static_cast<float>(sc1) * dl * static_cast<float>(sl) + static_cast<float>(sc2) * dh * static_cast<float>(sh)) -
               halfAt(blk + 2) * (static_cast<float>(m1) * dl * static_cast<float>(ql) + static_cast<float>(m2) * dh * static_cast<float>(qhSum));
    }
};

// Q6_K: the unit of UnitQ6_K; quarter j of it lies in activation block 8b + 4h + j, bytes l0..
struct UnitQ6_Kx8 {
    static constexpr int kElems = 64;
    using Input = ActQ8;
    __device__ static float dot(const DeviceWeight& w, std::int64_t row, std::int64_t u, const ActQ8& x) {
        const std::int64_t b = u / 4;
        const int t = static_cast<int>(u % 4), h = t / 2, l0 = 16 * (t % 2);
        const std::uint8_t* body = w.data + row * w.rowBytes + 208 * b;
        const uint4 qa = loadVec(body + 64 * h + l0), qb = loadVec(body + 64 * h + 32 + l0), qh = loadVec(body + 128 + 32 * h + l0);
        const auto* sc = reinterpret_cast<const std::int8_t*>(body + 192 + 8 * h + l0 / 16);
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
            total += static_cast<float>(sc[2 * quarter]) * x.d[ab] * static_cast<float>(sum - 32 * ones);
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

template <class Unit>
__global__ void __launch_bounds__(kThreads) matvecKernel(DeviceWeight w, typename Unit::Input x, float* __restrict__ y, int splits) {
    const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
    const int rowsPerBlock = (kThreads / 32) / splits;
    const int part = warp % splits;
    const std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * rowsPerBlock + warp / splits;
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

// Up to three matrices that read the same activations (q, k, v; gate, up) in one launch: the
// blocks are dealt out to the matrices in turn.
template <class Unit>
__global__ void __launch_bounds__(kThreads) matvecManyKernel(MatvecBatch batch, typename Unit::Input x) {
    int m = 0;
    while (m + 1 < batch.count && blockIdx.x >= batch.firstBlock[m + 1]) ++m;
    const DeviceWeight& w = batch.weights[m];
    const int splits = batch.splits[m];
    const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
    const int rowsPerBlock = (kThreads / 32) / splits;
    const int part = warp % splits;
    const std::int64_t row = static_cast<std::int64_t>(blockIdx.x - batch.firstBlock[m]) * rowsPerBlock + warp / splits;
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
        batch.outputs[m][row] = total;
    }
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
            case DType::Q4_0: return launch<UnitQ4_0>(w, x, y, stream);
            case DType::Q8_0: return launch<UnitQ8_0>(w, x, y, stream);
            case DType::Q4_K: return launch<UnitQ45_K<false>>(w, x, y, stream);
            case DType::Q5_K: return launch<UnitQ45_K<true>>(w, x, y, stream);
            case DType::Q6_K: return launch<UnitQ6_K>(w, x, y, stream);
            default: break;
        }
    }
    launch<UnitGeneric>(w, x, y, stream);
}

}  // namespace lumen::inference::cuda
