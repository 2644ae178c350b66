// The CUDA backend: the Backend ops on one GPU. Weights are copied to the device once (the
// repacked layouts of kernels.h), activations and the KV cache live there, and every op is a
// kernel queued on one stream; only download() waits for the GPU. Prefill matrix products go
// through cuBLAS on F16 copies of the weights with F32 accumulation; decode uses our own
// matrix-vector kernels, which read quantized weights directly.

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "inference/core/backend.h"
#include "inference/core/memory.h"
#include "inference/cuda/cublas_api.h"
#include "inference/cuda/cuda_devices.h"
#include "inference/cuda/kernels.h"

namespace lumen::inference {
namespace {

// Weight rows dequantized to F16 per cuBLAS call, at most: bounds the scratch buffer.
constexpr std::int64_t kGemmChunkElements = std::int64_t{64} << 20;
// Device memory kept free for cuBLAS workspaces and the driver.
constexpr std::uint64_t kReserveBytes = 512ull << 20;

void check(cudaError_t status, const char* what) {
    if (status != cudaSuccess) {
        cudaGetLastError();
        throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(status));
    }
}

void checkBlas(cublasStatus_t status, const char* what) {
    if (status != CUBLAS_STATUS_SUCCESS) throw std::runtime_error(std::string("cuBLAS error ") + std::to_string(static_cast<int>(status)) + " in " + what);
}

std::shared_ptr<void> deviceAlloc(std::int64_t bytes, cudaStream_t stream, const char* what) {
    void* p = nullptr;
    const auto size = static_cast<std::size_t>(std::max<std::int64_t>(bytes, 1));
    const cudaError_t status = cudaMalloc(&p, size);
    if (status != cudaSuccess) {
        cudaGetLastError();
        throw std::runtime_error(std::string("out of GPU memory allocating ") + formatBytes(size) + " for " + what);
    }
    check(cudaMemsetAsync(p, 0, size, stream), "clearing new memory");
    return std::shared_ptr<void>(p, [](void* q) { cudaFree(q); });
}

class CudaBackend final : public Backend {
public:
    CudaBackend(const GpuInfo& gpu, const cuda::CublasApi& blas) : device_(gpu.index), multiprocessors_(gpu.multiprocessors), blas_(blas) {
        name_ = "CUDA (" + gpu.name + ", compute " + std::to_string(gpu.computeMajor) + "." + std::to_string(gpu.computeMinor) + ")";
        check(cudaSetDevice(device_), "selecting the GPU");
        check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "creating a stream");
        checkBlas(blas_.create(&blasHandle_), "cublasCreate");
        checkBlas(blas_.setStream(blasHandle_, stream_), "cublasSetStream");
        check(cudaMallocHost(&hostPosition_, sizeof(std::int64_t)), "allocating pinned memory");
        positionMemory_ = deviceAlloc(sizeof(std::int64_t), stream_, "the step position");
    }
    ~CudaBackend() override {
        cudaSetDevice(device_);
        cudaStreamSynchronize(stream_);
        for (auto& [key, exec] : graphs_) cudaGraphExecDestroy(exec);
        cudaFreeHost(hostPosition_);
        weights_.clear();
        scratch_ = {};
        blas_.destroy(blasHandle_);
        cudaStreamDestroy(stream_);
    }

    std::string_view name() const override { return name_; }

    std::shared_ptr<float[]> alloc(std::int64_t n) override {
        select();
        auto p = deviceAlloc(n * 4, stream_, "activations");
        return std::shared_ptr<float[]>(p, static_cast<float*>(p.get()));
    }
    std::shared_ptr<void> allocBytes(std::int64_t bytes) override {
        select();
        return deviceAlloc(bytes, stream_, "the KV cache");
    }

    void prepareWeights(std::span<const Tensor* const> weights) override {
        select();
        std::uint64_t needed = 0;
        for (const Tensor* t : weights)
            if (!weights_.count(keyOf(*t))) needed += static_cast<std::uint64_t>(t->rowBytes() * t->rows());
        std::size_t freeBytes = 0, totalBytes = 0;
        check(cudaMemGetInfo(&freeBytes, &totalBytes), "querying GPU memory");
        if (needed + kReserveBytes > freeBytes)
            throw std::runtime_error("the GPU has " + formatBytes(freeBytes) + " free but these weights need " + formatBytes(needed) +
                                     "; offload fewer layers");
        std::int64_t widest = 0;
        for (const Tensor* t : weights) widest = std::max(widest, weight(*t).cols);
        activationBuffer(widest);
    }

