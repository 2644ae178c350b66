#pragma once
// The op interface every compute backend implements (the CPU and CUDA backends). Model forward
// passes are written once against it. Activation pointers (float*) address the backend's own
// memory, obtained from alloc(); only the CPU backend's memory may be read directly by the host.
// Ops that take `rows` work on that many consecutive rows at once (a prompt's tokens), so a
// backend can run them as one launch or split them across threads.

#include <cmath>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "inference/core/tensor.h"

namespace lumen::inference {

enum class RopeStyle {
    Interleaved,  // pairs (x[2i], x[2i+1]): GGUF llama/mistral (the converter permutes Q and K)
    NeoX,         // pairs (x[i], x[i + nRot/2]): qwen2 and Hugging Face layouts
};

// Keys and values of every position so far, for one layer, stored as F16 (the default), F32 or
// Q8_0 in the backend's memory: (nCtx, nKvHeads * headDim) each, row t (every KV head) at
// t * nKvHeads * headDim. A Q8_0 cache (headDim a multiple of 32) holds int8 values in that
// layout and, apart, one F32 scale per 32 of them: value i is values[i] * valueScales[i / 32],
// its 32 values quantized as Q8_0 does (scale = max |x| / 127, rounded to nearest). A cache a session allocates for `capacity` positions may be kept in the
// storing backend's own order instead: the CPU backend keeps each KV head's rows together, head
// h's row t at (h * capacity + t) * headDim, so one head's keys and values stream from memory in
// order (long contexts). Other backends ignore capacity; a layer is stored and read by one backend.
struct KvLayer {
    DType dtype = DType::F16;
    void* keys = nullptr;
    void* values = nullptr;
    std::int64_t capacity = 0;  // positions of a cache in the backend's order; 0: rows as above
    std::int64_t headDim = 0;   // with capacity
    float* keyScales = nullptr;    // Q8_0
    float* valueScales = nullptr;  // Q8_0
};

// Bytes a cache of this type takes per key or value element (Q8_0: a byte and 1/32 of a scale).
double kvBytesPerValue(DType dtype);

// A model's output came out as NaN or infinity: its weights or settings are broken.
class BrokenModelError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};
// Throws BrokenModelError when any value is NaN or infinite (a model's output: logits,
// embeddings). `what` names the output ("the logits").
void requireFinite(std::span<const float> values, const std::string& what);

// Rotary position embedding of rows of (nHeads * headDim) values: pair i of the first nRot
// dimensions of each head turns by pos * freqScale * freqBase^(-2i/nRot), divided by
// freqFactors[i] when given (Llama 3 RoPE scaling stores these as rope_freqs.weight, Phi-3's
// LongRoPE as rope_factors_short/long.weight, nRot/2 F32 values). freqScale < 1 is linear
// position scaling (Gemma 3's global layers); attnFactor scales the cosine and sine (LongRoPE's
// attention factor), so the rotated pairs come out that much longer.
struct RopeSpec {
    std::int64_t nHeads = 0;
    std::int64_t headDim = 0;
    std::int64_t nRot = 0;
    float freqBase = 10000.0f;
    RopeStyle style = RopeStyle::Interleaved;
    const Tensor* freqFactors = nullptr;
    float freqScale = 1.0f;
    float attnFactor = 1.0f;
};

// GELU variants: the exact x * Phi(x) (erf), the tanh approximation, and CLIP's "quick_gelu"
// x * sigmoid(1.702 x).
enum class GeluKind { Erf, Tanh, Quick };

