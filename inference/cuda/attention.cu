// Causal attention over the KV cache, and storing new keys and values into it.
//
// One block of 128 threads per (query row, head, split of at most 128 keys). Each thread
// scores one key against the query (held in shared memory); the block takes the softmax of
// its scores; then each thread sums the values of one head dimension over the split's keys,
// reading them coalesced across threads. Splitting the keys (flash-decoding) lets a single
// query fill the GPU; a second kernel merges the splits' partial results.

#include <algorithm>
#include <stdexcept>

#include "inference/cuda/device_common.cuh"

namespace lumen::inference::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kKeysPerSplit = kThreads;
constexpr int kMaxHeadDim = 256;

// Element i of a cache's keys or values, as a float.
struct KvF32 {
    const float* p;
    __device__ __forceinline__ float operator()(std::int64_t i) const { return p[i]; }
};
struct KvF16 {
    const __half* p;
    __device__ __forceinline__ float operator()(std::int64_t i) const { return __half2float(p[i]); }
};
struct KvQ8 {
    const std::int8_t* p;
    const float* scales;
    __device__ __forceinline__ float operator()(std::int64_t i) const { return static_cast<float>(p[i]) * scales[i / 32]; }
};

struct Shape {
    Position position;
    std::int64_t nHeads, group, headDim, kvDim;
    int splits;
    float scale;
    std::int64_t window;  // 0: every earlier position
    float softcap;        // 0: none
    const float* sinks;   // per head, or nullptr (AttentionSpec::sinks)
};

__device__ __forceinline__ std::int64_t firstPosition(const Position& p) { return p.device ? *p.device : p.value; }

// Reduces over the block's 4 warps; every thread gets the result.
template <bool kMax>
__device__ __forceinline__ float blockReduce(float v, float* scratch) {
    v = kMax ? warpMax(v) : warpSum(v);
    const int warp = static_cast<int>(threadIdx.x) / 32;
    __syncthreads();  // scratch may still be read from a previous reduction
    if (threadIdx.x % 32 == 0) scratch[warp] = v;
    __syncthreads();
    float r = scratch[0];
    for (int w = 1; w < kThreads / 32; ++w) r = kMax ? fmaxf(r, scratch[w]) : r + scratch[w];
    return r;
}

template <class Kv>
__global__ void __launch_bounds__(kThreads) attentionKernel(const float* q, Kv keys, Kv values, Shape s, float* out, float* partials) {
    const std::int64_t head = blockIdx.x, row = blockIdx.y;
    const int split = static_cast<int>(blockIdx.z), tid = static_cast<int>(threadIdx.x);
    const std::int64_t seen = firstPosition(s.position) + row + 1;  // keys this query sees
    const std::int64_t first = s.window > 0 && seen > s.window ? seen - s.window : 0;  // a sliding window's first key
    const std::int64_t splitStart = static_cast<std::int64_t>(split) * kKeysPerSplit;
    const std::int64_t begin = max(splitStart, first), end = min(seen, splitStart + kKeysPerSplit);
    float* partial = partials + ((row * s.nHeads + head) * s.splits + split) * (s.headDim + 2);
    if (begin >= end) {  // past this query's position: an empty partial
        if (tid == 0) {
            partial[0] = -INFINITY;
            partial[1] = 0.0f;
        }
        for (std::int64_t d = tid; d < s.headDim; d += kThreads) partial[2 + d] = 0.0f;
        return;
    }
    __shared__ float qs[kMaxHeadDim];
    __shared__ float weights[kKeysPerSplit];
    __shared__ float scratch[kThreads / 32];
    const float* qh = q + (row * s.nHeads + head) * s.headDim;
    for (std::int64_t d = tid; d < s.headDim; d += kThreads) qs[d] = qh[d] * s.scale;
    __syncthreads();
    const std::int64_t kvOffset = (head / s.group) * s.headDim;
    const std::int64_t t = begin + tid;
    float score = -INFINITY;
    if (t < end) {
        const std::int64_t k = t * s.kvDim + kvOffset;
        float dot = 0.0f;
        for (std::int64_t d = 0; d < s.headDim; ++d) dot += qs[d] * keys(k + d);
        score = s.softcap > 0.0f ? s.softcap * tanhf(dot / s.softcap) : dot;
    }
    const float m = blockReduce<true>(score, scratch);
    const float e = t < end ? __expf(score - m) : 0.0f;
    weights[tid] = e;
    const float l = blockReduce<false>(e, scratch);  // (its barriers also publish `weights`)
    const int n = static_cast<int>(end - begin);
    for (std::int64_t d = tid; d < s.headDim; d += kThreads) {
        const std::int64_t v = begin * s.kvDim + kvOffset + d;
        // Four independent sums keep several loads in flight.
        float o0 = 0.0f, o1 = 0.0f, o2 = 0.0f, o3 = 0.0f;
        int j = 0;
        for (; j + 3 < n; j += 4) {
            o0 += weights[j] * values(v + j * s.kvDim);
            o1 += weights[j + 1] * values(v + (j + 1) * s.kvDim);
            o2 += weights[j + 2] * values(v + (j + 2) * s.kvDim);
            o3 += weights[j + 3] * values(v + (j + 3) * s.kvDim);
        }
        for (; j < n; ++j) o0 += weights[j] * values(v + j * s.kvDim);
        const float o = (o0 + o1) + (o2 + o3);
        if (s.splits == 1) {
            // A sink joins the softmax with no value: o and l rescaled to the larger maximum.
            float scaleBy = 1.0f, total = l;
            if (s.sinks) {
                const float sink = s.sinks[head], top = fmaxf(m, sink);
                scaleBy = __expf(m - top);
                total = l * scaleBy + __expf(sink - top);
            }
            out[(row * s.nHeads + head) * s.headDim + d] = o * scaleBy / total;
        } else {
            partial[2 + d] = o;
        }
    }
    if (s.splits > 1 && tid == 0) {
        partial[0] = m;
        partial[1] = l;
    }
}