    void releaseWeights() override {
        select();
        cudaStreamSynchronize(stream_);
        for (auto& [key, exec] : graphs_) cudaGraphExecDestroy(exec);  // they name the weights
        graphs_.clear();
        seen_.clear();
        retired_.clear();
        weights_.clear();
    }

    bool replayStep(std::uint64_t key, std::int64_t pos, std::int64_t maxPositions) override {
        (void)maxPositions;
        const auto it = graphs_.find(key);
        if (it == graphs_.end()) return false;
        select();
        setPosition(pos);
        check(cudaGraphLaunch(it->second, stream_), "replaying a decode step");
        return true;
    }
    void beginStep(std::uint64_t key, std::int64_t pos, std::int64_t maxPositions) override {
        select();
        setPosition(pos);
        stepMaxPositions_ = maxPositions;
        stepKey_ = key;
        // The first step of a key runs as it comes (its buffers get allocated); the second is
        // recorded and replayed from then on.
        capturing_ = !seen_.insert(key).second;
        if (capturing_) check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "recording a decode step");
        inStep_ = true;
    }
    void endStep(bool ok) override {
        if (ok) {
            flushMatvecs();
            flushAdd();
        } else {
            pendingMatvecs_.count = 0;
            pendingAdd_ = {};
        }
        inStep_ = false;
        if (!capturing_) return;
        capturing_ = false;
        cudaGraph_t graph = nullptr;
        const cudaError_t ended = cudaStreamEndCapture(stream_, &graph);
        if (!ok || ended != cudaSuccess) {
            if (graph) cudaGraphDestroy(graph);
            cudaGetLastError();
            if (ok) check(ended, "recording a decode step");
            return;
        }
        cudaGraphExec_t exec = nullptr;
        const cudaError_t made = cudaGraphInstantiate(&exec, graph, 0);
        cudaGraphDestroy(graph);
        check(made, "instantiating a decode step");
        graphs_[stepKey_] = exec;
        check(cudaGraphLaunch(exec, stream_), "running a decode step");
    }
    void forgetSteps(std::uint32_t owner) override {
        for (auto it = graphs_.begin(); it != graphs_.end();) {
            if (it->first >> 32 == owner) {
                cudaGraphExecDestroy(it->second);
                it = graphs_.erase(it);
            } else {
                ++it;
            }
        }
        for (auto it = seen_.begin(); it != seen_.end();) it = *it >> 32 == owner ? seen_.erase(it) : std::next(it);
        if (graphs_.empty()) retired_.clear();
    }

    void upload(const float* src, float* dst, std::int64_t n) override {
        select();
        check(cudaMemcpyAsync(dst, src, static_cast<std::size_t>(n) * 4, cudaMemcpyHostToDevice, stream_), "upload");
    }
    void download(const float* src, float* dst, std::int64_t n) override {
        select();
        check(cudaMemcpyAsync(dst, src, static_cast<std::size_t>(n) * 4, cudaMemcpyDeviceToHost, stream_), "download");
        check(cudaStreamSynchronize(stream_), "waiting for the GPU");
    }

    void matmul(const Tensor& w, const float* x, std::int64_t n, float* y) override {
        check(cudaSetDevice(device_), "selecting the GPU");
        const cuda::DeviceWeight& dw = weight(w);
        if (n == 1 && cuda::takesQuantizedActivations(dw)) {
            // Products of one vector (q, k, v; gate, up) quantize it once and, when their
            // weights share a type, run as one launch: they wait in pendingMatvecs_ until an op
            // that is not one of them arrives.
            flushAdd();
            if (pendingMatvecs_.count > 0 &&
                (pendingInput_ != x || pendingMatvecs_.weights[0].dtype != dw.dtype || pendingMatvecs_.count == cuda::MatvecBatch::kMax))
                flushMatvecs();
            const void* before = scratch_.activationsQ8.memory.get();
            const bool wasCached = quantizedFrom_ == x && quantizedLength_ == dw.cols;
            if (!wasCached) flushMatvecs();  // they read the buffer about to be rewritten
            Activations a = activationBuffer(dw.cols);
            if (!wasCached || before != a.q) {
                cuda::quantizeActivations(x, dw.cols, a.q, a.d, a.s, stream_);
                launched("quantizeActivations");
            }
            pendingMatvecs_.weights[pendingMatvecs_.count] = dw;
            pendingMatvecs_.outputs[pendingMatvecs_.count] = y;
            ++pendingMatvecs_.count;
            pendingInput_ = x;
            quantizedFrom_ = y == x ? nullptr : x;
            quantizedLength_ = dw.cols;
            return;
        }
        select();
        if (n == 1) {
            cuda::matvec(dw, x, y, stream_);
            return launched("matvec");
        }
        gemm(dw, x, n, y);
    }

    void addBias(float* y, const Tensor& bias, std::int64_t n, std::int64_t rows) override {
        select();
        cuda::addBias(y, weight(bias), n, rows, stream_);
        launched("addBias");
    }
    void scaleRows(float* y, const Tensor& scale, std::int64_t n, std::int64_t rows) override {
        select();
        cuda::scaleRows(y, weight(scale), n, rows, stream_);
        launched("scaleRows");
    }
    void rmsNorm(const float* x, const Tensor& w, float eps, std::int64_t n, std::int64_t rows, float* y) override {
        check(cudaSetDevice(device_), "selecting the GPU");
        flushMatvecs();
        const bool fuseAdd = pendingAdd_.x == x && pendingAdd_.n == n;
        if (!fuseAdd) flushAdd();
        quantizedFrom_ = nullptr;
        if (rows == 1 && n % 32 == 0 && n <= quantizedCapacity_) {
            // Decode: the pending residual add, the norm and the quantization for the next
            // matvecs in one launch.
            const Activations a = activationBuffer(n);
            if (fuseAdd) cuda::addRmsNormQuantize(pendingAdd_.x, pendingAdd_.addend, weight(w), eps, n, y, a.q, a.d, a.s, stream_);
            else cuda::rmsNormQuantize(x, weight(w), eps, n, y, a.q, a.d, a.s, stream_);
            pendingAdd_ = {};
            launched("rmsNorm");
            quantizedFrom_ = y;
            quantizedLength_ = n;
            return;
        }
        flushAdd();
        cuda::rmsNorm(x, weight(w), eps, n, rows, y, stream_);
        launched("rmsNorm");
    }
    void rope(float* x, std::int64_t rows, std::int64_t pos0, const RopeSpec& spec) override {
        select();
        const float* factors = spec.freqFactors && spec.freqFactors->data
                                   ? reinterpret_cast<const float*>(weight(*spec.freqFactors).data)
                                   : nullptr;
        cuda::rope(x, rows, position(pos0), spec, factors, stream_);
        launched("rope");
    }
    void storeKv(const KvLayer& layer, std::int64_t pos0, std::int64_t rows, std::int64_t kvDim, const float* k, const float* v) override {
        select();
        cuda::storeKv(layer, position(pos0), rows, kvDim, k, v, stream_);
        launched("storeKv");
    }
    void attention(const float* q, const KvLayer& layer, std::int64_t pos0, std::int64_t rows, const AttentionSpec& spec,
                   float* out) override {
        select();
        if (rows > 1 && !inStep_) return attentionByGemm(q, layer, pos0, rows, spec, out);
        const cuda::Position p = position(pos0);
        const std::int64_t floats = cuda::attentionScratchFloats(p, rows, spec, multiprocessors_);
        float* partials = static_cast<float*>(scratch(scratch_.partials, floats * 4, "attention"));
        cuda::attention(q, layer, p, rows, spec, sinks(spec), out, partials, multiprocessors_, stream_);
        launched("attention");
    }
    void selfAttention(const float* q, const float* k, const float* v, std::int64_t rows, const AttentionSpec& spec, float* out) override {
        select();
        attentionByGemm(q, KvLayer{DType::F32, const_cast<float*>(k), const_cast<float*>(v)}, 0, rows, spec, out, false);
    }
    void layerNorm(const float* x, const Tensor& w, const Tensor& bias, float eps, std::int64_t n, std::int64_t rows, float* y) override {
        select();
        cuda::layerNorm(x, weight(w), bias.data ? &weight(bias) : nullptr, eps, n, rows, y, stream_);
        launched("layerNorm");
    }
    void gelu(float* x, std::int64_t n, GeluKind kind) override {
        select();
        cuda::gelu(x, n, kind, stream_);
        launched("gelu");
    }
    void mul(float* x, const float* y, std::int64_t n) override {
        select();
        cuda::mul(x, y, n, stream_);
        launched("mul");
    }
    void scale(float* x, float s, std::int64_t n) override {
        select();
        cuda::scale(x, s, n, stream_);
        launched("scale");
    }
    void softmax(float* x, std::int64_t n, std::int64_t rows) override {
        select();
        cuda::softmax(x, n, rows, stream_);
        launched("softmax");
    }
    void patchEmbed(const float* image, std::int64_t channels, std::int64_t height, std::int64_t width, std::int64_t patch, const Tensor& w,
                    const Tensor& bias, float* out) override {
        select();
        const std::int64_t patches = (height / patch) * (width / patch), length = channels * patch * patch;
        if (w.rowLength() != length) throw std::invalid_argument(w.name + ": a patch has " + std::to_string(length) + " values");
        auto rows = std::static_pointer_cast<float>(deviceAlloc(patches * length * 4, stream_, "image patches"));
        cuda::im2col(image, channels, height, width, patch, rows.get(), stream_);
        launched("im2col");
        matmul(w, rows.get(), patches, out);
        if (bias.data) addBias(out, bias, w.rows(), patches);
        select();  // runs a held-back product
        check(cudaStreamSynchronize(stream_), "patch embedding");  // before the patches' memory goes
    }
    void siluMul(float* gate, const float* up, std::int64_t n) override {
        select();
        if (n % 32 == 0 && n <= quantizedCapacity_) {
            const Activations a = activationBuffer(n);
            cuda::siluMulQuantize(gate, up, n, a.q, a.d, a.s, stream_);
            launched("siluMul");
            quantizedFrom_ = gate;
            quantizedLength_ = n;
            return;
        }
        cuda::siluMul(gate, up, n, stream_);
        launched("siluMul");
    }
    void clampedSwiglu(float* gate, const float* up, std::int64_t n, const ClampedSwiglu& spec) override {
        select();
        cuda::clampedSwiglu(gate, up, n, spec, stream_);
        launched("clampedSwiglu");
    }
    void add(float* x, const float* y, std::int64_t n) override {
        select();
        if (n % 32 == 0 && n <= quantizedCapacity_) {
            // A residual add of decode: held back to join the next RMSNorm of x.
            pendingAdd_ = {x, y, n};
            return;
        }
        cuda::add(x, y, n, stream_);
        launched("add");
    }
    void embedRows(const Tensor& table, std::span<const std::int32_t> tokens, float* out) override {
        select();
        const cuda::DeviceWeight& dw = weight(table);
        const auto n = static_cast<std::int64_t>(tokens.size());
        auto* ids = static_cast<std::int32_t*>(scratch(scratch_.tokens, n * 4, "token ids"));
        check(cudaMemcpyAsync(ids, tokens.data(), static_cast<std::size_t>(n) * 4, cudaMemcpyHostToDevice, stream_), "token upload");
        cuda::gatherRows(dw, ids, n, out, stream_);
        launched("embedRows");
    }
    void shortConv(const float* x, std::int64_t rows, std::int64_t channels, const Tensor& w, float* state, float* out) override {
        select();
        if (w.rows() != channels)
            throw std::invalid_argument(w.name + ": a short convolution has one row of taps per channel (" + std::to_string(channels) + ")");
        cuda::shortConv(x, rows, channels, weight(w), state, out, stream_);
        launched("shortConv");
    }
    void deltaNet(const float* qkv, const float* alpha, const float* beta, std::int64_t rows, const DeltaNetSpec& spec, float* state,
                  float* out) override {
        select();
        const auto f32 = [&](const Tensor* t) {
            if (!t || !t->data || t->dtype != DType::F32 || t->elements() < spec.nVHeads)
                throw std::invalid_argument("a DeltaNet layer's decay rates and biases are one F32 value per value head");
            return reinterpret_cast<const float*>(weight(*t).data);
        };
        if (spec.nKHeads <= 0 || spec.nVHeads % spec.nKHeads != 0 || !cuda::deltaNetSupports(spec))
            throw std::invalid_argument("DeltaNet heads of " + std::to_string(spec.kDim) + " x " + std::to_string(spec.vDim) +
                                        " (the CUDA backend runs key heads of 16 to 256, powers of 2, value heads up to 1024, and key x value up to 32768)");
        cuda::deltaNet(qkv, alpha, beta, rows, spec, f32(spec.a), f32(spec.dtBias), state, out, stream_);
        launched("deltaNet");
    }
    void copyRows(const float* src, std::int64_t srcStride, float* dst, std::int64_t dstStride, std::int64_t cols, std::int64_t rows) override {
        select();
        if (rows > 0 && cols > 0)
            check(cudaMemcpy2DAsync(dst, static_cast<std::size_t>(dstStride) * 4, src, static_cast<std::size_t>(srcStride) * 4, static_cast<std::size_t>(cols) * 4,
                                    static_cast<std::size_t>(rows), cudaMemcpyDeviceToDevice, stream_),
                  "copyRows");
    }
    void sigmoidMul(float* x, const float* gate, std::int64_t n) override {
        select();
        cuda::sigmoidMul(x, gate, n, stream_);
        launched("sigmoidMul");
    }

