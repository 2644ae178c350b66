// The CPU backend. Every op here is the scalar reference: the spec that SIMD and CUDA versions
// are checked against.

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <new>
#include <stdexcept>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include <sys/mman.h>

#include "inference/core/backend.h"
#include "inference/core/thread_pool.h"
#include "inference/cpu/delta_net.h"
#include "inference/cpu/kernels.h"
#include "inference/formats/half.h"
#include "inference/formats/quants.h"

namespace lumen::inference {
namespace {

float loadVector(const Tensor& t, std::int64_t i) {
    switch (t.dtype) {
        case DType::F32: {
            float v;
            std::memcpy(&v, t.data + 4 * i, 4);
            return v;
        }
        case DType::F16: {
            std::uint16_t h;
            std::memcpy(&h, t.data + 2 * i, 2);
            return halfToFloat(h);
        }
        case DType::BF16: {
            std::uint16_t h;
            std::memcpy(&h, t.data + 2 * i, 2);
            return bf16ToFloat(h);
        }
        default: throw std::invalid_argument(t.name + ": norm and bias vectors must be F32, F16 or BF16");
    }
}

// A norm, bias or scale vector's first n values as floats: F32 in place, other types converted
// once per op (not per row) into `scratch`.
const float* vectorValues(const Tensor& t, std::int64_t n, std::vector<float>& scratch) {
    if (t.dtype == DType::F32 && reinterpret_cast<std::uintptr_t>(t.data) % alignof(float) == 0) return reinterpret_cast<const float*>(t.data);
    scratch.resize(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) scratch[static_cast<std::size_t>(i)] = loadVector(t, i);
    return scratch.data();
}

// Element `index` of a layer's keys (or values), as a float.
float kvAt(const KvLayer& layer, bool value, std::int64_t index) {
    const void* base = value ? layer.values : layer.keys;
    switch (layer.dtype) {
        case DType::F16: return halfToFloat(static_cast<const std::uint16_t*>(base)[index]);
        case DType::Q8_0: return static_cast<float>(static_cast<const std::int8_t*>(base)[index]) * (value ? layer.valueScales : layer.keyScales)[index / 32];
        default: return static_cast<const float*>(base)[index];
    }
}

// Zeroed memory for the backend's buffers. A large block is mapped fresh from the OS, which
// writes none of its pages: a KV cache sized for a long context costs no time and no RAM until
// its positions are used (TinyLlama's, 2048 positions: 135 ms to zero here; malloc could hand
// back a freed block that needs zeroing). Small ones come from the heap.
constexpr std::size_t kMappedBytes = std::size_t{1} << 20;

std::shared_ptr<void> zeroed(std::int64_t bytes) {
    const auto n = static_cast<std::size_t>(std::max<std::int64_t>(bytes, 1));
    if (n >= kMappedBytes) {
        void* p = ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
        return std::shared_ptr<void>(p, [n](void* q) { ::munmap(q, n); });
    }
    void* p = std::calloc(n, 1);
    if (!p) throw std::bad_alloc();
    return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
}

// Ops below this many weight elements (times rows) run on one thread: waking the others costs
// more. A worker asleep between tokens takes tens of microseconds to wake: stories260K, whose
// only op above 1 << 15 was its 512 x 64 output matmul, decoded 12k tokens/s on 2 threads and
// 20k on one; 1 << 18 Q4_0 weights take a few microseconds on one core. Attention (in query x
// key x head-dimension products, each reading a key and a value, run while the workers are
// awake between matmuls) splits at an eighth of it, GELU (an erf per element) at half.
constexpr std::int64_t kParallelWork = 1 << 18;

class CpuBackend final : public Backend {
public:
    explicit CpuBackend(const CpuOptions& options)
        : pool_(options.simd && options.pool ? options.pool : std::make_shared<ThreadPool>(options.simd ? options.threads : 1)),
          parallelWork_(options.minParallelWork < 0 ? kParallelWork : options.minParallelWork),
          // the scalar set lacks the attention and elementwise kernels: the reference paths instead
          kernels_(options.simd && &cpu::bestKernels() != &cpu::scalarKernels() ? &cpu::bestKernels() : nullptr),
          name_(std::string("CPU (") + (kernels_ ? kernels_->name : "scalar reference") + ", " + std::to_string(pool_->size()) +
                (pool_->size() == 1 ? " thread)" : " threads)")) {}

    std::string_view name() const override { return name_; }
    bool hostMemory() const override { return true; }

    std::shared_ptr<float[]> alloc(std::int64_t n) override {
        auto block = zeroed(n * static_cast<std::int64_t>(sizeof(float)));
        return std::shared_ptr<float[]>(block, static_cast<float*>(block.get()));  // shares the block's ownership
    }
    std::shared_ptr<void> allocBytes(std::int64_t bytes) override { return zeroed(bytes); }

    void upload(const float* src, float* dst, std::int64_t n) override {
        std::memcpy(dst, src, static_cast<std::size_t>(n) * 4);
    }
    void download(const float* src, float* dst, std::int64_t n) override {
        std::memcpy(dst, src, static_cast<std::size_t>(n) * 4);
    }

    void matmul(const Tensor& w, const float* x, std::int64_t n, float* y) override { multiply(w, x, n, y); }

    void addBias(float* y, const Tensor& bias, std::int64_t n, std::int64_t rows) override {
        const float* b = vectorValues(bias, n, vectorScratch_[0]);
        for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t i = 0; i < n; ++i) y[r * n + i] += b[i];
    }

    void scaleRows(float* y, const Tensor& scale, std::int64_t n, std::int64_t rows) override {
        const float* s = vectorValues(scale, n, vectorScratch_[0]);
        for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t i = 0; i < n; ++i) y[r * n + i] *= s[i];
    }