__global__ void mergeSplitsKernel(const float* partials, Shape s, float* out) {
    const std::int64_t head = blockIdx.x, row = blockIdx.y;
    const float* p = partials + (row * s.nHeads + head) * s.splits * (s.headDim + 2);
    const float sink = s.sinks ? s.sinks[head] : -INFINITY;
    float mAll = sink;
    for (int i = 0; i < s.splits; ++i)
        if (p[i * (s.headDim + 2) + 1] > 0.0f) mAll = fmaxf(mAll, p[i * (s.headDim + 2)]);
    float lAll = s.sinks ? __expf(sink - mAll) : 0.0f;
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
__global__ void storeKvKernel(T* keys, T* values, Position position, std::int64_t kvDim, const float* k, const float* v, std::int64_t n) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n) return;
    keys += firstPosition(position) * kvDim;
    values += firstPosition(position) * kvDim;
    if constexpr (sizeof(T) == 2) {
        keys[i] = __float2half(k[i]);
        values[i] = __float2half(v[i]);
    } else {
        keys[i] = k[i];
        values[i] = v[i];
    }
}

// One warp per 32 values of k and of v: Q8_0 as the CPU stores it (scale = max |x| / 127,
// values rounded half away from zero).
__global__ void storeKvQ8Kernel(std::int8_t* keys, std::int8_t* values, float* keyScales, float* valueScales, Position position, std::int64_t kvDim,
                                const float* k, const float* v, std::int64_t blocks) {
    const std::int64_t warp = (static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
    const int lane = static_cast<int>(threadIdx.x % 32);
    if (warp >= 2 * blocks) return;  // (whole warps leave together)
    const bool value = warp >= blocks;
    const std::int64_t b = value ? warp - blocks : warp, at = firstPosition(position) * kvDim + 32 * b;
    const float x = (value ? v : k)[32 * b + lane];
    const float d = warpMax(fabsf(x)) / 127.0f;
    const float id = d > 0.0f ? 1.0f / d : 0.0f;
    (value ? values : keys)[at + lane] = static_cast<std::int8_t>(roundf(x * id));
    if (lane == 0) (value ? valueScales : keyScales)[at / 32] = d;
}

__global__ void q8ToHalfKernel(const std::int8_t* q, const float* scales, __half* out, std::int64_t n) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) out[i] = __float2half(static_cast<float>(q[i]) * scales[i / 32]);
}

__device__ __forceinline__ float capped(float score, float softcap) { return softcap > 0.0f ? softcap * tanhf(score / softcap) : score; }

__global__ void causalSoftmaxKernel(const float* scores, std::int64_t rows, std::int64_t keys, std::int64_t firstPosition, std::int64_t window,
                                    float softcap, const float* sinks, void* weights, bool half) {
    const std::int64_t r = blockIdx.x;  // (head, row) pairs, row-major
    const std::int64_t seen = min(keys, firstPosition + r % rows + 1);  // (all of them without a mask)
    const std::int64_t first = window > 0 && seen > window ? seen - window : 0;
    const float* s = scores + r * keys;
    __shared__ float scratch[kThreads / 32];
    const float sink = sinks ? sinks[r / rows] : -INFINITY;  // (a score with no value)
    float m = sink;
    for (std::int64_t j = first + threadIdx.x; j < seen; j += kThreads) m = fmaxf(m, capped(s[j], softcap));
    m = blockReduce<true>(m, scratch);
    float sum = 0.0f;
    for (std::int64_t j = first + threadIdx.x; j < seen; j += kThreads) sum += __expf(capped(s[j], softcap) - m);
    sum = blockReduce<false>(sum, scratch);
    if (sinks) sum += __expf(sink - m);
    const float inv = 1.0f / sum;
    for (std::int64_t j = threadIdx.x; j < keys; j += kThreads) {
        const float p = j >= first && j < seen ? __expf(capped(s[j], softcap) - m) * inv : 0.0f;
        if (half) static_cast<__half*>(weights)[r * keys + j] = __float2half(p);
        else static_cast<float*>(weights)[r * keys + j] = p;
    }
}