// Grouped-query attention: query head h reads KV head h / (nHeads / nKvHeads). Scores are
// q.k * scale (0: 1 / sqrt(headDim)), then softcap * tanh(score / softcap) when softcap > 0
// (Gemma 2). With window > 0 a query at position p sees only positions p - window + 1..p
// (sliding-window layers); 0 sees all of them. With sinks (gpt-oss: one F32 logit per query
// head), head h's softmax also counts a position of logit sinks[h] that has no value: the
// weights then sum to less than 1.
struct AttentionSpec {
    std::int64_t nHeads = 0;
    std::int64_t nKvHeads = 0;
    std::int64_t headDim = 0;
    float scale = 0.0f;
    std::int64_t window = 0;
    float softcap = 0.0f;
    const Tensor* sinks = nullptr;  // nHeads F32 values (a weight: prepareWeights), or nullptr

    float queryScale() const { return scale > 0.0f ? scale : 1.0f / std::sqrt(static_cast<float>(headDim)); }
    // The first cache position a query at `pos` sees.
    std::int64_t firstVisible(std::int64_t pos) const { return window > 0 && pos >= window ? pos - window + 1 : 0; }
};

// gpt-oss's clamped SwiGLU of n values: g = min(gate, limit), u = clamp(up, -limit, limit),
// gate = g * sigmoid(alpha * g) * (u + 1).
struct ClampedSwiglu {
    float alpha = 1.702f;
    float limit = 7.0f;
};

// A mixture-of-experts feed-forward network (Mixtral, Qwen3-MoE, gpt-oss): a router scores every
// expert for each row (logits = router x + routerBias); the row goes through its `used` best
// experts, each a SwiGLU FFN down(act(gate x + gateBias) * (up x + upBias)) + downBias, and
// their outputs are summed with the routing weights. Weights are the softmax of the router
// logits over all experts, kept for the chosen ones (the largest; ties to the lower index),
// divided by their sum when `normalize` (then the same as a softmax over the chosen logits, as
// gpt-oss weights them), times `scale`. act is silu, or gpt-oss's clamped variant (the up
// factor then comes in as u + 1: see ClampedSwiglu).
struct MoeSpec {
    const Tensor* router = nullptr;  // nExperts rows of dim (ffn_gate_inp)
    std::span<const Tensor> gate;    // per expert: ffn rows of dim
    std::span<const Tensor> up;      // per expert: ffn rows of dim
    std::span<const Tensor> down;    // per expert: dim rows of ffn
    std::int64_t used = 0;           // experts per row, 1..nExperts
    bool normalize = true;
    float scale = 1.0f;
    // gpt-oss: biases (empty spans and nullptr when the model has none) and the clamped SwiGLU.
    const Tensor* routerBias = nullptr;  // nExperts values
    std::span<const Tensor> gateBias;    // per expert: ffn values
    std::span<const Tensor> upBias;      // per expert: ffn values
    std::span<const Tensor> downBias;    // per expert: dim values
    const ClampedSwiglu* clamped = nullptr;  // nullptr: plain silu
    // A shared expert every row goes through besides its chosen ones (Qwen2-MoE, Qwen3-Next):
    // its SwiGLU output, weighted by sigmoid(sharedGateInp x), is added (absent: nullptr).
    const Tensor* sharedGateInp = nullptr;  // one row of dim
    const Tensor* sharedGate = nullptr;     // sharedFfn rows of dim
    const Tensor* sharedUp = nullptr;
    const Tensor* sharedDown = nullptr;     // dim rows of sharedFfn
};

// Gated DeltaNet's recurrence (Qwen3-Next, Qwen3.5): a linear attention whose state is a
// kDim x vDim matrix S per value head. Row t of the input holds, in order, nKHeads query heads and
// nKHeads key heads of kDim values and nVHeads value heads of vDim (the short convolution's
// output), and `alpha` and `beta` hold nVHeads raw values each. Per row and value head h, reading
// query and key head kHead(h):
//   q = l2norm(q) / sqrt(kDim), k = l2norm(k)        (l2norm(x) = x / sqrt(sum x^2 + eps))
//   g = a[h] * softplus(alpha + dtBias[h])           (a = -exp(A_log) < 0: the log of the decay)
//   b = sigmoid(beta)
//   S = exp(g) S;  S += k (b (v - S^T k))^T;  out = S^T q
// out is rows x (nVHeads * vDim). Prompts may run in chunks (the WY form), equal to the
// token-by-token recurrence within float rounding.
struct DeltaNetSpec {
    std::int64_t nKHeads = 0;
    std::int64_t nVHeads = 0;  // a multiple of nKHeads
    std::int64_t kDim = 0;
    std::int64_t vDim = 0;
    const Tensor* a = nullptr;       // nVHeads F32 values (ssm_a)
    const Tensor* dtBias = nullptr;  // nVHeads values (ssm_dt.bias)
    float eps = 1e-6f;