    void rmsNorm(const float* x, const Tensor& weight, float eps, std::int64_t n, std::int64_t rows, float* y) override {
        const float* w = vectorValues(weight, n, vectorScratch_[0]);
        for (std::int64_t r = 0; r < rows; ++r) {
            const float* xr = x + r * n;
            float* yr = y + r * n;
            // Four running sums (in double) the compiler can keep in vector lanes.
            double sums[4] = {};
            std::int64_t i = 0;
            for (; i + 4 <= n; i += 4)
                for (int k = 0; k < 4; ++k) sums[k] += static_cast<double>(xr[i + k]) * xr[i + k];
            for (; i < n; ++i) sums[0] += static_cast<double>(xr[i]) * xr[i];
            const double sum = (sums[0] + sums[1]) + (sums[2] + sums[3]);
            const float scale = 1.0f / std::sqrt(static_cast<float>(sum / static_cast<double>(n)) + eps);
            for (i = 0; i < n; ++i) yr[i] = xr[i] * scale * w[i];
        }
    }

    void rope(float* x, std::int64_t rows, std::int64_t pos0, const RopeSpec& spec) override {
        const auto* factors = spec.freqFactors && spec.freqFactors->data ? reinterpret_cast<const float*>(spec.freqFactors->data) : nullptr;
        const std::int64_t half = spec.nRot / 2;
        for (std::int64_t r = 0; r < rows; ++r) {
            // The rotation of pair i depends on the position only: computed once for every head,
            // and kept for the next call at the same position (a decode step's every layer).
            // The key holds the frequency factors' values: a later model's could sit at the same address.
            const bool same = ropeKey_.pos == pos0 + r && ropeKey_.nRot == spec.nRot && ropeKey_.freqBase == spec.freqBase &&
                              ropeKey_.freqScale == spec.freqScale && ropeKey_.attnFactor == spec.attnFactor &&
                              (factors ? std::equal(ropeKey_.factors.begin(), ropeKey_.factors.end(), factors, factors + half)
                                       : ropeKey_.factors.empty());
            if (!same) {
                ropeTable_.resize(static_cast<std::size_t>(2 * half));
                const auto pos = static_cast<float>(pos0 + r) * spec.freqScale;
                for (std::int64_t i = 0; i < half; ++i) {
                    // theta_i = pos * base^(-2i / nRot)
                    float theta = pos * std::pow(spec.freqBase, -2.0f * static_cast<float>(i) / static_cast<float>(spec.nRot));
                    if (factors) theta /= factors[i];
                    ropeTable_[static_cast<std::size_t>(2 * i)] = std::cos(theta) * spec.attnFactor;
                    ropeTable_[static_cast<std::size_t>(2 * i + 1)] = std::sin(theta) * spec.attnFactor;
                }
                ropeKey_.pos = pos0 + r;
                ropeKey_.nRot = spec.nRot;
                ropeKey_.freqBase = spec.freqBase;
                ropeKey_.freqScale = spec.freqScale;
                ropeKey_.attnFactor = spec.attnFactor;
                if (factors) ropeKey_.factors.assign(factors, factors + half);
                else ropeKey_.factors.clear();
            }
            for (std::int64_t h = 0; h < spec.nHeads; ++h) {
                float* v = x + (r * spec.nHeads + h) * spec.headDim;
                for (std::int64_t i = 0; i < half; ++i) {
                    const float c = ropeTable_[static_cast<std::size_t>(2 * i)], s = ropeTable_[static_cast<std::size_t>(2 * i + 1)];
                    const std::int64_t a = spec.style == RopeStyle::Interleaved ? 2 * i : i;
                    const std::int64_t b = spec.style == RopeStyle::Interleaved ? 2 * i + 1 : i + half;
                    const float x0 = v[a], x1 = v[b];
                    v[a] = x0 * c - x1 * s;
                    v[b] = x0 * s + x1 * c;
                }
            }
        }
    }

    void storeKv(const KvLayer& layer, std::int64_t pos0, std::int64_t rows, std::int64_t kvDim, const float* k,
                 const float* v) override {
        // runs of `run` values: whole rows, or one head's part of a row in a head-major cache
        const std::int64_t run = layer.capacity > 0 ? layer.headDim : rows * kvDim;
        const auto store = [&](const float* from, void* cache, float* scales) {
            for (std::int64_t i = 0; i < rows * kvDim; i += run) {
                const std::int64_t r = i / kvDim, h = i % kvDim / run;
                const std::int64_t at = layer.capacity > 0 ? (h * layer.capacity + pos0 + r) * layer.headDim : pos0 * kvDim;
                if (layer.dtype == DType::Q8_0) {
                    // runs are whole 32-value blocks: the session asks for head sizes that are multiples of 32
                    quantizeKv(from + i, run, static_cast<std::int8_t*>(cache) + at, scales + at / 32);
                } else if (layer.dtype == DType::F16) {
                    auto* to = static_cast<std::uint16_t*>(cache) + at;
                    if (kernels_ && kernels_->toHalf) kernels_->toHalf(from + i, run, to);
                    else
                        for (std::int64_t j = 0; j < run; ++j) to[j] = floatToHalf(from[i + j]);
                } else {
                    std::memcpy(static_cast<float*>(cache) + at, from + i, static_cast<std::size_t>(run) * 4);
                }
            }
        };
        store(k, layer.keys, layer.keyScales);
        store(v, layer.values, layer.valueScales);
    }

    // n values (a multiple of 32) as Q8_0: the bytes and one scale per 32, rounded as Q8_0
    // weights and activations are.
    void quantizeKv(const float* x, std::int64_t n, std::int8_t* q, float* scales) {
        thread_local std::vector<cpu::BlockQ8> blocks;
        blocks.resize(static_cast<std::size_t>(n / 32));
        if (kernels_) kernels_->quantizeQ8(x, n, blocks.data());
        else cpu::quantizeActivations(x, n, blocks.data());
        for (std::int64_t b = 0; b < n / 32; ++b) {
            std::memcpy(q + 32 * b, blocks[static_cast<std::size_t>(b)].q, 32);
            scales[b] = blocks[static_cast<std::size_t>(b)].d;
        }
    }

    void attention(const float* q, const KvLayer& layer, std::int64_t pos0, std::int64_t rows, const AttentionSpec& spec,
                   float* out) override {
        attend(q, layer, rows, spec, out, false, [pos0](std::int64_t r) { return pos0 + r + 1; },
               [pos0, &spec](std::int64_t r) { return spec.firstVisible(pos0 + r); });
    }

