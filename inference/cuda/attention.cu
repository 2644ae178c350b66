// Causal attention over the KV cache, and storing new keys and values into it.
//
// One block of 4 warps per (query row, head, split of the keys). Each warp walks its keys with
// an online softmax (running max, running sum, running weighted values), lanes holding the
// head's dimensions d = lane + 32 j. Long contexts are split across blocks (flash-decoding) so
// a single query still fills the GPU; a second kernel merges the splits.

#include <algorithm>

#include "inference/cuda/device_common.cuh"

namespace lumen::inference::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kMinKeysPerSplit = 64;

template <class T>
__device__ __forceinline__ float kvValue(const T* p, std::int64_t i);
template <>
__device__ __forceinline__ float kvValue<float>(const float* p, std::int64_t i) { return p[i]; }
template <>
__device__ __forceinline__ float kvValue<__half>(const __half* p, std::int64_t i) { return __half2float(p[i]); }

struct Shape {
    std::int64_t pos0, nHeads, group, headDim, kvDim, keysPerSplit;
    int splits;
    float scale;
};

template <int J, class T>
__global__ void __launch_bounds__(kWarps * 32) attentionKernel(const float* q, const T* keys, const T* values, Shape s, float* out, float* partials) {
    const std::int64_t head = blockIdx.x, row = blockIdx.y;
    const int split = static_cast<int>(blockIdx.z);
    const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
    const std::int64_t keys_ = s.pos0 + row + 1;  // keys this query sees
    const std::int64_t begin = split * s.keysPerSplit, end = min(keys_, begin + s.keysPerSplit);
    const float* qh = q + (row * s.nHeads + head) * s.headDim;
    const std::int64_t kvOffset = (head / s.group) * s.headDim;

    float qv[J], acc[J];
#pragma unroll
    for (int j = 0; j < J; ++j) {
        const std::int64_t d = lane + 32 * j;
        qv[j] = d < s.headDim ? qh[d] * s.scale : 0.0f;
        acc[j] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    for (std::int64_t t = begin + warp; t < end; t += kWarps) {
        const T* k = keys + t * s.kvDim + kvOffset;
        float dot = 0.0f;
#pragma unroll
        for (int j = 0; j < J; ++j) {
            const std::int64_t d = lane + 32 * j;
            if (d < s.headDim) dot += qv[j] * kvValue(k, d);
        }
        dot = warpSum(dot);
        const float mNew = fmaxf(m, dot);
        const float correction = __expf(m - mNew), p = __expf(dot - mNew);
        l = l * correction + p;
        const T* v = values + t * s.kvDim + kvOffset;
#pragma unroll
        for (int j = 0; j < J; ++j) {
            const std::int64_t d = lane + 32 * j;
            acc[j] = acc[j] * correction + (d < s.headDim ? p * kvValue(v, d) : 0.0f);
        }
        m = mNew;
    }
    // Merge the warps' running states.
    __shared__ float sm[kWarps], sl[kWarps];
    __shared__ float sacc[kWarps][32 * J];
    if (lane == 0) {
        sm[warp] = m;
        sl[warp] = l;
    }
#pragma unroll
    for (int j = 0; j < J; ++j) sacc[warp][lane + 32 * j] = acc[j];
    __syncthreads();
    if (warp != 0) return;
    float mAll = -INFINITY;
    for (int w = 0; w < kWarps; ++w) mAll = fmaxf(mAll, sm[w]);
    float lAll = 0.0f, o[J];
#pragma unroll
    for (int j = 0; j < J; ++j) o[j] = 0.0f;
    for (int w = 0; w < kWarps; ++w) {
        if (sl[w] == 0.0f) continue;
        const float f = __expf(sm[w] - mAll);
        lAll += sl[w] * f;
#pragma unroll
        for (int j = 0; j < J; ++j) o[j] += sacc[w][lane + 32 * j] * f;
    }
    if (s.splits == 1) {
        float* oh = out + (row * s.nHeads + head) * s.headDim;
#pragma unroll
        for (int j = 0; j < J; ++j) {
            const std::int64_t d = lane + 32 * j;
            if (d < s.headDim) oh[d] = o[j] / lAll;
        }
        return;
    }
    // A partial: max, sum, then the unnormalised values.
    float* p = partials + ((row * s.nHeads + head) * s.splits + split) * (s.headDim + 2);
    if (lane == 0) {
        p[0] = mAll;
        p[1] = lAll;
    }
#pragma unroll
    for (int j = 0; j < J; ++j) {
        const std::int64_t d = lane + 32 * j;
        if (d < s.headDim) p[2 + d] = o[j];
    }
}

__global__ void mergeSplitsKernel(const float* partials, Shape s, float* out) {
    const std::int64_t head = blockIdx.x, row = blockIdx.y;
    const float* p = partials + (row * s.nHeads + head) * s.splits * (s.headDim + 2);
    float mAll = -INFINITY;
    for (int i = 0; i < s.splits; ++i)
        if (p[i * (s.headDim + 2) + 1] > 0.0f) mAll = fmaxf(mAll, p[i * (s.headDim + 2)]);
    float lAll = 0.0f;
    for (int i = 0; i < s.splits; ++i) {
        const float* pi = p + i * (s.headDim + 2);
        if (pi[1] > 0.0f) lAll += pi[1] * __expf(pi[0] - mAll);
    }
    float* oh = out + (row * s.nHeads + head) * s.headDim;
    for (std::int64_t d = threadIdx.x; d < s.headDim; d += blockDim.x) {
        float o = 0.0f;
        for (int i = 0; i < s.splits; ++i) {
            const float* pi = p + i * (s.headDim + 2);
            if (pi[1] > 0.0f) o += pi[2 + d] * __expf(pi[0] - mAll);
        }
        oh[d] = o / lAll;
    }
}

template <class T>
__global__ void storeKvKernel(T* keys, T* values, const float* k, const float* v, std::int64_t n) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n) return;
    if constexpr (sizeof(T) == 2) {
        keys[i] = __float2half(k[i]);
        values[i] = __float2half(v[i]);
    } else {
        keys[i] = k[i];
        values[i] = v[i];
    }
}