    std::int64_t inputWidth() const { return 2 * nKHeads * kDim + nVHeads * vDim; }
    std::int64_t stateFloats() const { return nVHeads * kDim * vDim; }
    // Value heads take their query and key heads in turn: head h reads key head h % nKHeads (the
    // order llama.cpp's converter writes the value heads in).
    std::int64_t kHead(std::int64_t h) const { return h % nKHeads; }
};

// Backend memory a MoE op works in, for n rows: router n x nExperts floats, rows n x dim, gate and
// up max(n, used) x ffn (ffn: the wider of the experts and the shared expert), out max(n, used) x dim.
struct MoeBuffers {
    float* router;
    float* rows;
    float* gate;
    float* up;
    float* out;
};

// The routing of n rows: for each row, `used` (expert, weight) pairs, best first.
struct MoeRoute {
    std::int64_t expert;
    float weight;
};
// Routes rows of router logits (n x nExperts, host memory) as MoeSpec says, into n x used pairs.
void routeExperts(const float* logits, std::int64_t n, std::int64_t nExperts, const MoeSpec& spec, std::vector<MoeRoute>& routes);

class Backend {
public:
    virtual ~Backend() = default;
    virtual std::string_view name() const = 0;
    // Its memory is the host's (the CPU backend): a caller may read and move it directly.
    virtual bool hostMemory() const { return false; }

    // Backend memory for n floats (zeroed), freed with the returned handle.
    virtual std::shared_ptr<float[]> alloc(std::int64_t n) = 0;
    virtual std::shared_ptr<void> allocBytes(std::int64_t bytes) = 0;
    // Makes weight tensors usable by the ops below. The CPU reads them where they are mapped;
    // the CUDA backend copies each to the device once (later calls with the same tensor are free)
    // and throws std::runtime_error when device memory runs out.
    virtual void prepareWeights(std::span<const Tensor* const> weights) { (void)weights; }
    // Drops every copy prepareWeights made: call it before the model they came from goes away
    // if the backend lives on to serve another model.
    virtual void releaseWeights() {}
    // Recorded decode steps (CUDA graphs). A caller that runs the same sequence of ops, on the
    // same buffers, once per token brackets it with beginStep/endStep under a key naming that
    // sequence, with the step's position passed here: inside a step the position arguments of
    // rope, storeKv and attention must equal it, and the ops must not upload or allocate. A
    // backend that records may then answer replayStep with true, having run the recording at
    // the new position, and the caller skips the ops. Backends that do not record ignore this.
    virtual bool replayStep(std::uint64_t key, std::int64_t pos, std::int64_t maxPositions) {
        (void)key, (void)pos, (void)maxPositions;
        return false;
    }
    virtual void beginStep(std::uint64_t key, std::int64_t pos, std::int64_t maxPositions) { (void)key, (void)pos, (void)maxPositions; }
    // ok == false: an op of the step threw; the backend drops what it was recording.
    virtual void endStep(bool ok) { (void)ok; }
    // Drops the recordings whose keys' top 32 bits are `owner`.
    virtual void forgetSteps(std::uint32_t owner) { (void)owner; }

