#include "vision/clip_vision.h"

#include <stdexcept>

namespace lumen::vision {

float* ClipVisionRunner::run(const PixelTensor& pixels, std::int64_t layers) {
    const std::int64_t size = tower_.imageSize;
    if (pixels.channels != 3 || pixels.height != size || pixels.width != size || pixels.data.size() != static_cast<std::size_t>(3 * size * size))
        throw std::invalid_argument("the CLIP vision tower takes 3 x " + std::to_string(size) + " x " + std::to_string(size) + " pixels");
    if (layers < 0 || layers > tower_.tower.layers)
        throw std::invalid_argument("the tower has " + std::to_string(tower_.tower.layers) + " layers, not " + std::to_string(layers));
    const std::int64_t dim = tower_.tower.shape.dim, rows = tower_.rows(), n = rows * dim;
    if (!x_) {
        x_ = backend_.alloc(2 * n);
        image_ = backend_.alloc(3 * size * size);
        // Row 0: the class embedding; every row: its position. One table for both, added at once.
        std::vector<float> table = toFloats(tower_.positions);
        const std::vector<float> cls = toFloats(tower_.classEmbedding);
        for (std::int64_t i = 0; i < dim; ++i) table[static_cast<std::size_t>(i)] += cls[static_cast<std::size_t>(i)];
        constants_ = backend_.alloc(n);
        backend_.upload(table.data(), constants_.get(), n);
    }
    float* xa = x_.get();
    float* xb = x_.get() + n;
    backend_.upload(pixels.data.data(), image_.get(), 3 * size * size);
    const std::vector<float> zeros(static_cast<std::size_t>(dim), 0.0f);
    backend_.upload(zeros.data(), xa, dim);
    backend_.patchEmbed(image_.get(), 3, size, size, tower_.patchSize, tower_.patchWeight, tower_.patchBias, xa + dim);
    backend_.add(xa, constants_.get(), n);
    backend_.layerNorm(xa, tower_.preNorm, tower_.preNormBias, tower_.tower.shape.eps, dim, rows, xb);
    for (std::int64_t l = 0; l < layers; ++l) runner_.block(tower_.tower.weights[static_cast<std::size_t>(l)], xb, rows, static_cast<int>(l));
    return xb;
}

}  // namespace lumen::vision
