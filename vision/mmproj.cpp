#include "vision/mmproj.h"

#include <cmath>

namespace lumen::vision {
namespace {

using inference::FormatError;
using inference::GgufFile;
using inference::tensorView;

}  // namespace

bool Mmproj::isMmproj(const GgufFile& file) { return file.getString("general.architecture", "") == "clip"; }

std::unique_ptr<Mmproj> Mmproj::load(const std::filesystem::path& path, inference::Backend& backend) {
    auto file = std::make_shared<const GgufFile>(GgufFile::open(path));
    const GgufFile& f = *file;
    const std::string name = f.displayName();
    if (!isMmproj(f)) throw FormatError(name + ": not an mmproj file (general.architecture is \"" + f.getString("general.architecture", "") + "\", not \"clip\")");
    if (!f.getBool("clip.has_vision_encoder", true)) throw FormatError(name + ": the mmproj has no vision encoder");
    const std::string projector = f.getString("clip.projector_type", "mlp");
    if (projector != "mlp")
        throw FormatError(name + ": projector type \"" + projector + "\" is not supported (LLaVA's \"mlp\" is)");
    if (f.find("clip.vision.image_grid_pinpoints") && f.getString("clip.vision.mm_patch_merge_type", "flat") == "spatial_unpad")
        throw FormatError(name + ": LLaVA-1.6 \"anyres\" image tiling (image_grid_pinpoints, spatial_unpad) is not supported; LLaVA-1.5-style mmproj files are");
    std::unique_ptr<Mmproj> m(new Mmproj(file, backend));
    ClipVisionTower& t = m->tower_;
    const std::int64_t dim = f.getInt("clip.vision.embedding_length"), ffn = f.getInt("clip.vision.feed_forward_length");
    t.imageSize = f.getInt("clip.vision.image_size");
    t.patchSize = f.getInt("clip.vision.patch_size");
    if (dim <= 0 || ffn <= 0 || t.patchSize <= 0 || t.imageSize < t.patchSize || t.imageSize > 8192)
        throw FormatError(name + ": implausible clip.vision sizes (embedding_length, feed_forward_length, image_size, patch_size)");
    const std::int64_t grid = t.imageSize / t.patchSize;
    t.tower.layers = f.getInt("clip.vision.block_count");
    if (t.tower.layers <= 0 || t.tower.layers > 1000) throw FormatError(name + ": clip.vision.block_count is implausible");
    t.tower.shape.dim = dim;
    t.tower.shape.heads = f.getInt("clip.vision.attention.head_count");
    if (t.tower.shape.heads <= 0 || dim % t.tower.shape.heads != 0) throw FormatError(name + ": the width does not split into the attention heads");
    t.tower.shape.intermediate = ffn;
    t.tower.shape.eps = static_cast<float>(f.getFloat("clip.vision.attention.layer_norm_epsilon", 1e-5));
    t.tower.shape.act = f.getBool("clip.use_gelu", false) ? GeluKind::Erf : GeluKind::Quick;
    t.patchWeight = tensorView(f, "v.patch_embd.weight", {t.patchSize, t.patchSize, 3, dim});
    t.patchWeight.ne = {3 * t.patchSize * t.patchSize, dim, 1, 1};  // each output channel's (c, y, x) kernel as one row
    t.patchBias = tensorView(f, "v.patch_embd.bias", {dim}, true);
    t.classEmbedding = tensorView(f, "v.class_embd", {dim});
    t.positions = tensorView(f, "v.position_embd.weight", {dim, grid * grid + 1});
    t.preNorm = tensorView(f, "v.pre_ln.weight", {dim});
    t.preNormBias = tensorView(f, "v.pre_ln.bias", {dim});
    for (std::int64_t i = 0; i < t.tower.layers; ++i) {
        const std::string p = "v.blk." + std::to_string(i) + ".";
        VitLayer l;
        l.norm1 = tensorView(f, p + "ln1.weight", {dim});
        l.norm1Bias = tensorView(f, p + "ln1.bias", {dim});
        l.q = tensorView(f, p + "attn_q.weight", {dim, dim});
        l.qBias = tensorView(f, p + "attn_q.bias", {dim});
        l.k = tensorView(f, p + "attn_k.weight", {dim, dim});
        l.kBias = tensorView(f, p + "attn_k.bias", {dim});
        l.v = tensorView(f, p + "attn_v.weight", {dim, dim});
        l.vBias = tensorView(f, p + "attn_v.bias", {dim});
        l.out = tensorView(f, p + "attn_out.weight", {dim, dim});
        l.outBias = tensorView(f, p + "attn_out.bias", {dim});
        l.norm2 = tensorView(f, p + "ln2.weight", {dim});
        l.norm2Bias = tensorView(f, p + "ln2.bias", {dim});
        // The first MLP layer reads dim values; which name it carries depends on the converter.
        const auto* up = f.findTensor(p + "ffn_up.weight");
        const bool upFirst = up && !up->shape.empty() && up->shape[0] == dim;
        const std::string first = upFirst ? "ffn_up" : "ffn_down", second = upFirst ? "ffn_down" : "ffn_up";
        l.fc1 = tensorView(f, p + first + ".weight", {dim, ffn});
        l.fc1Bias = tensorView(f, p + first + ".bias", {ffn});
        l.fc2 = tensorView(f, p + second + ".weight", {ffn, dim});
        l.fc2Bias = tensorView(f, p + second + ".bias", {dim});
        t.tower.weights.push_back(std::move(l));
    }
    const auto* mm0 = f.findTensor("mm.0.weight");
    if (!mm0 || mm0->shape.size() < 2) throw FormatError(name + ": tensor 'mm.0.weight' is missing (the LLaVA projector)");
    const std::int64_t hidden = mm0->shape[1];
    m->mm0_ = tensorView(f, "mm.0.weight", {dim, hidden});
    m->mm0Bias_ = tensorView(f, "mm.0.bias", {hidden});
    const auto* mm2 = f.findTensor("mm.2.weight");
    if (!mm2 || mm2->shape.size() < 2) throw FormatError(name + ": tensor 'mm.2.weight' is missing (the LLaVA projector)");
    m->mm2_ = tensorView(f, "mm.2.weight", {hidden, mm2->shape[1]});
    m->mm2Bias_ = tensorView(f, "mm.2.bias", {mm2->shape[1]});

    // Preprocessing as LLaVA's CLIPImageProcessor: short side to S (bicubic), center crop S.
    m->preprocess_ = PreprocessConfig::clip(static_cast<int>(t.imageSize));
    if (f.find("clip.vision.image_mean")) {
        const auto mean = f.getFloatArray("clip.vision.image_mean"), std = f.getFloatArray("clip.vision.image_std");
        if (mean.size() != 3 || std.size() != 3) throw FormatError(name + ": clip.vision.image_mean and image_std need 3 values each");
        for (int c = 0; c < 3; ++c) {
            if (!(std[static_cast<std::size_t>(c)] > 0.0f)) throw FormatError(name + ": clip.vision.image_std must be positive");
            m->preprocess_.mean[static_cast<std::size_t>(c)] = mean[static_cast<std::size_t>(c)];
            m->preprocess_.std[static_cast<std::size_t>(c)] = std[static_cast<std::size_t>(c)];
        }
    }
    m->runner_ = std::make_unique<ClipVisionRunner>(backend, m->tower_);
    return m;
}

std::string Mmproj::description() const {
    return "LLaVA projector over a CLIP ViT (" + std::to_string(tower_.tower.layers) + " layers, " + std::to_string(tower_.tower.shape.dim) + " wide, " +
           std::to_string(tower_.imageSize) + " px) -> " + std::to_string(imageRows()) + " rows of " + std::to_string(outputWidth());
}

void Mmproj::checkFits(std::int64_t llmWidth, const std::string& llmName) const {
    if (llmWidth != outputWidth())
        throw FormatError(file_->displayName() + ": this mmproj is for a " + std::to_string(outputWidth()) + "-wide model; " + llmName + " is " +
                          std::to_string(llmWidth) + "-wide (they are not a pair)");
}

std::vector<float> Mmproj::encode(const PixelTensor& pixels) {
    std::lock_guard lock(mutex_);
    const std::int64_t dim = tower_.tower.shape.dim, rows = imageRows(), hidden = mm0_.rows(), width = outputWidth();
    float* h = runner_->run(pixels, tower_.tower.layers);
    if (!hidden_) {
        hidden_ = backend_.alloc(rows * hidden);
        out_ = backend_.alloc(rows * width);
    }
    // The patch rows (the class token dropped) through the two-layer projector.
    backend_.matmul(mm0_, h + dim, rows, hidden_.get());
    backend_.addBias(hidden_.get(), mm0Bias_, hidden, rows);
    backend_.gelu(hidden_.get(), rows * hidden, GeluKind::Erf);
    backend_.matmul(mm2_, hidden_.get(), rows, out_.get());
    backend_.addBias(out_.get(), mm2Bias_, width, rows);
    std::vector<float> result(static_cast<std::size_t>(rows * width));
    backend_.download(out_.get(), result.data(), rows * width);
    return result;
}

}  // namespace lumen::vision
