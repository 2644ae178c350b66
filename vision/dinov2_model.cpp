#include "vision/dinov2_model.h"

#include <cmath>

#include "inference/formats/format_error.h"

namespace lumen::vision {
namespace {

using inference::FormatError;

// PyTorch's cubic convolution with A = -0.75, for |x| <= 1 and 1 < |x| < 2.
float cubic1(float x, float a) { return ((a + 2) * x - (a + 3)) * x * x + 1; }
float cubic2(float x, float a) { return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a; }

// The antialiased filter: PIL's bicubic (a = -0.5).
double aaCubic(double x) {
    constexpr double a = -0.5;
    x = std::abs(x);
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

// One antialiased pass along a dimension of `size` -> `out`: taps per output index.
struct AaTaps {
    std::vector<std::int64_t> first, count;
    std::vector<std::vector<double>> weights;
};

AaTaps aaTaps(std::int64_t in, std::int64_t out) {
    AaTaps t;
    const double scale = static_cast<double>(static_cast<float>(in) / static_cast<float>(out));
    const double support = scale >= 1.0 ? 2.0 * scale : 2.0;
    const double invScale = scale >= 1.0 ? 1.0 / scale : 1.0;
    for (std::int64_t i = 0; i < out; ++i) {
        const double center = scale * (i + 0.5);
        const auto xmin = std::max<std::int64_t>(static_cast<std::int64_t>(center - support + 0.5), 0);
        const std::int64_t xsize = std::min<std::int64_t>(static_cast<std::int64_t>(center + support + 0.5), in) - xmin;
        std::vector<double> w(static_cast<std::size_t>(std::max<std::int64_t>(xsize, 0)));
        double total = 0.0;
        for (std::int64_t j = 0; j < xsize; ++j) total += (w[static_cast<std::size_t>(j)] = aaCubic((j + xmin - center + 0.5) * invScale));
        if (total != 0.0)
            for (double& v : w) v /= total;
        t.first.push_back(xmin);
        t.count.push_back(xsize);
        t.weights.push_back(std::move(w));
    }
    return t;
}

}  // namespace

std::vector<float> resizeBicubic(const std::vector<float>& grid, std::int64_t channels, std::int64_t inH, std::int64_t inW, std::int64_t outH,
                                 std::int64_t outW, bool antialias) {
    std::vector<float> out(static_cast<std::size_t>(channels * outH * outW));
    if (antialias) {
        // Width first, then height, in float between the passes (as PyTorch's separable kernel).
        const AaTaps tx = aaTaps(inW, outW), ty = aaTaps(inH, outH);
        std::vector<float> mid(static_cast<std::size_t>(channels * inH * outW));
        for (std::int64_t c = 0; c < channels; ++c)
            for (std::int64_t y = 0; y < inH; ++y)
                for (std::int64_t x = 0; x < outW; ++x) {
                    double s = 0.0;
                    for (std::int64_t j = 0; j < tx.count[static_cast<std::size_t>(x)]; ++j)
                        s += tx.weights[static_cast<std::size_t>(x)][static_cast<std::size_t>(j)] *
                             grid[static_cast<std::size_t>((c * inH + y) * inW + tx.first[static_cast<std::size_t>(x)] + j)];
                    mid[static_cast<std::size_t>((c * inH + y) * outW + x)] = static_cast<float>(s);
                }
        for (std::int64_t c = 0; c < channels; ++c)
            for (std::int64_t y = 0; y < outH; ++y)
                for (std::int64_t x = 0; x < outW; ++x) {
                    double s = 0.0;
                    for (std::int64_t j = 0; j < ty.count[static_cast<std::size_t>(y)]; ++j)
                        s += ty.weights[static_cast<std::size_t>(y)][static_cast<std::size_t>(j)] *
                             mid[static_cast<std::size_t>((c * inH + ty.first[static_cast<std::size_t>(y)] + j) * outW + x)];
                    out[static_cast<std::size_t>((c * outH + y) * outW + x)] = static_cast<float>(s);
                }
        return out;
    }
    constexpr float a = -0.75f;
    const float scaleH = static_cast<float>(inH) / static_cast<float>(outH), scaleW = static_cast<float>(inW) / static_cast<float>(outW);
    const auto at = [&](std::int64_t c, std::int64_t y, std::int64_t x) {
        y = std::clamp<std::int64_t>(y, 0, inH - 1);
        x = std::clamp<std::int64_t>(x, 0, inW - 1);
        return grid[static_cast<std::size_t>((c * inH + y) * inW + x)];
    };
    const auto coefficients = [&](float t, float (&k)[4]) {
        k[0] = cubic2(t + 1.0f, a);
        k[1] = cubic1(t, a);
        k[2] = cubic1(1.0f - t, a);
        k[3] = cubic2(2.0f - t, a);
    };
    for (std::int64_t y = 0; y < outH; ++y) {
        const float realY = scaleH * (static_cast<float>(y) + 0.5f) - 0.5f;
        const auto iy = static_cast<std::int64_t>(std::floor(realY));
        float ky[4];
        coefficients(realY - static_cast<float>(iy), ky);
        for (std::int64_t x = 0; x < outW; ++x) {
            const float realX = scaleW * (static_cast<float>(x) + 0.5f) - 0.5f;
            const auto ix = static_cast<std::int64_t>(std::floor(realX));
            float kx[4];
            coefficients(realX - static_cast<float>(ix), kx);
            for (std::int64_t c = 0; c < channels; ++c) {
                float rowsValue[4];
                for (int r = 0; r < 4; ++r) {
                    rowsValue[r] = 0.0f;
                    for (int q = 0; q < 4; ++q) rowsValue[r] += at(c, iy - 1 + r, ix - 1 + q) * kx[q];
                }
                float v = 0.0f;
                for (int r = 0; r < 4; ++r) v += rowsValue[r] * ky[r];
                out[static_cast<std::size_t>((c * outH + y) * outW + x)] = v;
            }
        }
    }
    return out;
}

std::unique_ptr<Dinov2Model> Dinov2Model::load(const std::filesystem::path& folder, inference::Backend& backend) {
    const nlohmann::json config = readConfigJson(folder);
    const std::string file = (folder / "config.json").string();
    std::unique_ptr<Dinov2Model> m(new Dinov2Model(inference::SafetensorsModel::open(folder), backend));
    const auto& f = m->file_;
    // Classification checkpoints keep the backbone under "dinov2."
    const std::string p = f.find("dinov2.embeddings.cls_token") ? "dinov2." : "";
    const auto* patch = f.find(p + "embeddings.patch_embeddings.projection.weight");
    if (!patch) throw FormatError(folder.string() + ": no embeddings.patch_embeddings.projection.weight: not a DINOv2 model");
    if (patch->shape.size() != 4 || patch->shape[1] != 3 || patch->shape[2] != patch->shape[3] || patch->shape[2] <= 0)
        throw FormatError(patch->name + ": expected shape (dim, 3, P, P)");
    const std::int64_t dim = patch->shape[0];
    m->patchSize_ = patch->shape[2];
    if (configInt(config, "patch_size", m->patchSize_, 1, 1024, file) != m->patchSize_) throw FormatError(file + ": patch_size disagrees with the weights");
    if (configBool(config, "use_swiglu_ffn", false, file)) throw FormatError(file + ": the SwiGLU MLP (ViT-g) is not supported");
    m->patchWeight_ = weightView(f, patch->name, 3 * m->patchSize_ * m->patchSize_);
    m->patchBias_ = weightView(f, p + "embeddings.patch_embeddings.projection.bias", 0, dim);
    m->clsToken_ = weightView(f, p + "embeddings.cls_token", 0, dim);
    m->positionTable_ = weightView(f, p + "embeddings.position_embeddings", dim);
    m->grid_ = static_cast<std::int64_t>(std::llround(std::sqrt(static_cast<double>(m->positionTable_.rows() - 1))));
    if (m->grid_ * m->grid_ + 1 != m->positionTable_.rows())
        throw FormatError(m->positionTable_.name + ": " + std::to_string(m->positionTable_.rows()) + " positions is not a square grid plus the class token");
    m->registers_ = configInt(config, "num_register_tokens", 0, 0, 1024, file);
    if (m->registers_ > 0) m->registerTokens_ = weightView(f, p + "embeddings.register_tokens", dim, m->registers_ * dim);
    m->antialias_ = configString(config, "model_type", "", file) == "dinov2_with_registers";
    m->norm_ = weightView(f, p + "layernorm.weight", 0, dim);
    m->normBias_ = weightView(f, p + "layernorm.bias", 0, dim);

    std::int64_t stored = 0;
    while (f.find(p + "encoder.layer." + std::to_string(stored) + ".norm1.weight")) ++stored;
    const std::int64_t count = configInt(config, "num_hidden_layers", stored, 1, 1000, file);
    if (count > stored || count == 0) throw FormatError(file + ": num_hidden_layers is " + std::to_string(count) + " but the weights hold " + std::to_string(stored));
    m->shape_.dim = dim;
    m->shape_.heads = configInt(config, "num_attention_heads", 12, 1, 4096, file);
    if (dim % m->shape_.heads != 0) throw FormatError(file + ": hidden size " + std::to_string(dim) + " does not split into " + std::to_string(m->shape_.heads) + " heads");
    m->shape_.eps = static_cast<float>(configNumber(config, "layer_norm_eps", 1e-6, file));
    m->shape_.act = activation(config, "hidden_act", "gelu", file);
    static const VitLayerNames names{"norm1", "attention.attention.query", "attention.attention.key", "attention.attention.value",
                                     "attention.output.dense", "norm2", "mlp.fc1", "mlp.fc2", "layer_scale1.lambda1", "layer_scale2.lambda1"};
    for (std::int64_t i = 0; i < count; ++i) m->layers_.push_back(loadVitLayer(f, p + "encoder.layer." + std::to_string(i) + ".", names, dim));
    m->shape_.intermediate = m->layers_.front().fc1.rows();
    const auto configPath = folder / "preprocessor_config.json";
    m->preprocess_ = std::filesystem::exists(configPath) ? PreprocessConfig::load(configPath, PreprocessConfig::dinov2()) : PreprocessConfig::dinov2();
    const bool cropped = m->preprocess_.doCenterCrop;
    const int h = cropped ? m->preprocess_.cropHeight : m->preprocess_.resizeHeight, w = cropped ? m->preprocess_.cropWidth : m->preprocess_.resizeWidth;
    if (h < m->patchSize_ || w < m->patchSize_ || (m->preprocess_.shortestEdge > 0 && !cropped))
        throw FormatError(configPath.string() + ": must give images of a fixed size of at least one patch (" + std::to_string(m->patchSize_) + " pixels)");
    m->runner_ = std::make_unique<VitRunner>(backend, m->shape_);
    return m;
}

std::string Dinov2Model::description() const {
    const char* size = shape_.dim >= 1536 ? "g" : shape_.dim >= 1024 ? "L" : shape_.dim >= 768 ? "B" : "S";
    return std::string("DINOv2 ViT-") + size + "/" + std::to_string(patchSize_) + (registers_ ? " with " + std::to_string(registers_) + " registers" : "") + " (" +
           std::to_string(layers_.size()) + " layers, " + std::to_string(shape_.dim) + " wide)";
}

const float* Dinov2Model::positions(std::int64_t gridH, std::int64_t gridW) {
    auto& slot = positionCache_[{gridH, gridW}];
    if (slot) return slot.get();
    // Rows: the class token (cls_token + its position), the registers (no position), the patches
    // (their positions, resized to this grid when it differs from the trained one).
    const std::int64_t dim = shape_.dim, rows = 1 + registers_ + gridH * gridW;
    const std::vector<float> table = toFloats(positionTable_), cls = toFloats(clsToken_);
    std::vector<float> host(static_cast<std::size_t>(rows * dim), 0.0f);
    for (std::int64_t i = 0; i < dim; ++i) host[static_cast<std::size_t>(i)] = cls[static_cast<std::size_t>(i)] + table[static_cast<std::size_t>(i)];
    if (registers_ > 0) {
        const std::vector<float> regs = toFloats(registerTokens_);
        std::copy(regs.begin(), regs.end(), host.begin() + dim);
    }
    float* patches = host.data() + (1 + registers_) * dim;
    if (gridH == grid_ && gridW == grid_) {
        std::copy(table.begin() + dim, table.end(), patches);
    } else {
        // (grid*grid, dim) -> (dim, grid, grid) -> resized -> back to rows of dim.
        std::vector<float> planes(static_cast<std::size_t>(dim * grid_ * grid_));
        for (std::int64_t pos = 0; pos < grid_ * grid_; ++pos)
            for (std::int64_t c = 0; c < dim; ++c) planes[static_cast<std::size_t>(c * grid_ * grid_ + pos)] = table[static_cast<std::size_t>((1 + pos) * dim + c)];
        const std::vector<float> resized = resizeBicubic(planes, dim, grid_, grid_, gridH, gridW, antialias_);
        for (std::int64_t pos = 0; pos < gridH * gridW; ++pos)
            for (std::int64_t c = 0; c < dim; ++c) patches[pos * dim + c] = resized[static_cast<std::size_t>(c * gridH * gridW + pos)];
    }
    slot = backend_.alloc(rows * dim);
    backend_.upload(host.data(), slot.get(), rows * dim);
    return slot.get();
}

Dinov2Output Dinov2Model::run(const PixelTensor& pixels) {
    if (pixels.channels != 3 || pixels.height < patchSize_ || pixels.width < patchSize_ ||
        pixels.data.size() != static_cast<std::size_t>(3) * pixels.height * pixels.width)
        throw std::invalid_argument("DINOv2 takes 3 x H x W pixels, H and W at least one patch");
    std::lock_guard lock(mutex_);
    const std::int64_t dim = shape_.dim, gridH = pixels.height / patchSize_, gridW = pixels.width / patchSize_;
    const std::int64_t patches = gridH * gridW, rows = 1 + registers_ + patches;
    // Pixels beyond the last whole patch are dropped, as the strided convolution does.
    std::vector<float> cropped(static_cast<std::size_t>(3 * gridH * patchSize_ * gridW * patchSize_));
    for (int c = 0; c < 3; ++c)
        for (std::int64_t y = 0; y < gridH * patchSize_; ++y)
            std::copy_n(pixels.data.begin() + (c * pixels.height + y) * pixels.width, gridW * patchSize_,
                        cropped.begin() + (c * gridH * patchSize_ + y) * gridW * patchSize_);
    const float* table = positions(gridH, gridW);
    // Buffers kept between images (grown for a larger one).
    const auto pixelCount = static_cast<std::int64_t>(cropped.size());
    if (pixelCount > imageCapacity_) {
        image_ = backend_.alloc(pixelCount);
        imageCapacity_ = pixelCount;
    }
    if (rows > rowCapacity_) {
        x_ = backend_.alloc(rows * dim);
        y_ = backend_.alloc(rows * dim);
        rowCapacity_ = rows;
    }
    float* x = x_.get();
    backend_.upload(cropped.data(), image_.get(), pixelCount);
    // The class and register rows start at zero: the table adds their values.
    const std::vector<float> zeros(static_cast<std::size_t>((1 + registers_) * dim), 0.0f);
    backend_.upload(zeros.data(), x, (1 + registers_) * dim);
    backend_.patchEmbed(image_.get(), 3, gridH * patchSize_, gridW * patchSize_, patchSize_, patchWeight_, patchBias_, x + (1 + registers_) * dim);
    backend_.add(x, table, rows * dim);
    for (std::size_t l = 0; l < layers_.size(); ++l) runner_->block(layers_[l], x, rows, static_cast<int>(l));
    backend_.layerNorm(x, norm_, normBias_, shape_.eps, dim, rows, y_.get());
    std::vector<float> host(static_cast<std::size_t>(rows * dim));
    backend_.download(y_.get(), host.data(), rows * dim);
    Dinov2Output out;
    out.cls.assign(host.begin(), host.begin() + dim);
    out.patchMean.assign(static_cast<std::size_t>(dim), 0.0f);
    for (std::int64_t r = 1 + registers_; r < rows; ++r)
        for (std::int64_t c = 0; c < dim; ++c) out.patchMean[static_cast<std::size_t>(c)] += host[static_cast<std::size_t>(r * dim + c)];
    for (float& v : out.patchMean) v /= static_cast<float>(patches);
    return out;
}

std::vector<float> Dinov2Model::embedImage(const PixelTensor& pixels) {
    Dinov2Output out = run(pixels);
    out.cls.insert(out.cls.end(), out.patchMean.begin(), out.patchMean.end());
    requireUnchanged(file_);
    inference::requireFinite(out.cls, "the image embedding");
    return out.cls;
}

}  // namespace lumen::vision
