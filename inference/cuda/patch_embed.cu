// The patches of an image as matrix rows (im2col for a convolution whose stride is its size):
// the patch embedding is then one matrix product.

#include "inference/cuda/device_common.cuh"

namespace lumen::inference::cuda {
namespace {

__global__ void im2colKernel(const float* image, std::int64_t channels, std::int64_t height, std::int64_t width, std::int64_t patch,
                             float* rows, std::int64_t total) {
    const std::int64_t k = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (k >= total) return;
    const std::int64_t length = channels * patch * patch, p = k / length, e = k % length;
    const std::int64_t c = e / (patch * patch), i = (e / patch) % patch, j = e % patch;
    const std::int64_t across = width / patch, top = (p / across) * patch, left = (p % across) * patch;
    rows[k] = image[(c * height + top + i) * width + left + j];
}

}  // namespace

void im2col(const float* image, std::int64_t channels, std::int64_t height, std::int64_t width, std::int64_t patch, float* rows,
            cudaStream_t stream) {
    const std::int64_t total = (height / patch) * (width / patch) * channels * patch * patch;
    if (total > 0) im2colKernel<<<blocksFor(total, 256), 256, 0, stream>>>(image, channels, height, width, patch, rows, total);
}

}  // namespace lumen::inference::cuda