    // Copies n floats between host memory and backend memory.
    virtual void upload(const float* src, float* dst, std::int64_t n) = 0;
    virtual void download(const float* src, float* dst, std::int64_t n) = 0;

    // Y = X W^T for n activation rows: x is (n, w.rowLength()), y is (n, w.rows()). Each weight
    // row is read once for all n rows (prefill); n == 1 is a matrix-vector product (decode).
    virtual void matmul(const Tensor& w, const float* x, std::int64_t n, float* y) = 0;
    void matvec(const Tensor& w, const float* x, float* y) { matmul(w, x, 1, y); }
    // Several products of the same activations (q/k/v, gate/up): matmul(*out.w, x, n, out.y) for
    // each. A backend may share work between them (quantizing x once, one parallel pass).
    struct Product {
        const Tensor* w;
        float* y;
    };
    virtual void matmuls(std::span<const Product> products, const float* x, std::int64_t n) {
        for (const Product& p : products) matmul(*p.w, x, n, p.y);
    }
    // Each of `rows` rows of y (n elements) += bias (an F32, F16 or BF16 vector of n elements).
    virtual void addBias(float* y, const Tensor& bias, std::int64_t n, std::int64_t rows) = 0;
    // Each of `rows` rows of y (n elements) *= scale, element by element (DINOv2's layer scale).
    virtual void scaleRows(float* y, const Tensor& scale, std::int64_t n, std::int64_t rows) = 0;
    // Each row: y = x / rms(x) * weight, over n elements.
    virtual void rmsNorm(const float* x, const Tensor& weight, float eps, std::int64_t n, std::int64_t rows, float* y) = 0;
    // Rotates `rows` rows of x in place; row i is at position pos0 + i.
    virtual void rope(float* x, std::int64_t rows, std::int64_t pos0, const RopeSpec& spec) = 0;
    // Stores `rows` rows of k and v (kvDim each) at positions pos0.. of a layer's cache.
    virtual void storeKv(const KvLayer& layer, std::int64_t pos0, std::int64_t rows, std::int64_t kvDim, const float* k,
                         const float* v) = 0;
    // Causal attention: query row i (nHeads * headDim values) is at position pos0 + i and attends
    // to cache positions spec.firstVisible(pos0 + i)..pos0 + i. out has the same shape as q.
    virtual void attention(const float* q, const KvLayer& layer, std::int64_t pos0, std::int64_t rows, const AttentionSpec& spec,
                           float* out) = 0;
    // Each row: y = (x - mean) / sqrt(variance + eps) * weight + bias, over n elements (bias may
    // be absent: data == nullptr).
    virtual void layerNorm(const float* x, const Tensor& weight, const Tensor& bias, float eps, std::int64_t n, std::int64_t rows,
                           float* y) = 0;
    // x[i] = gelu(x[i])
    virtual void gelu(float* x, std::int64_t n, GeluKind kind) = 0;
    // x[i] *= y[i]
    virtual void mul(float* x, const float* y, std::int64_t n) = 0;
    // x[i] *= s
    virtual void scale(float* x, float s, std::int64_t n) = 0;
    // Each row of n elements: x = softmax(x).
    virtual void softmax(float* x, std::int64_t n, std::int64_t rows) = 0;
    // The patch embedding of a vision transformer: a (channels, height, width) image cut into
    // patch x patch squares (row-major: (height / patch) * (width / patch) of them), each flattened
    // as (channel, row, column) and multiplied by `weight` (dim rows of channels * patch * patch:
    // a Conv2d weight), plus bias (optional). out is (patches, dim).
    virtual void patchEmbed(const float* image, std::int64_t channels, std::int64_t height, std::int64_t width, std::int64_t patch,
                            const Tensor& weight, const Tensor& bias, float* out) = 0;
    // Attention without a cache or a mask (a vision transformer's): every one of `rows` query
    // rows attends to all `rows` rows of k and v (rows x nKvHeads * headDim each).
    virtual void selfAttention(const float* q, const float* k, const float* v, std::int64_t rows, const AttentionSpec& spec, float* out) = 0;
    // gate[i] = silu(gate[i]) * up[i]
    virtual void siluMul(float* gate, const float* up, std::int64_t n) = 0;
    // gpt-oss's gated activation (see ClampedSwiglu) of n values.
    virtual void clampedSwiglu(float* gate, const float* up, std::int64_t n, const ClampedSwiglu& spec) = 0;
    // x[i] += y[i]
    virtual void add(float* x, const float* y, std::int64_t n) = 0;
    // Row i of out = row tokens[i] of an embedding table, dequantized (tokens are host memory).
    virtual void embedRows(const Tensor& table, std::span<const std::int32_t> tokens, float* out) = 0;
    // A causal depthwise convolution along the rows, then silu (Gated DeltaNet's and Mamba's short
    // convolution): out[t][c] = silu(sum_j weight[c][j] x[t - K + 1 + j][c]) for `rows` rows of
    // `channels`, K = weight.rowLength() taps per channel (weight: channels rows). The rows before
    // the first come from `state` ((K - 1) x channels, oldest first), which then holds the last
    // K - 1 rows of x. out must not overlap x.
    virtual void shortConv(const float* x, std::int64_t rows, std::int64_t channels, const Tensor& weight, float* state, float* out) = 0;
    // Gated DeltaNet's recurrence over `rows` rows (see DeltaNetSpec): qkv is rows x
    // spec.inputWidth(), alpha and beta rows x nVHeads, state spec.stateFloats() (nVHeads states
    // of kDim x vDim, row-major), updated in place; out is rows x (nVHeads * vDim).
    virtual void deltaNet(const float* qkv, const float* alpha, const float* beta, std::int64_t rows, const DeltaNetSpec& spec, float* state,
                          float* out) = 0;
    // Copies `rows` rows of `cols` values from src (rows srcStride apart) to dst (dstStride apart).
    virtual void copyRows(const float* src, std::int64_t srcStride, float* dst, std::int64_t dstStride, std::int64_t cols, std::int64_t rows) = 0;
    // x[i] *= sigmoid(gate[i])
    virtual void sigmoidMul(float* x, const float* gate, std::int64_t n) = 0;
    // out (n x dim) = the mixture of experts of each of n rows of x (see MoeSpec). Decoding one
    // row reads only its experts' weights; for several rows each chosen expert's weights are read
    // once, for all the rows routed to it. The default runs on the ops above, routing on the host
    // (the router logits come back to host memory: not within a recorded step).
    virtual void moe(const float* x, std::int64_t n, const MoeSpec& spec, const MoeBuffers& buffers, float* out);
};

class ThreadPool;

struct CpuOptions {
    int threads = 0;    // <= 0: the number of physical cores
    // A pool shared with other backends (threads is then its size); none: the backend makes its own.
    std::shared_ptr<ThreadPool> pool;
    bool simd = true;   // false: the scalar reference kernels, the spec the others are tested against
    // Ops with less work than this (weight elements times rows; attention: query x key x
    // head-dimension products) run on one thread. < 0: the tuned defaults; tests pass 0 so even
    // tiny ops take the parallel paths.
    std::int64_t minParallelWork = -1;
};

// The CPU kernel set this machine runs: "AVX-512", "AVX2+VNNI", "AVX2" or "scalar".
std::string_view cpuKernelSet();
std::unique_ptr<Backend> makeCpuBackend(const CpuOptions& options = {});

struct CudaOptions {
    int device = 0;
};

// The CUDA backend on one GPU. Throws std::runtime_error saying why when it cannot be used (a
// build without CUDA, no driver or device, cuBLAS missing); callers fall back to the CPU.
std::unique_ptr<Backend> makeCudaBackend(const CudaOptions& options = {});

}  // namespace lumen::inference
