// makeCudaBackend in a build without the CUDA backend.
#include <stdexcept>

#include "inference/core/backend.h"

namespace lumen::inference {

std::unique_ptr<Backend> makeCudaBackend(const CudaOptions&) {
    throw std::runtime_error("this build of Lumen has no CUDA backend");
}

}  // namespace lumen::inference
