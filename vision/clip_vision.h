#pragma once
// CLIP's vision tower up to its last hidden states, shared by the Hugging Face CLIP model
// (clip_model.h) and llama.cpp's mmproj files (mmproj.h):
//
//   image (3, S, S) -> patches (S/P)^2 x (3 P P) -> patch weight (dim, 3 P P) [+ bias]
//   [class embedding (dim); patches] + positions ((S/P)^2 + 1, dim) -> pre layer norm -> layers

#include <memory>

#include "vision/preprocess.h"
#include "vision/vit.h"

namespace lumen::vision {

struct ClipTower {
    VitShape shape;
    std::int64_t layers = 0;
    std::vector<VitLayer> weights;
};

struct ClipVisionTower {
    ClipTower tower;
    Tensor patchWeight;  // rows of 3 * P * P (a Conv2d weight flattened)
    Tensor patchBias;    // (dim) or absent
    Tensor classEmbedding, positions, preNorm, preNormBias;
    std::int64_t imageSize = 0, patchSize = 0;
    std::int64_t rows() const { return positions.rows(); }  // tokens: the class token and the patches
};

// Runs a tower on one backend, keeping its scratch and constant buffers between images.
class ClipVisionRunner {
public:
    ClipVisionRunner(Backend& backend, const ClipVisionTower& tower) : backend_(backend), tower_(tower), runner_(backend, tower.tower.shape) {}
    // The hidden states after the first `layers` layers: rows() x dim, in the backend's memory
    // (valid until the next call). std::invalid_argument when the pixels are not S x S.
    float* run(const PixelTensor& pixels, std::int64_t layers);
    VitRunner& blocks() { return runner_; }

private:
    Backend& backend_;
    const ClipVisionTower& tower_;
    VitRunner runner_;
    std::shared_ptr<float[]> x_, constants_, image_;
};

}  // namespace lumen::vision