    void layerNorm(const float* x, const Tensor& weight, const Tensor& bias, float eps, std::int64_t n, std::int64_t rows, float* y) override {
        const float* w = vectorValues(weight, n, vectorScratch_[0]);
        if (!bias.data) vectorScratch_[1].assign(static_cast<std::size_t>(n), 0.0f);
        const float* b = bias.data ? vectorValues(bias, n, vectorScratch_[1]) : vectorScratch_[1].data();
        if (kernels_ && rows > 1 && rows * n >= parallelWork_) {
            pool_->parallelFor(rows, [&](std::int64_t begin, std::int64_t end) { layerNormRows(x + begin * n, w, b, eps, n, end - begin, y + begin * n); });
            return;
        }
        layerNormRows(x, w, b, eps, n, rows, y);
    }

    static void layerNormRows(const float* x, const float* weight, const float* bias, float eps, std::int64_t n, std::int64_t rows, float* y) {
        for (std::int64_t r = 0; r < rows; ++r) {
            const float* xr = x + r * n;
            float* yr = y + r * n;
            double sum = 0.0, squares = 0.0;
            for (std::int64_t i = 0; i < n; ++i) sum += xr[i];
            const double mean = sum / static_cast<double>(n);
            for (std::int64_t i = 0; i < n; ++i) squares += (xr[i] - mean) * (xr[i] - mean);
            const auto scale = static_cast<float>(1.0 / std::sqrt(squares / static_cast<double>(n) + eps));
            const auto m = static_cast<float>(mean);
            for (std::int64_t i = 0; i < n; ++i) yr[i] = (xr[i] - m) * scale * weight[i] + bias[i];
        }
    }

    void gelu(float* x, std::int64_t n, GeluKind kind) override {
        if (n >= parallelWork_ / 2 && kernels_) {
            // A ViT's MLP activations: millions of erf/exp calls, split across the threads.
            const std::int64_t chunk = 4096;
            pool_->parallelFor((n + chunk - 1) / chunk, [&](std::int64_t b, std::int64_t e) {
                geluRange(x + b * chunk, std::min(n, e * chunk) - b * chunk, kind);
            });
            return;
        }
        geluRange(x, n, kind);
    }

    static void geluRange(float* x, std::int64_t n, GeluKind kind) {
        for (std::int64_t i = 0; i < n; ++i) {
            const float v = x[i];
            switch (kind) {
                case GeluKind::Erf: x[i] = 0.5f * v * (1.0f + std::erf(v * 0.70710678f)); break;
                case GeluKind::Tanh: x[i] = 0.5f * v * (1.0f + std::tanh(0.79788456f * (v + 0.044715f * v * v * v))); break;
                case GeluKind::Quick: x[i] = v / (1.0f + std::exp(-1.702f * v)); break;
            }
        }
    }

    void mul(float* x, const float* y, std::int64_t n) override {
        for (std::int64_t i = 0; i < n; ++i) x[i] *= y[i];
    }

    void scale(float* x, float s, std::int64_t n) override {
        for (std::int64_t i = 0; i < n; ++i) x[i] *= s;
    }

    void softmax(float* x, std::int64_t n, std::int64_t rows) override {
        for (std::int64_t r = 0; r < rows; ++r) {
            float* xr = x + r * n;
            const float m = *std::max_element(xr, xr + n);
            float sum = 0.0f;
            for (std::int64_t i = 0; i < n; ++i) sum += (xr[i] = std::exp(xr[i] - m));
            for (std::int64_t i = 0; i < n; ++i) xr[i] /= sum;
        }
    }

    void patchEmbed(const float* image, std::int64_t channels, std::int64_t height, std::int64_t width, std::int64_t patch, const Tensor& weight,
                    const Tensor& bias, float* out) override {
        const std::int64_t across = width / patch, patches = (height / patch) * across, length = channels * patch * patch;
        if (weight.rowLength() != length) throw std::invalid_argument(weight.name + ": a patch has " + std::to_string(length) + " values");
        // Each patch flattened as one row, then one product for all of them.
        std::vector<float> rows(static_cast<std::size_t>(patches * length));
        for (std::int64_t p = 0; p < patches; ++p) {
            const std::int64_t top = (p / across) * patch, left = (p % across) * patch;
            float* row = rows.data() + p * length;
            for (std::int64_t c = 0; c < channels; ++c)
                for (std::int64_t i = 0; i < patch; ++i)
                    for (std::int64_t j = 0; j < patch; ++j) *row++ = image[(c * height + top + i) * width + left + j];
        }
        multiply(weight, rows.data(), patches, out);
        if (bias.data) addBias(out, bias, weight.rows(), patches);
    }

    void selfAttention(const float* q, const float* k, const float* v, std::int64_t rows, const AttentionSpec& spec, float* out) override {
        // The cache's path with an F32 "cache" of these rows, every row seeing all of them.
        attend(q, KvLayer{DType::F32, const_cast<float*>(k), const_cast<float*>(v)}, rows, spec, out, true, [rows](std::int64_t) { return rows; },
               [](std::int64_t) { return std::int64_t{0}; });
    }

