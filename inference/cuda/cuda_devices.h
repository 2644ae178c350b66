#pragma once
// CUDA device discovery through the runtime API. Works in a binary running on a machine without
// a GPU or driver: it then returns no devices and sets `whyNone`.

#include <string>
#include <vector>

#include "inference/core/compute_devices.h"

namespace lumen::inference::cuda {

std::vector<GpuInfo> queryDevices(std::string& whyNone);

}  // namespace lumen::inference::cuda
