#include "inference/llm/llama_model.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <stdexcept>

namespace lumen::inference {

std::shared_ptr<LlamaModel> LlamaModel::load(std::shared_ptr<const GgufFile> file) {
    auto model = std::shared_ptr<LlamaModel>(new LlamaModel());
    model->file_ = std::move(file);
    const GgufFile& f = *model->file_;
    LlamaConfig& c = model->config_;
    c.architecture = f.getString("general.architecture");
    if (c.architecture != "llama" && c.architecture != "mistral" && c.architecture != "qwen2")
        throw FormatError(f.displayName() + ": architecture '" + c.architecture + "' is not supported (llama, mistral and qwen2 are)");
    const std::string a = c.architecture + ".";
    c.dim = f.getInt(a + "embedding_length");
    c.nLayers = f.getInt(a + "block_count");
    c.nHeads = f.getInt(a + "attention.head_count");
    c.nKvHeads = f.getInt(a + "attention.head_count_kv", c.nHeads);
    c.ffnDim = f.getInt(a + "feed_forward_length");
    c.contextLength = f.getInt(a + "context_length", 2048);
    c.ropeFreqBase = static_cast<float>(f.getFloat(a + "rope.freq_base", 10000.0));
    c.rmsEps = static_cast<float>(f.getFloat(a + "attention.layer_norm_rms_epsilon", 1e-5));
    c.ropeStyle = c.architecture == "qwen2" ? RopeStyle::NeoX : RopeStyle::Interleaved;
    auto positive = [&](std::int64_t v, const char* what) {
        if (v <= 0 || v > (1 << 20)) throw FormatError(f.displayName() + ": " + what + " is " + std::to_string(v));
    };
    positive(c.dim, "the embedding length");
    positive(c.nLayers, "the block count");
    positive(c.nHeads, "the head count");
    positive(c.nKvHeads, "the KV head count");
    positive(c.ffnDim, "the feed-forward length");
    if (c.nHeads % c.nKvHeads != 0)
        throw FormatError(f.displayName() + ": " + std::to_string(c.nHeads) + " heads cannot share " + std::to_string(c.nKvHeads) + " KV heads evenly");
    c.headDim = f.getInt(a + "attention.key_length", c.dim / c.nHeads);
    positive(c.headDim, "the head dimension");
    c.ropeDims = f.getInt(a + "rope.dimension_count", c.headDim);
    if (c.ropeDims <= 0 || c.ropeDims > c.headDim || c.ropeDims % 2 != 0)
        throw FormatError(f.displayName() + ": RoPE dimension count " + std::to_string(c.ropeDims) + " does not fit the head dimension " +
                          std::to_string(c.headDim));

    LlamaWeights& w = model->weights_;
    // The vocabulary size is the embedding table's second dimension.
    const GgufTensor& table = f.tensor("token_embd.weight");
    w.tokenEmbedding = tensorView(f, "token_embd.weight", {c.dim, table.shape.size() > 1 ? table.shape[1] : 0});
    c.vocabSize = w.tokenEmbedding.ne[1];
    positive(c.vocabSize, "the vocabulary size");
    w.outputNorm = tensorView(f, "output_norm.weight", {c.dim});
    w.output = tensorView(f, "output.weight", {c.dim, c.vocabSize}, true);
    if (!w.output.data) w.output = w.tokenEmbedding;  // tied embeddings
    w.ropeFreqs = tensorView(f, "rope_freqs.weight", {c.ropeDims / 2}, true);
    if (w.ropeFreqs.data && w.ropeFreqs.dtype != DType::F32)
        throw FormatError(f.displayName() + ": tensor 'rope_freqs.weight' must be F32");
    const std::int64_t qDim = c.nHeads * c.headDim, kvDim = c.nKvHeads * c.headDim;
    for (std::int64_t l = 0; l < c.nLayers; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        LlamaLayer L;
        L.attnNorm = tensorView(f, p + "attn_norm.weight", {c.dim});
        L.wq = tensorView(f, p + "attn_q.weight", {c.dim, qDim});
        L.wk = tensorView(f, p + "attn_k.weight", {c.dim, kvDim});
        L.wv = tensorView(f, p + "attn_v.weight", {c.dim, kvDim});
        L.wo = tensorView(f, p + "attn_output.weight", {qDim, c.dim});
        L.ffnNorm = tensorView(f, p + "ffn_norm.weight", {c.dim});
        L.wGate = tensorView(f, p + "ffn_gate.weight", {c.dim, c.ffnDim});
        L.wUp = tensorView(f, p + "ffn_up.weight", {c.dim, c.ffnDim});
        L.wDown = tensorView(f, p + "ffn_down.weight", {c.ffnDim, c.dim});
        L.bq = tensorView(f, p + "attn_q.bias", {qDim}, true);
        L.bk = tensorView(f, p + "attn_k.bias", {kvDim}, true);
        L.bv = tensorView(f, p + "attn_v.bias", {kvDim}, true);
        w.layers.push_back(std::move(L));
    }
    return model;
}

MemoryEstimate LlamaModel::estimateMemory(std::int64_t contextSize, DType kvType) const {
    MemoryEstimate m;
    for (const auto& t : file_->tensors()) m.weights += static_cast<std::uint64_t>(t.bytes);
    const auto& c = config_;
    const std::uint64_t kvDim = static_cast<std::uint64_t>(c.nKvHeads * c.headDim);
    m.kvCache = 2ull * static_cast<std::uint64_t>(c.nLayers) * static_cast<std::uint64_t>(contextSize) * kvDim * (kvType == DType::F16 ? 2 : 4);
    m.scratch = 4ull * static_cast<std::uint64_t>(6 * c.dim + 3 * c.nHeads * c.headDim + 2 * c.ffnDim + 2 * c.vocabSize + contextSize);
    return m;
}

std::int64_t LlamaModel::gpuLayersFitting(std::uint64_t bytes, std::int64_t contextSize, DType kvType) const {
    const auto& c = config_;
    const auto& w = weights_;
    const auto size = [](const Tensor& t) { return t.data ? static_cast<std::uint64_t>(t.rowBytes() * t.rows()) : 0ull; };
    const std::uint64_t kvPerLayer = 2ull * static_cast<std::uint64_t>(contextSize * c.nKvHeads * c.headDim) * (kvType == DType::F16 ? 2 : 4);
    // Activations for a 512-token prompt batch and the GEMM scratch, roughly.
    const std::uint64_t scratch = 4ull * 512 * static_cast<std::uint64_t>(4 * c.dim + 2 * c.ffnDim + c.vocabSize) + (256ull << 20);
    std::uint64_t used = size(w.output) + size(w.outputNorm) + size(w.ropeFreqs) + scratch;
    if (used > bytes) return 0;
    std::int64_t fitting = 0;
    for (std::int64_t l = c.nLayers - 1; l >= 0; --l) {
        const LlamaLayer& L = w.layers[static_cast<std::size_t>(l)];
        std::uint64_t layer = kvPerLayer;
        for (const Tensor* t : {&L.attnNorm, &L.wq, &L.wk, &L.wv, &L.wo, &L.ffnNorm, &L.wGate, &L.wUp, &L.wDown, &L.bq, &L.bk, &L.bv}) layer += size(*t);
        if (used + layer > bytes) break;
        used += layer;
        ++fitting;
    }
    const bool tableSeparate = w.output.data != w.tokenEmbedding.data;
    if (fitting == c.nLayers && tableSeparate && used + size(w.tokenEmbedding) > bytes) --fitting;
    return fitting;
}

namespace {
std::atomic<std::uint32_t> nextSessionId{1};
}

LlamaSession::LlamaSession(std::shared_ptr<const LlamaModel> model, Backend& backend, std::int64_t contextSize, DType kvType)
    : model_(std::move(model)), nCtx_(contextSize), id_(nextSessionId.fetch_add(1)) {
    init(std::vector<Backend*>(static_cast<std::size_t>(model_->config().nLayers), &backend), kvType);
}

LlamaSession::LlamaSession(std::shared_ptr<const LlamaModel> model, const LayerSplit& split, std::int64_t contextSize, DType kvType)
    : model_(std::move(model)), nCtx_(contextSize), id_(nextSessionId.fetch_add(1)) {
    const std::int64_t nLayers = model_->config().nLayers;
    if (split.gpuLayers < 0 || split.gpuLayers > nLayers)
        throw std::invalid_argument("gpu layers must be from 0 to " + std::to_string(nLayers) + ", not " + std::to_string(split.gpuLayers));
    if ((split.gpuLayers < nLayers && !split.cpu) || (split.gpuLayers > 0 && !split.gpu))
        throw std::invalid_argument("a layer split needs a backend for each side");
    std::vector<Backend*> layers;
    for (std::int64_t l = 0; l < nLayers; ++l) layers.push_back(l < nLayers - split.gpuLayers ? split.cpu : split.gpu);
    init(layers, kvType);
}

LlamaSession::~LlamaSession() {
    for (auto& stage : stages_) stage.backend->forgetSteps(id_);
}

void LlamaSession::init(const std::vector<Backend*>& layerBackends, DType kvType) {
    const LlamaConfig& c = model_->config();
    const LlamaWeights& w = model_->weights();
    if (nCtx_ <= 0) throw std::invalid_argument("the context size must be positive");
    if (kvType != DType::F16 && kvType != DType::F32) throw std::invalid_argument("the KV cache must be F16 or F32");
    for (std::int64_t l = 0; l < c.nLayers; ++l) {
        Backend* b = layerBackends[static_cast<std::size_t>(l)];
        if (stages_.empty() || stages_.back().backend != b) stages_.push_back({b, l, l, {}});
        stages_.back().end = l + 1;
    }
    // Each stage's weights go to its backend first, so a GPU that is too small fails before
    // any cache memory is taken.
    for (std::size_t s = 0; s < stages_.size(); ++s) {
        std::vector<const Tensor*> tensors;
        if (s == 0) tensors.push_back(&w.tokenEmbedding);
        if (s + 1 == stages_.size()) tensors.insert(tensors.end(), {&w.outputNorm, &w.output});
        if (w.ropeFreqs.data) tensors.push_back(&w.ropeFreqs);
        for (std::int64_t l = stages_[s].first; l < stages_[s].end; ++l) {
            const LlamaLayer& L = w.layers[static_cast<std::size_t>(l)];
            for (const Tensor* t : {&L.attnNorm, &L.wq, &L.wk, &L.wv, &L.wo, &L.ffnNorm, &L.wGate, &L.wUp, &L.wDown, &L.bq, &L.bk, &L.bv})
                if (t->data) tensors.push_back(t);
        }
        stages_[s].backend->prepareWeights(tensors);
    }
    const std::int64_t kvDim = c.nKvHeads * c.headDim;
    const std::int64_t kvBytes = nCtx_ * kvDim * (kvType == DType::F16 ? 2 : 4);
    for (std::int64_t l = 0; l < c.nLayers; ++l) {
        Backend* b = layerBackends[static_cast<std::size_t>(l)];
        kvMemory_.push_back(b->allocBytes(kvBytes));
        kvMemory_.push_back(b->allocBytes(kvBytes));
        kv_.push_back({kvType, kvMemory_[kvMemory_.size() - 2].get(), kvMemory_.back().get(), nCtx_, c.headDim});
    }
    for (auto& stage : stages_) reserve(stage, 1, false);
    logits_.resize(static_cast<std::size_t>(c.vocabSize));
}

void LlamaSession::reserve(Stage& stage, std::int64_t n, bool allLogits) {
    const LlamaConfig& c = model_->config();
    Buffers& b = stage.buffers;
    Backend& be = *stage.backend;
    const std::int64_t qDim = c.nHeads * c.headDim, kvDim = c.nKvHeads * c.headDim;
    if (n > b.capacity) {
        b.x = be.alloc(n * c.dim);
        b.xb = be.alloc(n * c.dim);
        b.q = be.alloc(n * qDim);
        b.k = be.alloc(n * kvDim);
        b.v = be.alloc(n * kvDim);
        b.attOut = be.alloc(n * qDim);
        b.att = be.alloc(n * c.dim);
        b.gate = be.alloc(n * c.ffnDim);
        b.up = be.alloc(n * c.ffnDim);
        b.ffn = be.alloc(n * c.dim);
        b.capacity = n;
        b.logits.reset();
        ++generation_;
        be.forgetSteps(id_);
    }
    if (&stage == &stages_.back()) {
        const std::int64_t logitRows = allLogits ? b.capacity : 1;
        if (!b.logits || (allLogits && logitsRows_ < logitRows)) {
            b.logits = be.alloc(logitRows * c.vocabSize);
            logitsRows_ = logitRows;
            ++generation_;
            be.forgetSteps(id_);
        }
    }
}

void LlamaSession::truncate(std::int64_t pos) { pos_ = std::clamp<std::int64_t>(pos, 0, pos_); }

const std::vector<float>& LlamaSession::decode(std::int32_t token) {
    forward(std::span<const std::int32_t>(&token, 1), nullptr, 1, false);
    return logits_;
}

const std::vector<float>& LlamaSession::prefill(std::span<const std::int32_t> tokens, bool allLogits) {
    if (tokens.empty()) throw std::invalid_argument("prefill needs at least one token");
    forward(tokens, nullptr, static_cast<std::int64_t>(tokens.size()), allLogits);
    return allLogits ? batchLogits_ : logits_;
}

const std::vector<float>& LlamaSession::prefillEmbeddings(std::span<const float> rows, bool allLogits) {
    const std::int64_t dim = model_->config().dim;
    if (rows.empty() || static_cast<std::int64_t>(rows.size()) % dim != 0)
        throw std::invalid_argument("input embeddings come in rows of " + std::to_string(dim) + " values");
    forward({}, rows.data(), static_cast<std::int64_t>(rows.size()) / dim, allLogits);
    return allLogits ? batchLogits_ : logits_;
}

void LlamaSession::forward(std::span<const std::int32_t> tokens, const float* embeddings, std::int64_t n, bool allLogits) {
    const LlamaConfig& c = model_->config();
    if (pos_ + n > nCtx_) throw std::out_of_range("the context is full (" + std::to_string(nCtx_) + " tokens)");
    for (auto t : tokens)
        if (t < 0 || t >= c.vocabSize) throw std::out_of_range("token id " + std::to_string(t) + " is outside the vocabulary");
    for (auto& stage : stages_) reserve(stage, n, allLogits);
    for (std::size_t s = 0; s < stages_.size(); ++s) {
        Stage& stage = stages_[s];
        Backend& be = *stage.backend;
        if (s == 0) {
            // The tokens' embeddings (or the rows given in their place) start the residual stream.
            if (embeddings) be.upload(embeddings, stage.buffers.x.get(), n * c.dim);
            else be.embedRows(model_->weights().tokenEmbedding, tokens, stage.buffers.x.get());
        } else {
            // The stream moves over from the previous stage's backend.
            handOver_.resize(static_cast<std::size_t>(n * c.dim));
            stages_[s - 1].backend->download(stages_[s - 1].buffers.x.get(), handOver_.data(), n * c.dim);
            be.upload(handOver_.data(), stage.buffers.x.get(), n * c.dim);
        }
        const bool last = s + 1 == stages_.size();
        if (n > 1 || embeddings) {
            runLayers(stage, last, n, allLogits);
            continue;
        }
        // A decode step: the same ops on the same buffers every token, which a backend may
        // record once and replay.
        const std::uint64_t key = (std::uint64_t{id_} << 32) | (std::uint64_t{generation_} << 16) | s;
        if (be.replayStep(key, pos_, nCtx_)) continue;
        be.beginStep(key, pos_, nCtx_);
        try {
            runLayers(stage, last, n, allLogits);
        } catch (...) {
            be.endStep(false);
            throw;
        }
        be.endStep(true);
    }
    pos_ += n;
    Stage& last = stages_.back();
    if (allLogits) {
        batchLogits_.resize(static_cast<std::size_t>(n * c.vocabSize));
        last.backend->download(last.buffers.logits.get(), batchLogits_.data(), n * c.vocabSize);
        std::copy(batchLogits_.end() - c.vocabSize, batchLogits_.end(), logits_.begin());
    } else {
        last.backend->download(last.buffers.logits.get(), logits_.data(), c.vocabSize);
    }
}

// The stage's layers over n tokens at positions pos_.., and on the last stage the final norm
// and the vocabulary projection.
void LlamaSession::runLayers(Stage& stage, bool last, std::int64_t n, bool allLogits) {
    const LlamaConfig& c = model_->config();
    const LlamaWeights& w = model_->weights();
    const std::int64_t kvDim = c.nKvHeads * c.headDim, qDim = c.nHeads * c.headDim;
    const RopeSpec qRope{c.nHeads, c.headDim, c.ropeDims, c.ropeFreqBase, c.ropeStyle, w.ropeFreqs.data ? &w.ropeFreqs : nullptr};
    RopeSpec kRope = qRope;
    kRope.nHeads = c.nKvHeads;
    const AttentionSpec attention{c.nHeads, c.nKvHeads, c.headDim};
    Backend& be = *stage.backend;
    Buffers& b = stage.buffers;
    float* x = b.x.get();
    for (std::int64_t l = stage.first; l < stage.end; ++l) {
        const LlamaLayer& L = w.layers[static_cast<std::size_t>(l)];
        const KvLayer& kv = kv_[static_cast<std::size_t>(l)];
        // Attention block: normalise, project to q/k/v, rotate q and k by position.
        be.rmsNorm(x, L.attnNorm, c.rmsEps, c.dim, n, b.xb.get());
        const Backend::Product qkv[] = {{&L.wq, b.q.get()}, {&L.wk, b.k.get()}, {&L.wv, b.v.get()}};
        be.matmuls(qkv, b.xb.get(), n);
        if (L.bq.data) be.addBias(b.q.get(), L.bq, qDim, n);
        if (L.bk.data) be.addBias(b.k.get(), L.bk, kvDim, n);
        if (L.bv.data) be.addBias(b.v.get(), L.bv, kvDim, n);
        be.rope(b.q.get(), n, pos_, qRope);
        be.rope(b.k.get(), n, pos_, kRope);
        // Remember k and v, attend causally, project back, add to the stream.
        be.storeKv(kv, pos_, n, kvDim, b.k.get(), b.v.get());
        be.attention(b.q.get(), kv, pos_, n, attention, b.attOut.get());
        be.matmul(L.wo, b.attOut.get(), n, b.att.get());
        be.add(x, b.att.get(), n * c.dim);
        // Feed-forward block: SwiGLU.
        be.rmsNorm(x, L.ffnNorm, c.rmsEps, c.dim, n, b.xb.get());
        const Backend::Product gateUp[] = {{&L.wGate, b.gate.get()}, {&L.wUp, b.up.get()}};
        be.matmuls(gateUp, b.xb.get(), n);
        be.siluMul(b.gate.get(), b.up.get(), n * c.ffnDim);
        be.matmul(L.wDown, b.gate.get(), n, b.ffn.get());
        be.add(x, b.ffn.get(), n * c.dim);
    }
    if (!last) return;
    // Final norm and the vocabulary projection.
    const std::int64_t rows = allLogits ? n : 1;
    be.rmsNorm(x + (n - rows) * c.dim, w.outputNorm, c.rmsEps, c.dim, rows, b.xb.get());
    be.matmul(w.output, b.xb.get(), rows, b.logits.get());
}

}  // namespace lumen::inference