private:
    struct Entry {
        std::shared_ptr<void> memory;
        cuda::DeviceWeight weight;
    };
    // A growable device buffer.
    struct Buffer {
        std::shared_ptr<void> memory;
        std::int64_t bytes = 0;
    };
    struct Scratch {
        Buffer partials, tokens, weightsHalf, activationsHalf, activationsQ8, scores, probabilities, cacheHalf;
    };
    // Activations quantized to int8 per block of 32, for the quantized matvec kernels.
    struct Activations {
        std::int8_t* q;
        float* d;
        float* s;
    };
    using Key = std::tuple<const std::uint8_t*, DType, std::int64_t, std::int64_t>;

    static Key keyOf(const Tensor& t) { return {t.data, t.dtype, t.rowLength(), t.rows()}; }

    // Every op but a matvec runs what was held back, and forgets the quantized activations:
    // it may change them.
    void select() {
        check(cudaSetDevice(device_), "selecting the GPU");
        flushMatvecs();
        flushAdd();
        quantizedFrom_ = nullptr;
    }
    void flushMatvecs() {
        if (pendingMatvecs_.count == 0) return;
        const Activations a = activationBuffer(pendingMatvecs_.weights[0].cols);
        cuda::matvecQuantized(pendingMatvecs_, a.q, a.d, a.s, stream_);
        pendingMatvecs_.count = 0;
        launched("matvec");
    }
    void flushAdd() {
        if (!pendingAdd_.x) return;
        cuda::add(pendingAdd_.x, pendingAdd_.addend, pendingAdd_.n, stream_);
        pendingAdd_ = {};
        launched("add");
    }
    cuda::Position position(std::int64_t pos) const {
        if (!inStep_) return {pos, nullptr, 0};
        return {pos, positionDevice(), stepMaxPositions_};
    }
    const std::int64_t* positionDevice() const { return static_cast<const std::int64_t*>(positionMemory_.get()); }
    void setPosition(std::int64_t pos) {
        // The previous step's copy has finished: every step ends with a download that waits.
        *hostPosition_ = pos;
        check(cudaMemcpyAsync(positionMemory_.get(), hostPosition_, sizeof(std::int64_t), cudaMemcpyHostToDevice, stream_), "position upload");
    }
    Activations activationBuffer(std::int64_t n) {
        quantizedCapacity_ = std::max(quantizedCapacity_, n);
        const std::int64_t blocks = (n + 31) / 32, qBytes = (n + 255) / 256 * 256;
        auto* base = static_cast<std::uint8_t*>(scratch(scratch_.activationsQ8, qBytes + 8 * blocks, "quantized activations"));
        return {reinterpret_cast<std::int8_t*>(base), reinterpret_cast<float*>(base + qBytes), reinterpret_cast<float*>(base + qBytes) + blocks};
    }
    void launched(const char* what) { check(cudaGetLastError(), what); }

    void* scratch(Buffer& b, std::int64_t bytes, const char* what) {
        if (bytes > b.bytes) {
            check(cudaStreamSynchronize(stream_), "waiting for the GPU");  // the old buffer may still be in use
            // Recorded steps still name the old buffer: it must outlive them.
            if (!graphs_.empty() && b.memory) retired_.push_back(std::move(b.memory));
            b.memory = deviceAlloc(bytes, stream_, what);
            b.bytes = bytes;
        }
        return b.memory.get();
    }

    // The device copy of a weight, made on first use.
    const cuda::DeviceWeight& weight(const Tensor& t) {
        const Key key = keyOf(t);
        if (auto it = weights_.find(key); it != weights_.end()) return it->second.weight;
        if (!t.data) throw std::invalid_argument("weight '" + t.name + "' has no data");
        Entry e;
        cuda::DeviceWeight& w = e.weight;
        w.dtype = t.dtype;
        w.rows = t.rows();
        w.cols = t.rowLength();
        const std::int64_t bytes = t.rowBytes() * t.rows();
        if (cuda::isRepacked(t.dtype)) {
            const std::int64_t blockElems = traits(t.dtype).blockSize, blocks = w.rows * w.cols / blockElems;
            const std::int64_t bodyBytes = blocks * cuda::repackedBodyBytes(t.dtype), scaleOffset = (bodyBytes + 255) / 256 * 256;
            e.memory = deviceAlloc(scaleOffset + blocks * 2, stream_, "model weights");
            auto raw = deviceAlloc(bytes, stream_, "model weights");
            check(cudaMemcpyAsync(raw.get(), t.data, static_cast<std::size_t>(bytes), cudaMemcpyHostToDevice, stream_), "weight upload");
            auto* base = static_cast<std::uint8_t*>(e.memory.get());
            cuda::repack(t.dtype, static_cast<const std::uint8_t*>(raw.get()), blocks, base, reinterpret_cast<std::uint16_t*>(base + scaleOffset), stream_);
            launched("repack");
            check(cudaStreamSynchronize(stream_), "weight upload");
            w.data = base;
            w.scales = reinterpret_cast<const std::uint16_t*>(base + scaleOffset);
            w.rowBytes = w.cols / blockElems * cuda::repackedBodyBytes(t.dtype);
        } else {
            e.memory = deviceAlloc(bytes, stream_, "model weights");
            check(cudaMemcpyAsync(e.memory.get(), t.data, static_cast<std::size_t>(bytes), cudaMemcpyHostToDevice, stream_), "weight upload");
            check(cudaStreamSynchronize(stream_), "weight upload");
            w.data = static_cast<const std::uint8_t*>(e.memory.get());
            w.rowBytes = t.rowBytes();
        }
        return weights_.emplace(key, std::move(e)).first->second.weight;
    }

    // The attention sinks' device copy, or nullptr.
    const float* sinks(const AttentionSpec& spec) {
        if (!spec.sinks || !spec.sinks->data) return nullptr;
        if (spec.sinks->dtype != DType::F32 || spec.sinks->elements() < spec.nHeads)
            throw std::invalid_argument(spec.sinks->name + ": attention sinks are one F32 value per head");
        return reinterpret_cast<const float*>(weight(*spec.sinks).data);
    }

    // Attention of a prompt's rows on tensor cores: per query head h (KV head g = h / group),
    // S = Q_h K_g^T / sqrt(d) by cuBLAS, a causal softmax, then O_h = P V_g by cuBLAS; the
    // query rows go in tiles so S stays within 256 MB. Heads sharing a KV head are batched with
    // constant strides: one batched product per position within the group.
    // causal == false: every row sees all keys (pos0 is then 0 and the keys are the rows).
    void attentionByGemm(const float* q, const KvLayer& layer, std::int64_t pos0, std::int64_t rows, const AttentionSpec& spec, float* out,
                         bool causal = true) {
        if (layer.dtype == DType::Q8_0) {
            // cuBLAS takes no int8-with-scales operands: the positions so far as F16 first.
            const std::int64_t n = (pos0 + rows) * spec.nKvHeads * spec.headDim;
            auto* halves = static_cast<std::uint8_t*>(scratch(scratch_.cacheHalf, 4 * n, "the KV cache as F16"));
            cuda::q8CacheToHalf(layer, n, halves, halves + 2 * n, stream_);
            launched("q8CacheToHalf");
            return attentionByGemm(q, KvLayer{DType::F16, halves, halves + 2 * n}, pos0, rows, spec, out, causal);
        }
        const bool half = layer.dtype == DType::F16;
        const cudaDataType type = half ? CUDA_R_16F : CUDA_R_32F;
        const std::int64_t hd = spec.headDim, qDim = spec.nHeads * hd, kvDim = spec.nKvHeads * hd, group = spec.nHeads / spec.nKvHeads;
        const std::int64_t keys = pos0 + rows, elem = half ? 2 : 4;
        const std::int64_t tile = std::clamp<std::int64_t>((std::int64_t{64} << 20) / (spec.nHeads * keys), 1, rows);
        const void* qIn = q;
        if (half) {
            void* qh = scratch(scratch_.activationsHalf, rows * qDim * 2, "attention queries");
            cuda::floatToHalf(q, qh, rows * qDim, stream_);
            launched("floatToHalf");
            qIn = qh;
        }
        auto* scores = static_cast<float*>(scratch(scratch_.scores, spec.nHeads * tile * keys * 4, "attention scores"));
        void* probabilities = scratch(scratch_.probabilities, spec.nHeads * tile * keys * elem, "attention weights");
        const float scale = spec.queryScale(), one = 1.0f, zero = 0.0f;
        const auto* qBytes = static_cast<const std::uint8_t*>(qIn);
        const auto* kBytes = static_cast<const std::uint8_t*>(layer.keys);
        const auto* vBytes = static_cast<const std::uint8_t*>(layer.values);
        for (std::int64_t r0 = 0; r0 < rows; r0 += tile) {
            const std::int64_t n = std::min(tile, rows - r0);
            for (std::int64_t j = 0; j < group; ++j) {
                // Heads h = g * group + j for every KV head g: S_h (keys x n, column-major) = K_g^T' Q_h.
                checkBlas(blas_.gemmStridedBatchedEx(
                              blasHandle_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(keys), static_cast<int>(n), static_cast<int>(hd), &scale, kBytes,
                              type, static_cast<int>(kvDim), hd, qBytes + ((r0 * qDim) + j * hd) * elem, type, static_cast<int>(qDim), group * hd,
                              &zero, scores + j * n * keys, CUDA_R_32F, static_cast<int>(keys), group * n * keys, static_cast<int>(spec.nKvHeads),
                              CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                          "attention scores");
            }
            cuda::causalSoftmax(scores, spec.nHeads, n, keys, causal ? pos0 + r0 : keys, spec, sinks(spec), probabilities, half, stream_);
            launched("causalSoftmax");
            const auto* pBytes = static_cast<const std::uint8_t*>(probabilities);
            for (std::int64_t j = 0; j < group; ++j) {
                // O_h (hd x n, column-major, ld qDim) = V_g (hd x keys) P_h (keys x n).
                checkBlas(blas_.gemmStridedBatchedEx(
                              blasHandle_, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(hd), static_cast<int>(n), static_cast<int>(keys), &one, vBytes,
                              type, static_cast<int>(kvDim), hd, pBytes + j * n * keys * elem, type, static_cast<int>(keys), group * n * keys, &zero,
                              out + r0 * qDim + j * hd, CUDA_R_32F, static_cast<int>(qDim), group * hd, static_cast<int>(spec.nKvHeads),
                              CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                          "attention output");
            }
        }
    }

    // Y (n x rows) = X (n x cols) W^T. cuBLAS is column-major: there Y^T = W X^T with W read
    // transposed, so Y comes out row-major with leading dimension `rows`.
    void gemm(const cuda::DeviceWeight& w, const float* x, std::int64_t n, float* y) {
        const float one = 1.0f, zero = 0.0f;
        const auto m = static_cast<int>(w.rows), k = static_cast<int>(w.cols), cols = static_cast<int>(n);
        if (w.dtype == DType::F32) {
            checkBlas(blas_.gemmEx(blasHandle_, CUBLAS_OP_T, CUBLAS_OP_N, m, cols, k, &one, w.data, CUDA_R_32F, k, x, CUDA_R_32F, k, &zero, y,
                                   CUDA_R_32F, m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                      "GEMM (F32)");
            return;
        }
        void* xh = scratch(scratch_.activationsHalf, n * w.cols * 2, "activations");
        cuda::floatToHalf(x, xh, n * w.cols, stream_);
        launched("floatToHalf");
        if (w.dtype == DType::F16) {
            checkBlas(blas_.gemmEx(blasHandle_, CUBLAS_OP_T, CUBLAS_OP_N, m, cols, k, &one, w.data, CUDA_R_16F, k, xh, CUDA_R_16F, k, &zero, y,
                                   CUDA_R_32F, m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                      "GEMM (F16)");
            return;
        }
        // Quantized: F16 copies of up to kGemmChunkElements weights at a time.
        const std::int64_t chunkRows = std::clamp<std::int64_t>(kGemmChunkElements / w.cols, 1, w.rows);
        void* wh = scratch(scratch_.weightsHalf, chunkRows * w.cols * 2, "dequantized weights");
        for (std::int64_t r0 = 0; r0 < w.rows; r0 += chunkRows) {
            const std::int64_t rowsNow = std::min(chunkRows, w.rows - r0);
            cuda::dequantizeRowsHalf(w, r0, rowsNow, wh, stream_);
            launched("dequantize");
            checkBlas(blas_.gemmEx(blasHandle_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(rowsNow), cols, k, &one, wh, CUDA_R_16F, k, xh,
                                   CUDA_R_16F, k, &zero, y + r0, CUDA_R_32F, m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                      "GEMM (dequantized)");
        }
    }

    int device_;
    int multiprocessors_;
    const cuda::CublasApi& blas_;
    std::string name_;
    cudaStream_t stream_ = nullptr;
    cublasHandle_t blasHandle_ = nullptr;
    std::map<Key, Entry> weights_;
    Scratch scratch_;
    // Work held back to join the next op (see matmul and add).
    cuda::MatvecBatch pendingMatvecs_;
    const float* pendingInput_ = nullptr;
    struct PendingAdd {
        float* x = nullptr;
        const float* addend = nullptr;
        std::int64_t n = 0;
    } pendingAdd_;
    const float* quantizedFrom_ = nullptr;  // the vector the Q8 activation buffer holds
    std::int64_t quantizedLength_ = 0;
    std::int64_t quantizedCapacity_ = 0;  // elements the Q8 activation buffer holds
    // Recorded decode steps.
    std::int64_t* hostPosition_ = nullptr;  // pinned
    std::shared_ptr<void> positionMemory_;
    std::map<std::uint64_t, cudaGraphExec_t> graphs_;
    std::set<std::uint64_t> seen_;
    std::vector<std::shared_ptr<void>> retired_;  // scratch buffers that recorded steps may use
    std::uint64_t stepKey_ = 0;
    std::int64_t stepMaxPositions_ = 0;
    bool inStep_ = false, capturing_ = false;
};

}  // namespace

std::unique_ptr<Backend> makeCudaBackend(const CudaOptions& options) {
    std::string why;
    const auto gpus = cuda::queryDevices(why);
    if (gpus.empty()) throw std::runtime_error(why.empty() ? "no CUDA GPU was found" : why);
    const auto it = std::find_if(gpus.begin(), gpus.end(), [&](const GpuInfo& g) { return g.index == options.device; });
    if (it == gpus.end()) throw std::runtime_error("there is no CUDA GPU number " + std::to_string(options.device));
    if (it->computeMajor < 8)
        throw std::runtime_error(it->name + " has compute capability " + std::to_string(it->computeMajor) + "." +
                                 std::to_string(it->computeMinor) + "; Lumen's CUDA backend needs 8.0 (Ampere) or newer");
    const cuda::CublasApi* blas = cuda::CublasApi::get(why);
    if (!blas) throw std::runtime_error(why);
    return std::make_unique<CudaBackend>(*it, *blas);
}

}  // namespace lumen::inference
