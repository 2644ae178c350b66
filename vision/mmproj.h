#pragma once
// llama.cpp's "mmproj" GGUF: a CLIP vision tower and the projector that turns its patch features
// into rows of an LLM's input embeddings (LLaVA 1.5, BakLLaVA, ShareGPT4V and others of that shape).
//
// Metadata: general.architecture = "clip", clip.has_vision_encoder, clip.has_llava_projector,
//   clip.projector_type ("mlp"), clip.use_gelu (GELU, else quick GELU), clip.vision.image_size,
//   .patch_size, .embedding_length, .feed_forward_length, .block_count, .attention.head_count,
//   .attention.layer_norm_epsilon, .image_mean, .image_std
// Tensors (ggml order):
//   v.patch_embd.weight (P, P, 3, dim) [+ v.patch_embd.bias], v.class_embd (dim),
//   v.position_embd.weight (dim, (S/P)^2 + 1), v.pre_ln.{weight,bias},
//   v.blk.N.{ln1, attn_q, attn_k, attn_v, attn_out, ln2, ffn_up, ffn_down}.{weight,bias}
//     (converters disagree on which of ffn_up/ffn_down is the first MLP layer: the shapes decide),
//   mm.0.{weight,bias} (dim -> llm), mm.2.{weight,bias} (llm -> llm)
//
// LLaVA reads the second-to-last layer of its CLIP tower; llama.cpp's converter drops the last
// layer, so every stored layer is run, the class token dropped, and the rest projected:
//   rows = (S/P)^2, each mm.2(gelu(mm.0(h) + b0)) + b2, GELU exact as Hugging Face's LLaVA.
// LLaVA-1.6 ("anyres": clip.vision.image_grid_pinpoints, mm_patch_merge_type "spatial_unpad",
// model.image_newline) tiles larger images as Hugging Face's LlavaNext does: the best of the
// pinpoint resolutions, the image resized into it and padded black, S x S tiles, plus the whole
// image resized to S x S first.

#include <filesystem>
#include <memory>
#include <mutex>

#include "inference/formats/gguf.h"
#include "vision/clip_vision.h"

namespace lumen::vision {

class Mmproj {
public:
    // FormatError naming the file on anything it cannot use.
    static std::unique_ptr<Mmproj> load(const std::filesystem::path& file, inference::Backend& backend);
    // The same from a parsed file (tests, fuzzing).
    static std::unique_ptr<Mmproj> fromGguf(std::shared_ptr<const inference::GgufFile> file, inference::Backend& backend);
    // Whether a GGUF is an mmproj (general.architecture "clip").
    static bool isMmproj(const inference::GgufFile& file);

    std::string description() const;
    const PreprocessConfig& preprocessConfig() const { return preprocess_; }
    std::int64_t outputWidth() const { return mm2_.rows(); }          // the LLM's embedding width
    std::int64_t imageRows() const { return tower_.rows() - 1; }      // embeddings per tile (and per image without anyres)
    bool anyres() const { return !pinpoints_.empty(); }
    // FormatError "this mmproj is for a 4096-wide model; the LLM is 2048-wide" when they differ.
    void checkFits(std::int64_t llmWidth, const std::string& llmName) const;

    // One S x S tile: imageRows() x outputWidth() floats, host memory.
    std::vector<float> encode(const PixelTensor& pixels);
    // An image: one tile as above, or with anyres (LLaVA-1.6) the whole image resized to S x S
    // followed by its tiles' rows arranged spatially, the padding cut away and the newline
    // embedding after each row: (rows x outputWidth()) floats, rows depending on the image.
    std::vector<float> encode(const RgbImage& image);

private:
    Mmproj(std::shared_ptr<const inference::GgufFile> file, inference::Backend& backend) : file_(std::move(file)), backend_(backend) {}

    std::shared_ptr<const inference::GgufFile> file_;
    inference::Backend& backend_;
    std::mutex mutex_;
    ClipVisionTower tower_;
    PreprocessConfig preprocess_;
    Tensor mm0_, mm0Bias_, mm2_, mm2Bias_;
    Tensor newline_;                                // (outputWidth) anyres only
    std::vector<std::pair<int, int>> pinpoints_;    // anyres resolutions, (height, width)
    std::unique_ptr<ClipVisionRunner> runner_;
    std::shared_ptr<float[]> hidden_, out_;
};

}  // namespace lumen::vision
