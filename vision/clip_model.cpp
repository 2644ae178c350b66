#include "vision/clip_model.h"

#include <cmath>

#include "inference/formats/format_error.h"

namespace lumen::vision {
namespace {

using inference::FormatError;

// The layers under `prefix` ("vision_model.encoder.layers."), `count` of them.
std::vector<VitLayer> layerWeights(const inference::SafetensorsModel& f, const std::string& prefix, std::int64_t count, std::int64_t dim) {
    static const VitLayerNames names{"layer_norm1", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj",
                                     "layer_norm2", "mlp.fc1", "mlp.fc2", "", ""};
    std::vector<VitLayer> layers;
    for (std::int64_t i = 0; i < count; ++i) layers.push_back(loadVitLayer(f, prefix + std::to_string(i) + ".", names, dim));
    return layers;
}

std::int64_t countLayers(const inference::SafetensorsModel& f, const std::string& prefix) {
    std::int64_t n = 0;
    while (f.find(prefix + std::to_string(n) + ".layer_norm1.weight")) ++n;
    return n;
}

// One tower's shape from its config section and its weights.
ClipTower tower(const inference::SafetensorsModel& f, const nlohmann::json& cfg, const std::string& prefix, std::int64_t dim,
                std::int64_t defaultHeads, bool causal, const std::string& file) {
    ClipTower t;
    const std::int64_t stored = countLayers(f, prefix);
    t.layers = configInt(cfg, "num_hidden_layers", stored, 1, 1000, file);
    if (t.layers > stored)
        throw FormatError(file + ": num_hidden_layers is " + std::to_string(t.layers) + " but the weights hold " + std::to_string(stored) + " layers under " + prefix);
    t.shape.dim = dim;
    t.shape.heads = configInt(cfg, "num_attention_heads", defaultHeads, 1, 4096, file);
    if (dim % t.shape.heads != 0) throw FormatError(file + ": hidden size " + std::to_string(dim) + " does not split into " + std::to_string(t.shape.heads) + " heads");
    t.shape.eps = static_cast<float>(configNumber(cfg, "layer_norm_eps", 1e-5, file));
    t.shape.act = activation(cfg, "hidden_act", "quick_gelu", file);
    t.shape.causal = causal;
    t.weights = layerWeights(f, prefix, t.layers, dim);
    t.shape.intermediate = t.weights.front().fc1.rows();
    return t;
}

}  // namespace

std::unique_ptr<ClipModel> ClipModel::load(const std::filesystem::path& folder, inference::Backend& backend) {
    const nlohmann::json config = readConfigJson(folder);
    const std::string file = (folder / "config.json").string();
    std::unique_ptr<ClipModel> m(new ClipModel(inference::SafetensorsModel::open(folder), backend));
    const auto& f = m->file_;
    const nlohmann::json visionCfg = config.contains("vision_config") ? config["vision_config"] : config;
    const nlohmann::json textCfg = config.contains("text_config") ? config["text_config"] : nlohmann::json::object();
    if (!visionCfg.is_object() || !textCfg.is_object()) throw FormatError(file + ": vision_config and text_config must be objects");

    // Vision: the patch embedding's shape gives width and patch size; the position table the grid.
    const auto* patch = f.find("vision_model.embeddings.patch_embedding.weight");
    if (!patch) throw FormatError(folder.string() + ": no vision_model.embeddings.patch_embedding.weight: not a CLIP vision model");
    if (patch->shape.size() != 4 || patch->shape[1] != 3 || patch->shape[2] != patch->shape[3] || patch->shape[2] <= 0)
        throw FormatError("vision_model.embeddings.patch_embedding.weight: expected shape (dim, 3, P, P)");
    const std::int64_t dim = patch->shape[0];
    ClipVisionTower& v = m->vision_;
    v.patchSize = patch->shape[2];
    v.patchWeight = weightView(f, patch->name, 3 * v.patchSize * v.patchSize);
    v.classEmbedding = weightView(f, "vision_model.embeddings.class_embedding", 0, dim);
    v.positions = weightView(f, "vision_model.embeddings.position_embedding.weight", dim);
    const auto grid = static_cast<std::int64_t>(std::llround(std::sqrt(static_cast<double>(v.positions.rows() - 1))));
    if (grid * grid + 1 != v.positions.rows())
        throw FormatError("vision_model.embeddings.position_embedding.weight: " + std::to_string(v.positions.rows()) + " positions is not a square grid plus the class token");
    v.imageSize = grid * v.patchSize;
    if (configInt(visionCfg, "image_size", v.imageSize, 1, 16384, file) != v.imageSize)
        throw FormatError(file + ": image_size disagrees with the position embedding (" + std::to_string(v.imageSize) + " pixels)");
    v.preNorm = weightView(f, "vision_model.pre_layrnorm.weight", 0, dim);
    v.preNormBias = weightView(f, "vision_model.pre_layrnorm.bias", 0, dim);
    m->postNorm_ = weightView(f, "vision_model.post_layernorm.weight", 0, dim);
    m->postNormBias_ = weightView(f, "vision_model.post_layernorm.bias", 0, dim);
    v.tower = tower(f, visionCfg, "vision_model.encoder.layers.", dim, 12, false, file);
    if (f.find("visual_projection.weight")) {
        m->visualProjection_ = weightView(f, "visual_projection.weight", dim);
        m->projectionDim_ = m->visualProjection_.rows();
    }

    // Text, when the folder has it.
    if (f.find("text_model.embeddings.token_embedding.weight")) {
        m->tokenEmbedding_ = weightView(f, "text_model.embeddings.token_embedding.weight");
        const std::int64_t textDim = m->tokenEmbedding_.rowLength();
        m->textPositionTable_ = weightView(f, "text_model.embeddings.position_embedding.weight", textDim);
        m->textPositions_ = m->textPositionTable_.rows();
        m->finalNorm_ = weightView(f, "text_model.final_layer_norm.weight", 0, textDim);
        m->finalNormBias_ = weightView(f, "text_model.final_layer_norm.bias", 0, textDim);
        m->textProjection_ = weightView(f, "text_projection.weight", textDim);
        if (m->projectionDim_ != 0 && m->textProjection_.rows() != m->projectionDim_)
            throw FormatError("text_projection.weight: projects to " + std::to_string(m->textProjection_.rows()) + " values, the images to " + std::to_string(m->projectionDim_));
        m->textLayers_ = tower(f, textCfg, "text_model.encoder.layers.", textDim, 8, true, file);
        const Tensor scale = optionalWeight(f, "logit_scale", 1);
        const double logScale = scale.data ? toFloats(scale)[0] : configNumber(config, "logit_scale_init_value", 2.6592, file);
        m->logitScale_ = static_cast<float>(std::exp(logScale));
        if (std::filesystem::exists(folder / "vocab.json") && std::filesystem::exists(folder / "merges.txt"))
            m->tokenizer_ = ClipTokenizer::fromHuggingFace(folder / "vocab.json", folder / "merges.txt");
        else if (std::filesystem::exists(folder / "bpe_simple_vocab_16e6.txt.gz"))
            m->tokenizer_ = ClipTokenizer::fromBpeFile(folder / "bpe_simple_vocab_16e6.txt.gz");
        if (m->tokenizer_ && static_cast<std::int64_t>(m->tokenizer_->vocabSize()) > m->tokenEmbedding_.rows())
            throw FormatError(folder.string() + ": the tokenizer has " + std::to_string(m->tokenizer_->vocabSize()) + " tokens, the embedding table " +
                              std::to_string(m->tokenEmbedding_.rows()));
    }

    const PreprocessConfig defaults = PreprocessConfig::clip(static_cast<int>(v.imageSize));
    m->preprocess_ = std::filesystem::exists(folder / "preprocessor_config.json") ? PreprocessConfig::load(folder / "preprocessor_config.json", defaults) : defaults;
    const bool cropped = m->preprocess_.doCenterCrop;
    const int h = cropped ? m->preprocess_.cropHeight : m->preprocess_.resizeHeight, w = cropped ? m->preprocess_.cropWidth : m->preprocess_.resizeWidth;
    if (h != v.imageSize || w != v.imageSize)
        throw FormatError((folder / "preprocessor_config.json").string() + ": makes " + std::to_string(w) + "x" + std::to_string(h) + " images but the model takes " +
                          std::to_string(v.imageSize) + "x" + std::to_string(v.imageSize));
    m->visionRunner_ = std::make_unique<ClipVisionRunner>(backend, m->vision_);
    if (m->hasText()) m->textRunner_ = std::make_unique<VitRunner>(backend, m->textLayers_.shape);
    return m;
}

std::string ClipModel::description() const {
    const ClipTower& t = vision_.tower;
    return "CLIP ViT-" + std::string(t.shape.dim >= 1024 ? "L" : t.shape.dim >= 768 ? "B" : "S") + "/" + std::to_string(vision_.patchSize) +
           (vision_.imageSize != 224 ? "@" + std::to_string(vision_.imageSize) : "") + " (" + std::to_string(t.layers) + " layers, " +
           std::to_string(t.shape.dim) + " wide" + (hasText() ? ", with text" : ", vision only") + ")";
}

const ClipTokenizer& ClipModel::tokenizer() const {
    if (!hasText()) throw FormatError("this CLIP model has no text encoder (a vision-only folder)");
    if (!tokenizer_) throw FormatError("this CLIP model folder has no tokenizer files (vocab.json + merges.txt, or bpe_simple_vocab_16e6.txt.gz)");
    return *tokenizer_;
}

float* ClipModel::constant(std::shared_ptr<float[]>& slot, const std::vector<float>& values) {
    if (!slot) {
        slot = backend_.alloc(static_cast<std::int64_t>(values.size()));
        backend_.upload(values.data(), slot.get(), static_cast<std::int64_t>(values.size()));
    }
    return slot.get();
}

std::vector<float> ClipModel::embedImage(const PixelTensor& pixels) {
    if (projectionDim_ == 0) throw FormatError("this CLIP vision tower has no visual_projection.weight: it gives hidden states, not embeddings");
    std::lock_guard lock(mutex_);
    const std::int64_t dim = vision_.tower.shape.dim;
    float* x = visionRunner_->run(pixels, vision_.tower.layers);
    // The class token, normalized and projected.
    if (!pooled_) {
        pooled_ = backend_.alloc(std::max(dim, textLayers_.shape.dim));
        out_ = backend_.alloc(projectionDim_);
    }
    backend_.layerNorm(x, postNorm_, postNormBias_, vision_.tower.shape.eps, dim, 1, pooled_.get());
    backend_.matvec(visualProjection_, pooled_.get(), out_.get());
    std::vector<float> result(static_cast<std::size_t>(projectionDim_));
    backend_.download(out_.get(), result.data(), projectionDim_);
    requireUnchanged(file_);
    inference::requireFinite(result, "the image embedding");
    return result;
}

std::vector<float> ClipModel::imageHiddenStates(const PixelTensor& pixels, std::int64_t layers) {
    std::lock_guard lock(mutex_);
    const std::int64_t n = vision_.rows() * vision_.tower.shape.dim;
    float* x = visionRunner_->run(pixels, layers);
    std::vector<float> result(static_cast<std::size_t>(n));
    backend_.download(x, result.data(), n);
    return result;
}

std::vector<float> ClipModel::embedTokens(std::span<const std::int32_t> ids) {
    if (!hasText()) throw FormatError("this CLIP model has no text encoder (a vision-only folder)");
    if (ids.empty() || static_cast<std::int64_t>(ids.size()) > textPositions_)
        throw std::invalid_argument("CLIP text takes 1 to " + std::to_string(textPositions_) + " tokens");
    for (std::int32_t id : ids)
        if (id < 0 || id >= tokenEmbedding_.rows()) throw std::invalid_argument("token id " + std::to_string(id) + " is outside the vocabulary");
    std::lock_guard lock(mutex_);
    // note: the mask is causal, so tokens after the end token change nothing the pooled row sees:
    // the sequence stops there.
    std::int64_t rows = static_cast<std::int64_t>(ids.size());
    if (tokenizer_)
        for (std::size_t i = 0; i < ids.size(); ++i)
            if (ids[i] == tokenizer_->endId()) {
                rows = static_cast<std::int64_t>(i) + 1;
                break;
            }
    const std::int64_t dim = textLayers_.shape.dim;
    if (!textX_) textX_ = backend_.alloc(textPositions_ * dim);
    if (!pooled_) {
        pooled_ = backend_.alloc(std::max(dim, vision_.tower.shape.dim));
        out_ = backend_.alloc(std::max<std::int64_t>(projectionDim_, textProjection_.rows()));
    }
    float* x = textX_.get();
    backend_.embedRows(tokenEmbedding_, ids.first(static_cast<std::size_t>(rows)), x);
    if (!textConstants_) constant(textConstants_, toFloats(textPositionTable_));
    backend_.add(x, textConstants_.get(), rows * dim);
    for (std::int64_t l = 0; l < textLayers_.layers; ++l) textRunner_->block(textLayers_.weights[static_cast<std::size_t>(l)], x, rows, static_cast<int>(l));
    // The end token's row (the last one kept), normalized and projected.
    backend_.layerNorm(x + (rows - 1) * dim, finalNorm_, finalNormBias_, textLayers_.shape.eps, dim, 1, pooled_.get());
    backend_.matvec(textProjection_, pooled_.get(), out_.get());
    std::vector<float> result(static_cast<std::size_t>(textProjection_.rows()));
    backend_.download(out_.get(), result.data(), textProjection_.rows());
    requireUnchanged(file_);
    inference::requireFinite(result, "the text embedding");
    return result;
}

}  // namespace lumen::vision
