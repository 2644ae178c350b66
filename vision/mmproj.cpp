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
    return fromGguf(std::make_shared<const GgufFile>(GgufFile::open(path)), backend);
}

std::unique_ptr<Mmproj> Mmproj::fromGguf(std::shared_ptr<const GgufFile> file, inference::Backend& backend) {
    const GgufFile& f = *file;
    const std::string name = f.displayName();
    if (!isMmproj(f)) throw FormatError(name + ": not an mmproj file (general.architecture is \"" + f.getString("general.architecture", "") + "\", not \"clip\")");
    if (!f.getBool("clip.has_vision_encoder", true)) throw FormatError(name + ": the mmproj has no vision encoder");
    const std::string projector = f.getString("clip.projector_type", "mlp");
    if (projector != "mlp")
        throw FormatError(name + ": projector type \"" + projector + "\" is not supported (LLaVA's \"mlp\" is)");
    std::unique_ptr<Mmproj> m(new Mmproj(file, backend));
    if (f.find("clip.vision.image_grid_pinpoints")) {
        const std::string merge = f.getString("clip.vision.mm_patch_merge_type", "flat");
        if (merge != "spatial_unpad") throw FormatError(name + ": patch merge type \"" + merge + "\" with grid pinpoints is not supported (\"spatial_unpad\" is)");
        const auto pins = f.getIntArray("clip.vision.image_grid_pinpoints");
        for (std::size_t i = 0; i + 1 < pins.size(); i += 2) {
            if (pins[i] == 0) break;  // llama.cpp pads the list with zeros
            if (pins[i] < 1 || pins[i] > 8192 || pins[i + 1] < 1 || pins[i + 1] > 8192) throw FormatError(name + ": implausible image_grid_pinpoints");
            m->pinpoints_.emplace_back(static_cast<int>(pins[i]), static_cast<int>(pins[i + 1]));
        }
        if (m->pinpoints_.empty()) throw FormatError(name + ": image_grid_pinpoints is empty");
    }
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
    if (m->anyres()) {
        m->newline_ = tensorView(f, "model.image_newline", {mm2->shape[1]});
        for (const auto& [h, w] : m->pinpoints_)
            if (h % t.imageSize != 0 || w % t.imageSize != 0) throw FormatError(name + ": image_grid_pinpoints must be multiples of the image size");
    }

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
    return std::string(anyres() ? "LLaVA-1.6 (anyres) " : "LLaVA ") + "projector over a CLIP ViT (" + std::to_string(tower_.tower.layers) + " layers, " + std::to_string(tower_.tower.shape.dim) + " wide, " +
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

namespace lumen::vision {
namespace {

// Hugging Face's select_best_resolution: the most of the image's pixels kept, then the least
// padding. Candidates and the result are (height, width).
std::pair<int, int> bestResolution(int height, int width, const std::vector<std::pair<int, int>>& candidates) {
    std::pair<int, int> best = candidates.front();
    std::int64_t bestEffective = -1, bestWasted = 0;
    for (const auto& [h, w] : candidates) {
        const double scale = std::min(static_cast<double>(w) / width, static_cast<double>(h) / height);
        const auto dw = static_cast<std::int64_t>(width * scale), dh = static_cast<std::int64_t>(height * scale);
        const std::int64_t effective = std::min<std::int64_t>(dw * dh, static_cast<std::int64_t>(width) * height);
        const std::int64_t wasted = static_cast<std::int64_t>(w) * h - effective;
        if (effective > bestEffective || (effective == bestEffective && wasted < bestWasted)) {
            bestEffective = effective;
            bestWasted = wasted;
            best = {h, w};
        }
    }
    return best;
}

// get_patch_output_size: the image scaled to fit (height, width), the fitting side exact.
std::pair<int, int> fitInside(int height, int width, std::pair<int, int> target) {
    const double scaleW = static_cast<double>(target.second) / width, scaleH = static_cast<double>(target.first) / height;
    if (scaleW < scaleH) return {std::min(static_cast<int>(std::ceil(height * scaleW)), target.first), target.second};
    return {target.first, std::min(static_cast<int>(std::ceil(width * scaleH)), target.second)};
}

}  // namespace

std::vector<float> Mmproj::encode(const RgbImage& image) {
    if (!anyres()) return encode(preprocess(image, preprocess_));
    const int size = static_cast<int>(tower_.imageSize);
    const auto [bestH, bestW] = bestResolution(image.height, image.width, pinpoints_);
    // The image fitted into the best resolution, centered on black, cut into S x S tiles.
    const auto [fitH, fitW] = fitInside(image.height, image.width, {bestH, bestW});
    const RgbImage fitted = resizeLikePil(image, fitW, fitH, Resample::Bicubic);
    RgbImage canvas{bestW, bestH, std::vector<std::uint8_t>(static_cast<std::size_t>(bestW) * bestH * 3, 0)};
    const int pasteY = (bestH - fitH) / 2, pasteX = (bestW - fitW) / 2;
    for (int y = 0; y < fitH; ++y)
        std::copy_n(fitted.pixels.data() + static_cast<std::size_t>(y) * fitW * 3, static_cast<std::size_t>(fitW) * 3,
                    canvas.pixels.data() + (static_cast<std::size_t>(y + pasteY) * bestW + pasteX) * 3);
    const int tilesY = bestH / size, tilesX = bestW / size;
    const std::int64_t width = outputWidth(), side = tower_.imageSize / tower_.patchSize;
    // The whole image squeezed to S x S comes first.
    std::vector<float> out = encode(preprocess(resizeLikePil(image, size, size, Resample::Bicubic), preprocess_));
    std::vector<std::vector<float>> tiles;
    for (int ty = 0; ty < tilesY; ++ty)
        for (int tx = 0; tx < tilesX; ++tx) {
            RgbImage tile{size, size, std::vector<std::uint8_t>(static_cast<std::size_t>(size) * size * 3)};
            for (int y = 0; y < size; ++y)
                std::copy_n(canvas.pixels.data() + (static_cast<std::size_t>(ty * size + y) * bestW + tx * size) * 3, static_cast<std::size_t>(size) * 3,
                            tile.pixels.data() + static_cast<std::size_t>(y) * size * 3);
            tiles.push_back(encode(preprocess(tile, preprocess_)));
        }
    // The tiles' patch rows on one grid, the padding rows or columns cut (unpad_image), a newline
    // embedding after each grid row.
    const std::int64_t gridH = tilesY * side, gridW = tilesX * side;
    std::int64_t y0 = 0, y1 = gridH, x0 = 0, x1 = gridW;
    const double originalAspect = static_cast<double>(image.width) / image.height, currentAspect = static_cast<double>(gridW) / static_cast<double>(gridH);
    if (originalAspect > currentAspect) {
        const double scale = static_cast<double>(gridW) / image.width;
        const auto kept = static_cast<std::int64_t>(std::round(image.height * scale * 1e7) / 1e7);
        y0 = (gridH - kept) / 2;
        y1 = gridH - y0;
    } else {
        const double scale = static_cast<double>(gridH) / image.height;
        const auto kept = static_cast<std::int64_t>(std::round(image.width * scale * 1e7) / 1e7);
        x0 = (gridW - kept) / 2;
        x1 = gridW - x0;
    }
    const std::vector<float> newline = toFloats(newline_);
    for (std::int64_t gy = y0; gy < y1; ++gy) {
        for (std::int64_t gx = x0; gx < x1; ++gx) {
            const std::vector<float>& tile = tiles[static_cast<std::size_t>((gy / side) * tilesX + gx / side)];
            const float* row = tile.data() + ((gy % side) * side + gx % side) * width;
            out.insert(out.end(), row, row + width);
        }
        out.insert(out.end(), newline.begin(), newline.end());
    }
    return out;
}

}  // namespace lumen::vision
