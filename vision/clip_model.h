#pragma once
// CLIP (Radford et al. 2021) as Hugging Face's CLIPModel stores it.
//
// Vision: image (3, S, S) -> patches (S/P)^2 x (3 P P) -> patch_embedding (dim, 3, P, P), no bias
//   [class_embedding (dim); patches] + position_embedding ((S/P)^2 + 1, dim) -> pre_layrnorm
//   -> layers -> post_layernorm on the class token -> visual_projection (proj, dim)
// Text: ids (<= 77) -> token_embedding (vocab, dim) + position_embedding (77, dim) -> causal
//   layers -> final_layer_norm -> the end token's row -> text_projection (proj, dim)
// Layers (vision_model.encoder.layers.N. / text_model.encoder.layers.N.): layer_norm1,
//   self_attn.{q,k,v,out}_proj (dim, dim) with biases, layer_norm2, mlp.fc1 (inter, dim),
//   mlp.fc2 (dim, inter); activation quick_gelu (OpenAI) or gelu per config.
// logit_scale: a scalar; similarities are multiplied by exp(logit_scale) (100 in OpenAI's).

#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string_view>

#include "inference/formats/safetensors.h"
#include "vision/clip_tokenizer.h"
#include "vision/clip_vision.h"
#include "vision/vision_model.h"
#include "vision/vit.h"

namespace lumen::vision {

class ClipModel final : public ImageEncoder {
public:
    // FormatError naming the file and tensor on anything missing or inconsistent.
    static std::unique_ptr<ClipModel> load(const std::filesystem::path& folder, inference::Backend& backend);

    std::string description() const override;
    const PreprocessConfig& preprocessConfig() const override { return preprocess_; }
    std::vector<float> embedImage(const PixelTensor& pixels) override;
    std::int64_t embeddingSize() const override { return projectionDim_; }
    using ImageEncoder::embedImage;

    // Every token's hidden state after the first `layers` layers (rows x dim), before the post
    // layer norm: what a LLaVA projector reads (layers = count - 1: the second-to-last).
    std::vector<float> imageHiddenStates(const PixelTensor& pixels, std::int64_t layers);

    bool hasText() const { return textLayers_.layers > 0; }
    const ClipTokenizer& tokenizer() const;
    // The projected text embedding (not normalized) of token ids with their markers.
    std::vector<float> embedTokens(std::span<const std::int32_t> ids);
    std::vector<float> embedText(std::string_view text) { return embedTokens(tokenizer().tokenize(text, static_cast<int>(textPositions_))); }
    // exp(logit_scale): the multiplier of cosine similarities.
    float logitScale() const { return logitScale_; }

    const ClipTower& vision() const { return vision_.tower; }
    std::int64_t imageSize() const { return vision_.imageSize; }
    std::int64_t patchSize() const { return vision_.patchSize; }

private:
    ClipModel(inference::SafetensorsModel file, inference::Backend& backend) : file_(std::move(file)), backend_(backend) {}
    float* constant(std::shared_ptr<float[]>& slot, const std::vector<float>& values);

    inference::SafetensorsModel file_;
    inference::Backend& backend_;
    std::mutex mutex_;
    PreprocessConfig preprocess_;
    std::optional<ClipTokenizer> tokenizer_;
    ClipVisionTower vision_;
    ClipTower textLayers_;
    std::int64_t projectionDim_ = 0, textPositions_ = 0;
    float logitScale_ = 100.0f;
    Tensor postNorm_, postNormBias_, visualProjection_;
    Tensor tokenEmbedding_, textPositionTable_, finalNorm_, finalNormBias_, textProjection_;
    std::unique_ptr<ClipVisionRunner> visionRunner_;
    std::unique_ptr<VitRunner> textRunner_;
    std::shared_ptr<float[]> textX_, pooled_, out_, textConstants_;
};

}  // namespace lumen::vision
