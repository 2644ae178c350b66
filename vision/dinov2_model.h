#pragma once
// DINOv2 (Oquab et al. 2023) as Hugging Face's Dinov2Model / Dinov2WithRegistersModel store it.
//
// image (3, H, W) -> patches (H/14 x W/14) -> embeddings.patch_embeddings.projection (dim, 3, 14, 14)
//   + bias -> [cls_token; patches] + position_embeddings (1 + G*G, dim), the patch part resized
//   bicubically from G x G to H/14 x W/14 when they differ -> [cls; register_tokens (R, dim);
//   patches] -> layers -> layernorm -> the class token and the mean of the patch tokens
// Layers (encoder.layer.N.): norm1, attention.attention.{query,key,value} (dim, dim) + biases,
//   attention.output.dense, layer_scale1.lambda1 (dim), norm2, mlp.fc1 (4 dim, dim), mlp.fc2,
//   layer_scale2.lambda1; GELU (erf); LayerNorm eps 1e-6.
// Position resizing follows each model's Hugging Face code: PyTorch's bicubic (a = -0.75, no
// antialiasing) for dinov2, the antialiased one (a = -0.5, widened when shrinking) for
// dinov2_with_registers.

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>

#include "inference/formats/safetensors.h"
#include "vision/vision_model.h"
#include "vision/vit.h"

namespace lumen::vision {

struct Dinov2Output {
    std::vector<float> cls;        // (dim) after the final layer norm
    std::vector<float> patchMean;  // (dim) mean of the patch tokens after it (registers excluded)
};

class Dinov2Model final : public ImageEncoder {
public:
    static std::unique_ptr<Dinov2Model> load(const std::filesystem::path& folder, inference::Backend& backend);

    std::string description() const override;
    const PreprocessConfig& preprocessConfig() const override { return preprocess_; }
    // cls followed by patchMean (2 dim values).
    std::vector<float> embedImage(const PixelTensor& pixels) override;
    std::int64_t embeddingSize() const override { return 2 * shape_.dim; }
    using ImageEncoder::embedImage;

    Dinov2Output run(const PixelTensor& pixels);
    std::int64_t registers() const { return registers_; }

private:
    Dinov2Model(inference::SafetensorsModel file, inference::Backend& backend) : file_(std::move(file)), backend_(backend) {}
    const float* positions(std::int64_t gridH, std::int64_t gridW);

    inference::SafetensorsModel file_;
    inference::Backend& backend_;
    std::mutex mutex_;
    PreprocessConfig preprocess_;
    VitShape shape_;
    std::vector<VitLayer> layers_;
    std::int64_t patchSize_ = 14, grid_ = 0, registers_ = 0;
    bool antialias_ = false;
    Tensor patchWeight_, patchBias_, clsToken_, positionTable_, registerTokens_, norm_, normBias_;
    std::unique_ptr<VitRunner> runner_;
    std::map<std::pair<std::int64_t, std::int64_t>, std::shared_ptr<float[]>> positionCache_;
    std::shared_ptr<float[]> image_, x_, y_;
    std::int64_t imageCapacity_ = 0, rowCapacity_ = 0;
};

// PyTorch's F.interpolate(mode="bicubic", align_corners=False) of a (channels, inH, inW) grid to
// (outH, outW): without antialiasing (cubic convolution a = -0.75, borders clamped) or with it.
std::vector<float> resizeBicubic(const std::vector<float>& grid, std::int64_t channels, std::int64_t inH, std::int64_t inW, std::int64_t outH,
                                 std::int64_t outW, bool antialias);

}  // namespace lumen::vision
