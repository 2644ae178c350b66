#include "inference/core/compute_devices.h"

#if LUMEN_HAVE_CUDA
#include "inference/cuda/cuda_devices.h"
#endif

namespace lumen::inference {

ComputeDevices queryComputeDevices() {
    ComputeDevices devices;
#if LUMEN_HAVE_CUDA
    devices.cudaBuilt = true;
    devices.gpus = cuda::queryDevices(devices.cudaUnavailableReason);
#else
    devices.cudaUnavailableReason = "this build of Lumen has no CUDA backend";
#endif
    return devices;
}

}  // namespace lumen::inference