// Splits of the keys. A recorded step replays at every later position, so it covers the whole
// cache (splits past the current position finish at once).
int splitsFor(const Position& pos, std::int64_t rows) {
    const std::int64_t keys = pos.device ? pos.maxPositions : pos.value + rows;
    return static_cast<int>(std::max<std::int64_t>(1, (keys + kKeysPerSplit - 1) / kKeysPerSplit));
}

template <class Kv>
void launchAttention(const float* q, Kv keys, Kv values, const Shape& s, std::int64_t rows, float* out, float* partials, cudaStream_t stream) {
    const dim3 grid(static_cast<unsigned>(s.nHeads), static_cast<unsigned>(rows), static_cast<unsigned>(s.splits));
    attentionKernel<Kv><<<grid, kThreads, 0, stream>>>(q, keys, values, s, out, partials);
    if (s.splits > 1) mergeSplitsKernel<<<dim3(static_cast<unsigned>(s.nHeads), static_cast<unsigned>(rows)), 128, 0, stream>>>(partials, s, out);
}

}  // namespace

std::int64_t attentionScratchFloats(const Position& pos0, std::int64_t rows, const AttentionSpec& spec, int multiprocessors) {
    (void)multiprocessors;
    const int splits = splitsFor(pos0, rows);
    return splits > 1 ? rows * spec.nHeads * splits * (spec.headDim + 2) : 0;
}

void attention(const float* q, const KvLayer& layer, const Position& pos0, std::int64_t rows, const AttentionSpec& spec, const float* sinks,
               float* out, float* partials, int multiprocessors, cudaStream_t stream) {
    (void)multiprocessors;
    if (rows <= 0) return;
    if (spec.headDim > kMaxHeadDim) throw std::invalid_argument("the CUDA attention kernel takes heads of at most 256 dimensions");
    Shape s{};
    s.position = pos0;
    s.nHeads = spec.nHeads;
    s.group = spec.nHeads / spec.nKvHeads;
    s.headDim = spec.headDim;
    s.kvDim = spec.nKvHeads * spec.headDim;
    s.splits = splitsFor(pos0, rows);
    s.scale = spec.queryScale();
    s.window = spec.window;
    s.softcap = spec.softcap;
    s.sinks = sinks;
    switch (layer.dtype) {
        case DType::F16:
            launchAttention(q, KvF16{static_cast<const __half*>(layer.keys)}, KvF16{static_cast<const __half*>(layer.values)}, s, rows, out, partials,
                            stream);
            break;
        case DType::Q8_0:
            launchAttention(q, KvQ8{static_cast<const std::int8_t*>(layer.keys), layer.keyScales},
                            KvQ8{static_cast<const std::int8_t*>(layer.values), layer.valueScales}, s, rows, out, partials, stream);
            break;
        default:
            launchAttention(q, KvF32{static_cast<const float*>(layer.keys)}, KvF32{static_cast<const float*>(layer.values)}, s, rows, out, partials,
                            stream);
    }
}

void causalSoftmax(const float* scores, std::int64_t heads, std::int64_t rows, std::int64_t keys, std::int64_t firstPosition,
                   const AttentionSpec& spec, const float* sinks, void* weights, bool half, cudaStream_t stream) {
    if (heads * rows > 0)
        causalSoftmaxKernel<<<static_cast<unsigned>(heads * rows), kThreads, 0, stream>>>(scores, rows, keys, firstPosition, spec.window,
                                                                                             spec.softcap, sinks, weights, half);
}

void storeKv(const KvLayer& layer, const Position& pos0, std::int64_t rows, std::int64_t kvDim, const float* k, const float* v,
             cudaStream_t stream) {
    const std::int64_t n = rows * kvDim;
    if (n <= 0) return;
    if (layer.dtype == DType::Q8_0) {
        const std::int64_t blocks = n / 32;  // (heads of a multiple of 32 dimensions)
        storeKvQ8Kernel<<<blocksFor(2 * blocks * 32, 256), 256, 0, stream>>>(static_cast<std::int8_t*>(layer.keys), static_cast<std::int8_t*>(layer.values),
                                                                            layer.keyScales, layer.valueScales, pos0, kvDim, k, v, blocks);
    } else if (layer.dtype == DType::F16)
        storeKvKernel<<<blocksFor(n, 256), 256, 0, stream>>>(static_cast<__half*>(layer.keys), static_cast<__half*>(layer.values), pos0, kvDim, k, v, n);
    else
        storeKvKernel<<<blocksFor(n, 256), 256, 0, stream>>>(static_cast<float*>(layer.keys), static_cast<float*>(layer.values), pos0, kvDim, k, v, n);
}

void q8CacheToHalf(const KvLayer& layer, std::int64_t n, void* keys, void* values, cudaStream_t stream) {
    if (n <= 0) return;
    q8ToHalfKernel<<<blocksFor(n, 256), 256, 0, stream>>>(static_cast<const std::int8_t*>(layer.keys), layer.keyScales, static_cast<__half*>(keys), n);
    q8ToHalfKernel<<<blocksFor(n, 256), 256, 0, stream>>>(static_cast<const std::int8_t*>(layer.values), layer.valueScales, static_cast<__half*>(values),
                                                          n);
}

}  // namespace lumen::inference::cuda
