// The CUDA backend: the Backend ops on one GPU. Weights are copied to the device once (the
// repacked layouts of kernels.h), activations and the KV cache live there, and every op is a
// kernel queued on one stream; only download() waits for the GPU. Prefill matrix products go
// through cuBLAS on F16 copies of the weights with F32 accumulation; decode uses our own
// matrix-vector kernels, which read quantized weights directly.

#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <tuple>

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
    }
    ~CudaBackend() override {
        cudaSetDevice(device_);
        cudaStreamSynchronize(stream_);
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
        for (const Tensor* t : weights) weight(*t);
    }

    void releaseWeights() override {
        select();
        cudaStreamSynchronize(stream_);
        weights_.clear();
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
        select();
        const cuda::DeviceWeight& dw = weight(w);
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
    void rmsNorm(const float* x, const Tensor& w, float eps, std::int64_t n, std::int64_t rows, float* y) override {
        select();
        cuda::rmsNorm(x, weight(w), eps, n, rows, y, stream_);
        launched("rmsNorm");
    }
    void rope(float* x, std::int64_t rows, std::int64_t pos0, const RopeSpec& spec) override {
        select();
        const float* factors = spec.freqFactors && spec.freqFactors->data
                                   ? reinterpret_cast<const float*>(weight(*spec.freqFactors).data)
                                   : nullptr;
        cuda::rope(x, rows, pos0, spec, factors, stream_);
        launched("rope");
    }
    void storeKv(const KvLayer& layer, std::int64_t pos0, std::int64_t rows, std::int64_t kvDim, const float* k, const float* v) override {
        select();
        cuda::storeKv(layer, pos0, rows, kvDim, k, v, stream_);
        launched("storeKv");
    }
    void attention(const float* q, const KvLayer& layer, std::int64_t pos0, std::int64_t rows, const AttentionSpec& spec,
                   float* out) override {
        select();
        const std::int64_t floats = cuda::attentionScratchFloats(pos0, rows, spec, multiprocessors_);
        float* partials = static_cast<float*>(scratch(scratch_.partials, floats * 4, "attention"));
        cuda::attention(q, layer, pos0, rows, spec, out, partials, multiprocessors_, stream_);
        launched("attention");
    }
    void siluMul(float* gate, const float* up, std::int64_t n) override {
        select();
        cuda::siluMul(gate, up, n, stream_);
        launched("siluMul");
    }
    void add(float* x, const float* y, std::int64_t n) override {
        select();
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
        Buffer partials, tokens, weightsHalf, activationsHalf;
    };
    using Key = std::tuple<const std::uint8_t*, DType, std::int64_t, std::int64_t>;

    static Key keyOf(const Tensor& t) { return {t.data, t.dtype, t.rowLength(), t.rows()}; }

    void select() { check(cudaSetDevice(device_), "selecting the GPU"); }
    void launched(const char* what) { check(cudaGetLastError(), what); }

    void* scratch(Buffer& b, std::int64_t bytes, const char* what) {
        if (bytes > b.bytes) {
            check(cudaStreamSynchronize(stream_), "waiting for the GPU");  // the old buffer may still be in use
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
