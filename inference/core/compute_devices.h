#pragma once
// The devices Lumen can compute on: always the CPU, plus every CUDA GPU the driver reports when
// the CUDA backend was built. When no GPU can be used, `cudaUnavailableReason` says why in words
// a user can act on ("no NVIDIA driver found", "this build has no CUDA backend").

#include <cstdint>
#include <string>
#include <vector>

namespace lumen::inference {

struct GpuInfo {
    int index = 0;
    std::string name;
    int computeMajor = 0;
    int computeMinor = 0;
    std::uint64_t totalMemory = 0;  // bytes
    std::uint64_t freeMemory = 0;   // bytes, at the time of the query
    int multiprocessors = 0;
    double memoryBandwidth = 0;  // peak, bytes/s, from the memory clock and bus width (0: unknown)
};

struct ComputeDevices {
    bool cudaBuilt = false;
    std::vector<GpuInfo> gpus;
    std::string cudaUnavailableReason;  // empty when at least one GPU is usable
};

// Queries the driver each call (cheap; no context is kept).
ComputeDevices queryComputeDevices();

}  // namespace lumen::inference