// Splits per query so that rows * heads * splits blocks fill the GPU twice over.
int splitsFor(std::int64_t pos0, std::int64_t rows, const AttentionSpec& spec, int multiprocessors) {
    const std::int64_t keys = pos0 + rows;
    const std::int64_t wanted = (2LL * multiprocessors + rows * spec.nHeads - 1) / (rows * spec.nHeads);
    const std::int64_t most = (keys + kMinKeysPerSplit - 1) / kMinKeysPerSplit;
    return static_cast<int>(std::clamp<std::int64_t>(std::min(wanted, most), 1, 256));
}

template <int J, class T>
void launchAttention(const float* q, const KvLayer& layer, const Shape& s, std::int64_t rows, float* out, float* partials,
                     cudaStream_t stream) {
    const dim3 grid(static_cast<unsigned>(s.nHeads), static_cast<unsigned>(rows), static_cast<unsigned>(s.splits));
    attentionKernel<J, T><<<grid, kWarps * 32, 0, stream>>>(q, static_cast<const T*>(layer.keys), static_cast<const T*>(layer.values), s, out,
                                                            partials);
    if (s.splits > 1) mergeSplitsKernel<<<dim3(static_cast<unsigned>(s.nHeads), static_cast<unsigned>(rows)), 128, 0, stream>>>(partials, s, out);
}

template <class T>
void dispatchHeadDim(const float* q, const KvLayer& layer, const Shape& s, std::int64_t rows, float* out, float* partials,
                     cudaStream_t stream) {
    if (s.headDim <= 32) launchAttention<1, T>(q, layer, s, rows, out, partials, stream);
    else if (s.headDim <= 64) launchAttention<2, T>(q, layer, s, rows, out, partials, stream);
    else if (s.headDim <= 128) launchAttention<4, T>(q, layer, s, rows, out, partials, stream);
    else launchAttention<8, T>(q, layer, s, rows, out, partials, stream);
}

}  // namespace

std::int64_t attentionScratchFloats(std::int64_t pos0, std::int64_t rows, const AttentionSpec& spec, int multiprocessors) {
    const int splits = splitsFor(pos0, rows, spec, multiprocessors);
    return splits > 1 ? rows * spec.nHeads * splits * (spec.headDim + 2) : 0;
}

void attention(const float* q, const KvLayer& layer, std::int64_t pos0, std::int64_t rows, const AttentionSpec& spec, float* out,
               float* partials, int multiprocessors, cudaStream_t stream) {
    if (rows <= 0) return;
    Shape s{};
    s.pos0 = pos0;
    s.nHeads = spec.nHeads;
    s.group = spec.nHeads / spec.nKvHeads;
    s.headDim = spec.headDim;
    s.kvDim = spec.nKvHeads * spec.headDim;
    s.splits = splitsFor(pos0, rows, spec, multiprocessors);
    s.keysPerSplit = (pos0 + rows + s.splits - 1) / s.splits;
    s.scale = 1.0f / sqrtf(static_cast<float>(spec.headDim));
    if (layer.dtype == DType::F16) dispatchHeadDim<__half>(q, layer, s, rows, out, partials, stream);
    else dispatchHeadDim<float>(q, layer, s, rows, out, partials, stream);
}

void storeKv(const KvLayer& layer, std::int64_t pos0, std::int64_t rows, std::int64_t kvDim, const float* k, const float* v,
             cudaStream_t stream) {
    const std::int64_t n = rows * kvDim;
    if (n <= 0) return;
    if (layer.dtype == DType::F16)
        storeKvKernel<<<blocksFor(n, 256), 256, 0, stream>>>(static_cast<__half*>(layer.keys) + pos0 * kvDim,
                                                             static_cast<__half*>(layer.values) + pos0 * kvDim, k, v, n);
    else
        storeKvKernel<<<blocksFor(n, 256), 256, 0, stream>>>(static_cast<float*>(layer.keys) + pos0 * kvDim,
                                                             static_cast<float*>(layer.values) + pos0 * kvDim, k, v, n);
}

}  // namespace lumen::inference::cuda