    void siluMul(float* gate, const float* up, std::int64_t n) override {
        if (kernels_) return kernels_->siluMul(gate, up, n);
        for (std::int64_t i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
    }

    void clampedSwiglu(float* gate, const float* up, std::int64_t n, const ClampedSwiglu& spec) override {
        // (an expert's few thousand values per token: one exp each is not worth a kernel set)
        for (std::int64_t i = 0; i < n; ++i) {
            const float g = std::min(gate[i], spec.limit), u = std::clamp(up[i], -spec.limit, spec.limit);
            gate[i] = g / (1.0f + std::exp(-spec.alpha * g)) * (u + 1.0f);
        }
    }

    void add(float* x, const float* y, std::int64_t n) override {
        for (std::int64_t i = 0; i < n; ++i) x[i] += y[i];
    }

    void embedRows(const Tensor& table, std::span<const std::int32_t> tokens, float* out) override {
        for (std::size_t i = 0; i < tokens.size(); ++i)
            dequantize(table.dtype, table.row(tokens[i]), out + static_cast<std::int64_t>(i) * table.rowLength(), table.rowLength());
    }

    void shortConv(const float* x, std::int64_t rows, std::int64_t channels, const Tensor& weight, float* state, float* out) override {
        const std::int64_t K = weight.rowLength(), held = K - 1;
        if (K < 1 || weight.rows() != channels)
            throw std::invalid_argument(weight.name + ": a short convolution has one row of taps per channel (" + std::to_string(channels) + ")");
        // The taps by position (K x channels), so each row's sum runs along the channels.
        const float* w = vectorValues(weight, K * channels, vectorScratch_[0]);
        std::vector<float>& taps = vectorScratch_[1];
        taps.resize(static_cast<std::size_t>(K * channels));
        for (std::int64_t c = 0; c < channels; ++c)
            for (std::int64_t j = 0; j < K; ++j) taps[static_cast<std::size_t>(j * channels + c)] = w[c * K + j];
        for (std::int64_t t = 0; t < rows; ++t) {
            float* o = out + t * channels;
            std::fill(o, o + channels, 0.0f);
            for (std::int64_t j = 0; j < K; ++j) {
                // input row t - held + j: from the state before the first row
                const std::int64_t r = t - held + j;
                const float* in = r < 0 ? state + (held + r) * channels : x + r * channels;
                const float* tap = taps.data() + j * channels;
                for (std::int64_t c = 0; c < channels; ++c) o[c] += tap[c] * in[c];
            }
            if (!kernels_)
                for (std::int64_t c = 0; c < channels; ++c) o[c] = o[c] / (1.0f + std::exp(-o[c]));
        }
        if (kernels_) {  // silu on 8 lanes: siluMul with ones
            ones_.resize(static_cast<std::size_t>(channels), 1.0f);
            for (std::int64_t t = 0; t < rows; ++t) kernels_->siluMul(out + t * channels, ones_.data(), channels);
        }
        // The state keeps the last K - 1 input rows.
        if (held == 0) return;
        if (rows >= held) {
            std::memcpy(state, x + (rows - held) * channels, static_cast<std::size_t>(held * channels) * 4);
        } else {
            std::memmove(state, state + rows * channels, static_cast<std::size_t>((held - rows) * channels) * 4);
            std::memcpy(state + (held - rows) * channels, x, static_cast<std::size_t>(rows * channels) * 4);
        }
    }

    void deltaNet(const float* qkv, const float* alpha, const float* beta, std::int64_t rows, const DeltaNetSpec& spec, float* state,
                  float* out) override {
        const std::int64_t nK = spec.nKHeads, nV = spec.nVHeads, kd = spec.kDim, vd = spec.vDim, width = spec.inputWidth();
        if (nK <= 0 || nV <= 0 || nV % nK != 0 || kd <= 0 || vd <= 0 || !spec.a || !spec.dtBias || spec.a->elements() < nV ||
            spec.dtBias->elements() < nV)
            throw std::invalid_argument("a DeltaNet layer needs value heads in a multiple of its key heads and a decay rate and bias per value head");
        const float* a = vectorValues(*spec.a, nV, vectorScratch_[0]);
        const float* dt = vectorValues(*spec.dtBias, nV, vectorScratch_[1]);
        // Normalised queries and keys (each key head once for the value heads that share it),
        // and each row's decay and write strength per value head.
        std::vector<float>& qk = deltaQk_;
        std::vector<float>& gb = deltaGb_;
        qk.resize(static_cast<std::size_t>(rows * 2 * nK * kd));
        gb.resize(static_cast<std::size_t>(rows * 2 * nV));
        const float qScale = 1.0f / std::sqrt(static_cast<float>(kd));
        for (std::int64_t t = 0; t < rows; ++t) {
            for (std::int64_t i = 0; i < 2 * nK; ++i) {  // nK query heads, then nK key heads
                const float* in = qkv + t * width + i * kd;
                float* o = qk.data() + (t * 2 * nK + i) * kd;
                float sum = 0.0f;
                for (std::int64_t d = 0; d < kd; ++d) sum += in[d] * in[d];
                const float s = (i < nK ? qScale : 1.0f) / std::sqrt(sum + spec.eps);
                for (std::int64_t d = 0; d < kd; ++d) o[d] = in[d] * s;
            }
            for (std::int64_t h = 0; h < nV; ++h) {
                const float x = alpha[t * nV + h] + dt[h];
                const float softplus = x > 20.0f ? x : std::log1p(std::exp(x));
                gb[static_cast<std::size_t>(t * 2 * nV + h)] = a[h] * softplus;
                gb[static_cast<std::size_t>(t * 2 * nV + nV + h)] = 1.0f / (1.0f + std::exp(-beta[t * nV + h]));
            }
        }
        const bool fast = kernels_ && kernels_->deltaNetChunked && kd % 16 == 0 && vd % 16 == 0;
        const auto body = [&](std::int64_t begin, std::int64_t end) {
            for (std::int64_t h = begin; h < end; ++h) {
                const std::int64_t kh = spec.kHead(h);
                const cpu::DeltaHead head{qk.data() + kh * kd,  qk.data() + (nK + kh) * kd, 2 * nK * kd,      qkv + 2 * nK * kd + h * vd, width,
                                          gb.data() + h,       gb.data() + nV + h,         2 * nV,           out + h * vd,               nV * vd,
                                          state + h * kd * vd, rows,                       kd,               vd};
                if (!fast) deltaHeadReference(head);
                else if (rows >= kDeltaChunkRows) kernels_->deltaNetChunked(head);
                else kernels_->deltaNetRecurrent(head);
            }
        };
        if (fast && rows * nV * kd * vd >= parallelWork_) pool_->parallelFor(nV, body);
        else body(0, nV);
    }

    void copyRows(const float* src, std::int64_t srcStride, float* dst, std::int64_t dstStride, std::int64_t cols, std::int64_t rows) override {
        for (std::int64_t r = 0; r < rows; ++r) std::memmove(dst + r * dstStride, src + r * srcStride, static_cast<std::size_t>(cols) * 4);
    }

    void sigmoidMul(float* x, const float* gate, std::int64_t n) override {
        for (std::int64_t i = 0; i < n; ++i) x[i] /= 1.0f + std::exp(-gate[i]);
    }

private:
    // Prompts of this many rows or more run Gated DeltaNet in chunks.
    static constexpr std::int64_t kDeltaChunkRows = 16;

    // Gated DeltaNet's recurrence for one value head, token by token in plain arithmetic: the
    // spec the chunked and SIMD kernels are checked against.
    static void deltaHeadReference(const cpu::DeltaHead& h) {
        std::vector<float> kv(static_cast<std::size_t>(h.vDim));
        for (std::int64_t t = 0; t < h.rows; ++t) {
            const float* q = h.q + t * h.qkStride;
            const float* k = h.k + t * h.qkStride;
            const float* v = h.v + t * h.vStride;
            float* o = h.out + t * h.outStride;
            const float decay = std::exp(h.g[t * h.gStride]), b = h.beta[t * h.gStride];
            for (std::int64_t j = 0; j < h.vDim; ++j) {
                float sum = 0.0f;
                for (std::int64_t i = 0; i < h.kDim; ++i) sum += (h.state[i * h.vDim + j] *= decay) * k[i];
                kv[static_cast<std::size_t>(j)] = (v[j] - sum) * b;
            }
            for (std::int64_t j = 0; j < h.vDim; ++j) {
                float sum = 0.0f;
                for (std::int64_t i = 0; i < h.kDim; ++i) sum += (h.state[i * h.vDim + j] += k[i] * kv[static_cast<std::size_t>(j)]) * q[i];
                o[j] = sum;
            }
        }
    }

    // Query row r attends to cache positions first(r)..visible(r) - 1 (the same for every row
    // when `uniform`).
    // note: with SIMD kernels one task takes several queries that share a KV head, so each block
    // of keys and values is read once for all of them: up to 4 heads of one row, or, when every
    // row sees the same positions (a ViT), up to 16 rows of one head.
    template <class Visible, class First>
    void attend(const float* q, const KvLayer& layer, std::int64_t rows, const AttentionSpec& spec, float* out, bool uniform, Visible visible,
                First first) {
        const std::int64_t headDim = spec.headDim, kvDim = spec.nKvHeads * headDim, group = spec.nHeads / spec.nKvHeads;
        // one KV head's rows: `stride` values apart, from kvHead * headStride (see KvLayer)
        const bool headMajor = layer.capacity > 0;
        const std::int64_t stride = headMajor ? headDim : kvDim, headStride = headMajor ? layer.capacity * headDim : headDim;
        const bool f16 = layer.dtype == DType::F16, q8 = layer.dtype == DType::Q8_0;
        const bool fast = kernels_ && headDim % 8 == 0 && (f16 || q8 || layer.dtype == DType::F32);
        const std::int64_t perTask = fast && !uniform ? std::min<std::int64_t>(group, 4) : 1;  // heads per task
        const std::int64_t rowsPerTask = fast && uniform ? cpu::kMaxAttentionQueries : 1;
        const std::int64_t tasksPerKvHead = (group + perTask - 1) / perTask, tasksPerRow = spec.nKvHeads * tasksPerKvHead;
        const float scale = spec.queryScale(), cap = spec.softcap;
        const float* sinks = nullptr;
        if (spec.sinks && spec.sinks->data) {
            if (spec.sinks->dtype != DType::F32 || spec.sinks->elements() < spec.nHeads || uniform)
                throw std::invalid_argument(spec.sinks->name + ": attention sinks are one F32 value per head, for causal attention");
            sinks = reinterpret_cast<const float*>(spec.sinks->data);
        }
        const auto body = [&](std::int64_t begin, std::int64_t end) {
            thread_local std::vector<float> scores;  // kept: attention runs every layer of every token
            scores.resize(static_cast<std::size_t>(std::max(perTask, rowsPerTask) * visible(rows - 1)));
            for (std::int64_t task = begin; task < end; ++task) {
                const std::int64_t r = task / tasksPerRow * rowsPerTask, kvHead = task % tasksPerRow / tasksPerKvHead;
                const std::int64_t h0 = kvHead * group + task % tasksPerKvHead * perTask, heads = std::min(perTask, (kvHead + 1) * group - h0);
                // a sliding window starts later: the keys and values from its first position on
                const std::int64_t start = first(r), count = visible(r) - start, offset = kvHead * headStride + start * stride;
                const float* qh = q + (r * spec.nHeads + h0) * headDim;
                float* oh = out + (r * spec.nHeads + h0) * headDim;
                // the task's queries: `heads` heads of row r, or rows r.. of head h0
                const auto queries = static_cast<int>(rowsPerTask > 1 ? std::min(rowsPerTask, rows - r) : heads);
                const std::int64_t qStride = rowsPerTask > 1 ? spec.nHeads * headDim : headDim;
                if (fast && q8) {
                    kernels_->attendQ8(qh, queries, qStride, static_cast<const std::int8_t*>(layer.keys) + offset,
                                       static_cast<const std::int8_t*>(layer.values) + offset, layer.keyScales + offset / 32,
                                       layer.valueScales + offset / 32, stride, count, headDim, scale, cap, sinks ? sinks + h0 : nullptr, scores.data(), oh);
                    continue;
                }
                if (fast && f16) {
                    kernels_->attendF16(qh, queries, qStride, static_cast<const std::uint16_t*>(layer.keys) + offset,
                                        static_cast<const std::uint16_t*>(layer.values) + offset, stride, count, headDim, scale, cap, sinks ? sinks + h0 : nullptr, scores.data(), oh);
                    continue;
                }
                if (fast) {
                    kernels_->attendF32(qh, queries, qStride, static_cast<const float*>(layer.keys) + offset,
                                        static_cast<const float*>(layer.values) + offset, stride, count, headDim, scale, cap, sinks ? sinks + h0 : nullptr, scores.data(), oh);
                    continue;
                }
                // The reference: scores against every key so far, a softmax, the weighted values.
                float maxScore = -INFINITY;
                for (std::int64_t t = 0; t < count; ++t) {
                    float s = 0.0f;
                    for (std::int64_t d = 0; d < headDim; ++d) s += qh[d] * kvAt(layer, false, t * stride + offset + d);
                    s *= scale;
                    if (cap > 0.0f) s = cap * std::tanh(s / cap);
                    scores[static_cast<std::size_t>(t)] = s;
                    maxScore = std::max(maxScore, s);
                }
                // (a sink counts as one more score, with no value)
                const float sink = sinks ? sinks[h0] : -INFINITY;
                maxScore = std::max(maxScore, sink);
                float sum = sinks ? std::exp(sink - maxScore) : 0.0f;
                for (std::int64_t t = 0; t < count; ++t) sum += (scores[static_cast<std::size_t>(t)] = std::exp(scores[static_cast<std::size_t>(t)] - maxScore));
                std::fill(oh, oh + headDim, 0.0f);
                for (std::int64_t t = 0; t < count; ++t) {
                    const float weight = scores[static_cast<std::size_t>(t)] / sum;
                    for (std::int64_t d = 0; d < headDim; ++d) oh[d] += weight * kvAt(layer, true, t * stride + offset + d);
                }
            }
        };
        const std::int64_t tasks = (rows + rowsPerTask - 1) / rowsPerTask * tasksPerRow;
        if (rows * spec.nHeads * visible(rows - 1) * headDim < parallelWork_ / 8) body(0, tasks);
        else pool_->parallelFor(tasks, body);
    }

    using Q8Kernel = float (*)(const std::uint8_t*, const cpu::BlockQ8*, std::int64_t);
    using Q8KKernel = float (*)(const std::uint8_t*, const cpu::BlockQ8K*, std::int64_t);

    Q8Kernel q8Kernel(DType t) const {
        switch (t) {
            case DType::Q8_0: return kernels_->dotQ8_0;
            case DType::Q4_0: return kernels_->dotQ4_0;
            case DType::Q4_1: return kernels_->dotQ4_1;
            case DType::Q5_0: return kernels_->dotQ5_0;
            case DType::Q5_1: return kernels_->dotQ5_1;
            case DType::IQ4_NL: return kernels_->dotIQ4_NL;
            case DType::IQ4_XS: return kernels_->dotIQ4_XS;
            case DType::MXFP4: return kernels_->dotMXFP4;
            default: return nullptr;
        }
    }
    Q8KKernel q8kKernel(DType t) const {
        switch (t) {
            case DType::Q2_K: return kernels_->dotQ2_K;
            case DType::Q3_K: return kernels_->dotQ3_K;
            case DType::Q4_K: return kernels_->dotQ4_K;
            case DType::Q5_K: return kernels_->dotQ5_K;
            case DType::Q6_K: return kernels_->dotQ6_K;
            default: return nullptr;
        }
    }

    // Y = X W^T for n rows of X. Quantized weights meet activations quantized once per call.
    void multiply(const Tensor& w, const float* x, std::int64_t n, float* y) {
        const Product one{&w, y};
        if (!kernels_ || !multiplyShared(std::span(&one, 1), x, n)) multiplyByRowDots(w, x, n, y);
    }

    void matmuls(std::span<const Product> products, const float* x, std::int64_t n) override {
        // Weights of one type and width share one quantization of x and one parallel pass.
        std::vector<bool>& done = productDone_;
        std::vector<Product>& group = productGroup_;
        done.assign(products.size(), false);
        for (std::size_t i = 0; i < products.size(); ++i) {
            if (done[i]) continue;
            group.clear();
            for (std::size_t j = i; j < products.size(); ++j) {
                if (done[j] || products[j].w->dtype != products[i].w->dtype || products[j].w->rowLength() != products[i].w->rowLength()) continue;
                group.push_back(products[j]);
                done[j] = true;
            }
            if (group.size() == 1 || !kernels_ || !multiplyShared(group, x, n))
                for (const Product& p : group) multiply(*p.w, x, n, p.y);
        }
    }

    // The products with a row kernel (all of one type and width) as one pass over their rows, in
    // order; false when their type has none.
    bool multiplyShared(std::span<const Product> products, const float* x, std::int64_t n) {
        const Tensor& w = *products[0].w;
        const std::int64_t cols = w.rowLength(), rowBytes = w.rowBytes();
        std::int64_t rows = 0;
        for (const Product& p : products) rows += p.w->rows();
        // Calls fn(product, first, end) for the rows [r0, r1) of the products one after another.
        const auto forParts = [products](std::int64_t r0, std::int64_t r1, auto fn) {
            std::int64_t start = 0;
            for (const Product& p : products) {
                const std::int64_t count = p.w->rows(), lo = std::max(r0, start), hi = std::min(r1, start + count);
                if (lo < hi) fn(p, lo - start, hi - start);
                start += count;
            }
        };
        // Packed kernels: the activations quantized and repacked once, then one pass.
        const auto packedPass = [&]<class Block>(const cpu::PackedKernel<Block>& packed, std::vector<Block>& acts) {
            const std::int64_t blocks = cols / (std::is_same_v<Block, cpu::BlockQ8> ? 32 : 256), stride = packed.bytes(blocks);
            quantizeRows(x, n, cols, acts);
            packed_.resize(static_cast<std::size_t>(n * stride / 64));
            auto* bytes = reinterpret_cast<std::uint8_t*>(packed_.data());
            for (std::int64_t i = 0; i < n; ++i) packed.pack(acts.data() + i * blocks, blocks, bytes + i * stride);
            multiplyRows(rows, n, stride, [&, bytes, blocks, stride](std::int64_t r0, std::int64_t r1, std::int64_t i, int count) {
                forParts(r0, r1, [&](const Product& p, std::int64_t first, std::int64_t end) {
                    const std::int64_t pr = p.w->rows();
                    packed.dotRows(p.w->data + first * rowBytes, rowBytes, end - first, bytes + i * stride, blocks, count, p.y + i * pr + first, pr);
                });
            });
            return true;
        };
        if (w.dtype == DType::Q8_0 && kernels_->packedQ8_0.dotRows) return packedPass(kernels_->packedQ8_0, activations_);
        if (w.dtype == DType::Q4_0 && kernels_->packedQ4_0.dotRows) return packedPass(kernels_->packedQ4_0, activations_);
        if (w.dtype == DType::Q4_K && kernels_->packedQ4_K.dotRows) return packedPass(kernels_->packedQ4_K, activationsK_);
        if (w.dtype == DType::IQ4_NL && kernels_->packedIQ4_NL.dotRows) return packedPass(kernels_->packedIQ4_NL, activations_);
        if (w.dtype == DType::MXFP4 && kernels_->packedMXFP4.dotRows) return packedPass(kernels_->packedMXFP4, activations_);
        // Row kernels: for a prompt, each weight block unpacked once for up to 4 tokens.
        const auto rowsKernel = [&](auto kernel, const auto* acts, std::int64_t blocksPerRow) {
            multiplyRows(rows, n, blocksPerRow * static_cast<std::int64_t>(sizeof(*acts)),
                         [&, kernel, acts, blocksPerRow](std::int64_t r0, std::int64_t r1, std::int64_t i, int count) {
                             forParts(r0, r1, [&](const Product& p, std::int64_t first, std::int64_t end) {
                                 const std::int64_t pr = p.w->rows();
                                 float out[cpu::kMaxDotRows];
                                 for (std::int64_t r = first; r < end; ++r) {
                                     kernel(p.w->data + r * rowBytes, acts + i * blocksPerRow, blocksPerRow, count, out);
                                     for (int k = 0; k < count; ++k) p.y[(i + k) * pr + r] = out[k];
                                 }
                             });
                         });
            return true;
        };
        if (w.dtype == DType::Q8_0 && kernels_->dotRowsQ8_0)
            return quantizeRows(x, n, cols, activations_), rowsKernel(kernels_->dotRowsQ8_0, activations_.data(), cols / 32);
        if (w.dtype == DType::Q4_0 && kernels_->dotRowsQ4_0)
            return quantizeRows(x, n, cols, activations_), rowsKernel(kernels_->dotRowsQ4_0, activations_.data(), cols / 32);
        const auto codebookRows = w.dtype == DType::IQ4_NL ? kernels_->dotRowsIQ4_NL : w.dtype == DType::IQ4_XS ? kernels_->dotRowsIQ4_XS
                                  : w.dtype == DType::MXFP4 ? kernels_->dotRowsMXFP4 : nullptr;
        if (codebookRows) return quantizeRows(x, n, cols, activations_), rowsKernel(codebookRows, activations_.data(), cols / 32);
        if (w.dtype == DType::Q4_K && kernels_->dotRowsQ4_K)
            return quantizeRows(x, n, cols, activationsK_), rowsKernel(kernels_->dotRowsQ4_K, activationsK_.data(), cols / 256);
        if (w.dtype == DType::Q6_K && kernels_->dotRowsQ6_K)
            return quantizeRows(x, n, cols, activationsK_), rowsKernel(kernels_->dotRowsQ6_K, activationsK_.data(), cols / 256);
        const auto tileKernel = w.dtype == DType::F32 ? kernels_->tileF32 : w.dtype == DType::F16 ? kernels_->tileF16 : w.dtype == DType::BF16 ? kernels_->tileBF16 : nullptr;
        if (n > 1 && tileKernel) {
            for (const Product& p : products) multiplyTiled(*p.w, x, n, p.y, tileKernel);
            return true;
        }
        // Float weights without a tile (one token, or a set with no tiles): row dots, every
        // product's rows in one pass.
        const auto rowDots = [&]<class Weight>(float (*dot)(const Weight*, const float*, std::int64_t)) {
            multiplyRows(rows, n, cols * 4, [&, dot](std::int64_t r0, std::int64_t r1, std::int64_t i0, int count) {
                forParts(r0, r1, [&](const Product& p, std::int64_t first, std::int64_t end) {
                    const std::int64_t pr = p.w->rows();
                    for (std::int64_t r = first; r < end; ++r)
                        for (std::int64_t i = i0; i < i0 + count; ++i)
                            p.y[i * pr + r] = dot(reinterpret_cast<const Weight*>(p.w->data + r * rowBytes), x + i * cols, cols);
                });
            });
            return true;
        };
        if (w.dtype == DType::F32) return rowDots(kernels_->dotF32);
        if (w.dtype == DType::F16) return rowDots(kernels_->dotF16);
        if (w.dtype == DType::BF16) return rowDots(kernels_->dotBF16);
        return false;
    }

    // One row dot at a time: the scalar reference, and quantized types without a row kernel.
    void multiplyByRowDots(const Tensor& w, const float* x, std::int64_t n, float* y) {
        const std::int64_t rows = w.rows(), cols = w.rowLength(), rowBytes = w.rowBytes();
        const auto weightRow = [&w, rowBytes](std::int64_t r) { return w.data + r * rowBytes; };
        std::function<float(std::int64_t r, std::int64_t i)> rowDot;
        const Q8Kernel q8 = kernels_ ? q8Kernel(w.dtype) : nullptr;
        const Q8KKernel q8k = kernels_ ? q8kKernel(w.dtype) : nullptr;
        if (!kernels_) {
            rowDot = [&](std::int64_t r, std::int64_t i) { return dot(w.dtype, weightRow(r), x + i * cols, cols); };
        } else if (q8) {
            quantizeRows(x, n, cols, activations_);
            rowDot = [&, q8](std::int64_t r, std::int64_t i) { return q8(weightRow(r), activations_.data() + i * (cols / 32), cols / 32); };
        } else if (q8k) {
            quantizeRows(x, n, cols, activationsK_);
            rowDot = [&, q8k](std::int64_t r, std::int64_t i) { return q8k(weightRow(r), activationsK_.data() + i * (cols / 256), cols / 256); };
        } else {  // every type has a kernel above; this is the reference dot, on every thread
            rowDot = [&](std::int64_t r, std::int64_t i) { return dot(w.dtype, weightRow(r), x + i * cols, cols); };
        }
        // note: weight rows in the outer loop, tokens inside: a row stays in cache for all tokens.
        const auto body = [&](std::int64_t b, std::int64_t e) {
            for (std::int64_t r = b; r < e; ++r)
                for (std::int64_t i = 0; i < n; ++i) y[i * rows + r] = rowDot(r, i);
        };
        if (rows * cols * n < parallelWork_) body(0, rows);
        else pool_->parallelFor(rows, body);
    }

    template <class Block>
    void quantizeRows(const float* x, std::int64_t n, std::int64_t cols, std::vector<Block>& out) const {
        const std::int64_t blocks = cols / (std::is_same_v<Block, cpu::BlockQ8> ? 32 : 256);
        out.resize(static_cast<std::size_t>(n * blocks));
        for (std::int64_t i = 0; i < n; ++i) {
            if constexpr (std::is_same_v<Block, cpu::BlockQ8>) kernels_->quantizeQ8(x + i * cols, cols, out.data() + i * blocks);
            else kernels_->quantizeQ8K(x + i * cols, cols, out.data() + i * blocks);
        }
    }

    // Every weight row against n activation rows through dotRows(r0, r1, i, count), which writes
    // the dots of weight rows r0..r1-1 with activation rows i..i+count-1 (count <= 4) to Y.
    // note: blocked like multiplyTiled: 32 weight rows against ~256 KB of activations (rowBytes
    // each) at a time, so a long prompt's activations are not streamed from memory once per
    // weight row. The kernel calls (and so the sums) are the same for any blocking.
    template <class DotRows>
    void multiplyRows(std::int64_t rows, std::int64_t n, std::int64_t actRowBytes, DotRows dotRows) {
        const std::int64_t tokenBlock = std::max<std::int64_t>(cpu::kMaxDotRows, (std::int64_t{256} << 10) / actRowBytes / cpu::kMaxDotRows * cpu::kMaxDotRows);
        const auto body = [&](std::int64_t b, std::int64_t e) {
            if (n == 1) return dotRows(b, e, 0, 1);  // decode: the whole range in one call
            for (std::int64_t r0 = b; r0 < e; r0 += 32)
                for (std::int64_t t0 = 0; t0 < n; t0 += tokenBlock)
                    for (std::int64_t i = t0; i < std::min(n, t0 + tokenBlock); i += cpu::kMaxDotRows)
                        dotRows(r0, std::min(e, r0 + 32), i, static_cast<int>(std::min<std::int64_t>(cpu::kMaxDotRows, n - i)));
        };
        if (rows * n * actRowBytes < parallelWork_) body(0, rows);
        else pool_->parallelFor(rows, body);
    }

    // Float weights against many activation rows (a prompt, a ViT's tokens): each weight vector
    // loaded once for 4 tokens.
    // note: blocks of 32 weight rows per task and of ~256 KB of activations keep both in cache:
    // each weight block is read once per activation block, each activation block once per task;
    // within them 4 tokens (in L1) meet the 32 rows in turn.
    template <class Tile>
    void multiplyTiled(const Tensor& w, const float* x, std::int64_t n, float* y, Tile tile) {
        constexpr std::int64_t kRowBlock = 32;
        const std::int64_t rows = w.rows(), cols = w.rowLength(), rowBytes = w.rowBytes();
        const std::int64_t tokenBlock = std::max<std::int64_t>(cpu::kMaxDotRows, (std::int64_t{256} << 10) / (cols * 4) / cpu::kMaxDotRows * cpu::kMaxDotRows);
        const auto body = [&](std::int64_t b, std::int64_t e) {
            float out[cpu::kMaxTileWeightRows * cpu::kMaxDotRows];
            for (std::int64_t block = b; block < e; ++block) {
                const std::int64_t r0 = block * kRowBlock, r1 = std::min(rows, r0 + kRowBlock);
                for (std::int64_t t0 = 0; t0 < n; t0 += tokenBlock) {
                    const std::int64_t t1 = std::min(n, t0 + tokenBlock);
                    for (std::int64_t i = t0; i < t1; i += cpu::kMaxDotRows) {
                        const int count = static_cast<int>(std::min<std::int64_t>(cpu::kMaxDotRows, t1 - i));
                        for (std::int64_t r = r0; r < r1; r += cpu::kMaxTileWeightRows) {
                            const int wRows = static_cast<int>(std::min<std::int64_t>(cpu::kMaxTileWeightRows, r1 - r));
                            tile(w.data + r * rowBytes, rowBytes, wRows, x + i * cols, cols, count, out);
                            for (int j = 0; j < wRows; ++j)
                                for (int k = 0; k < count; ++k) y[(i + k) * rows + r + j] = out[j * cpu::kMaxDotRows + k];
                        }
                    }
                }
            }
        };
        const std::int64_t blocks = (rows + kRowBlock - 1) / kRowBlock;
        if (rows * cols * n < parallelWork_) body(0, blocks);
        else pool_->parallelFor(blocks, body);
    }

    std::shared_ptr<ThreadPool> pool_;
    const std::int64_t parallelWork_;  // see kParallelWork and CpuOptions::minParallelWork
    const cpu::Kernels* kernels_;  // nullptr: scalar reference
    std::string name_;
    std::vector<cpu::BlockQ8> activations_;
    std::vector<cpu::BlockQ8K> activationsK_;
    std::vector<float> vectorScratch_[2];
    std::vector<float> ones_;               // (shortConv's silu through siluMul)
    std::vector<float> deltaQk_, deltaGb_;  // DeltaNet's normalised queries and keys, decays and strengths  // norm, bias and scale vectors converted to floats
    struct RopeKey {
        std::int64_t pos = -1, nRot = 0;
        float freqBase = 0, freqScale = 0, attnFactor = 0;
        std::vector<float> factors;
    };
    RopeKey ropeKey_;               // what ropeTable_ holds
    std::vector<float> ropeTable_;  // cos, sin of each rotated pair at one position
    std::vector<bool> productDone_;  // matmuls' scratch, kept between calls
    std::vector<Product> productGroup_;
    struct alignas(64) Line {
        std::uint8_t bytes[64];
    };
    std::vector<Line> packed_;  // activations in a packed kernel's layout
};

}  // namespace

std::unique_ptr<Backend> makeCpuBackend(const CpuOptions& options) { return std::make_unique<CpuBackend>(options); }

std::string_view cpuKernelSet() { return cpu::bestKernels().name; }

}  // namespace lumen::inference
