#include <cuda_runtime.h>

#include "inference/cuda/cuda_devices.h"

namespace lumen::inference::cuda {
namespace {

std::string describe(cudaError_t error) {
    switch (error) {
        case cudaErrorNoDevice: return "no CUDA-capable GPU was found";
        case cudaErrorInsufficientDriver:
            return "no NVIDIA driver was found, or it is older than this build's CUDA runtime";
        default: return std::string("the CUDA runtime reported: ") + cudaGetErrorString(error);
    }
}

}  // namespace

std::vector<GpuInfo> queryDevices(std::string& whyNone) {
    std::vector<GpuInfo> gpus;
    int count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
        whyNone = describe(status);
        cudaGetLastError();  // clear the sticky error so later calls start clean
        return gpus;
    }
    for (int i = 0; i < count; ++i) {
        cudaDeviceProp prop{};
        if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
        GpuInfo info;
        info.index = i;
        info.name = prop.name;
        info.computeMajor = prop.major;
        info.computeMinor = prop.minor;
        info.totalMemory = prop.totalGlobalMem;
        info.multiprocessors = prop.multiProcessorCount;
        int memoryClockKhz = 0, busBits = 0;
        if (cudaDeviceGetAttribute(&memoryClockKhz, cudaDevAttrMemoryClockRate, i) == cudaSuccess &&
            cudaDeviceGetAttribute(&busBits, cudaDevAttrGlobalMemoryBusWidth, i) == cudaSuccess)
            info.memoryBandwidth = 2.0 * memoryClockKhz * 1000.0 * busBits / 8.0;  // double data rate
        size_t freeBytes = 0, totalBytes = 0;
        if (cudaSetDevice(i) == cudaSuccess && cudaMemGetInfo(&freeBytes, &totalBytes) == cudaSuccess)
            info.freeMemory = freeBytes;
        gpus.push_back(info);
    }
    if (gpus.empty()) whyNone = "no CUDA-capable GPU was found";
    return gpus;
}

}  // namespace lumen::inference::cuda
