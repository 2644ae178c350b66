#pragma once
// cuBLAS, loaded at run time with dlopen: a CUDA build then starts on machines without the
// CUDA libraries (no GPU, or only the driver) and falls back to the CPU with a clear message,
// instead of failing to start because libcublas.so is missing.

#include <cublas_v2.h>

#include <string>

namespace lumen::inference::cuda {

struct CublasApi {
    decltype(&cublasCreate_v2) create = nullptr;
    decltype(&cublasDestroy_v2) destroy = nullptr;
    decltype(&cublasSetStream_v2) setStream = nullptr;
    // cublasGemmEx (overloaded in C++, hence the spelled-out type).
    cublasStatus_t (*gemmEx)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int m, int n, int k, const void* alpha, const void* a,
                             cudaDataType aType, int lda, const void* b, cudaDataType bType, int ldb, const void* beta, void* c,
                             cudaDataType cType, int ldc, cublasComputeType_t compute, cublasGemmAlgo_t algo) = nullptr;
    // cublasGemmStridedBatchedEx
    cublasStatus_t (*gemmStridedBatchedEx)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int m, int n, int k, const void* alpha,
                                           const void* a, cudaDataType aType, int lda, long long strideA, const void* b, cudaDataType bType,
                                           int ldb, long long strideB, const void* beta, void* c, cudaDataType cType, int ldc,
                                           long long strideC, int batchCount, cublasComputeType_t compute, cublasGemmAlgo_t algo) = nullptr;

    // The loaded library, or nullptr with `whyNot` set. Loaded once per process.
    static const CublasApi* get(std::string& whyNot);
};

}  // namespace lumen::inference::cuda
