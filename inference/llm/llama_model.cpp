#include "inference/llm/llama_model.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace lumen::inference {
namespace {

Tensor view(const GgufFile& f, const std::string& name, std::vector<std::int64_t> expected, bool optional = false) {
    const GgufTensor* t = f.findTensor(name);
    if (!t) {
        if (optional) return {};
        throw FormatError(f.displayName() + ": tensor '" + name + "' is missing");
    }
    Tensor out;
    out.name = name;
    out.dtype = t->dtype;
    for (std::size_t i = 0; i < t->shape.size(); ++i) out.ne[i] = t->shape[i];
    out.data = t->data.data();
    // Compare the shape without trailing 1s.
    std::vector<std::int64_t> shape = t->shape;
    while (shape.size() > 1 && shape.back() == 1) shape.pop_back();
    if (shape != expected) {
        auto text = [](const std::vector<std::int64_t>& s) {
            std::string r = "[";
            for (std::size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
            return r + "]";
        };
        throw FormatError(f.displayName() + ": tensor '" + name + "' has shape " + text(t->shape) + ", expected " + text(expected));
    }
    return out;
}

}  // namespace

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
    w.tokenEmbedding = view(f, "token_embd.weight", {c.dim, table.shape.size() > 1 ? table.shape[1] : 0});
    c.vocabSize = w.tokenEmbedding.ne[1];
    positive(c.vocabSize, "the vocabulary size");
    w.outputNorm = view(f, "output_norm.weight", {c.dim});
    w.output = view(f, "output.weight", {c.dim, c.vocabSize}, true);
    if (!w.output.data) w.output = w.tokenEmbedding;  // tied embeddings
    w.ropeFreqs = view(f, "rope_freqs.weight", {c.ropeDims / 2}, true);
    if (w.ropeFreqs.data && w.ropeFreqs.dtype != DType::F32)
        throw FormatError(f.displayName() + ": tensor 'rope_freqs.weight' must be F32");
    const std::int64_t qDim = c.nHeads * c.headDim, kvDim = c.nKvHeads * c.headDim;
    for (std::int64_t l = 0; l < c.nLayers; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        LlamaLayer L;
        L.attnNorm = view(f, p + "attn_norm.weight", {c.dim});
        L.wq = view(f, p + "attn_q.weight", {c.dim, qDim});
        L.wk = view(f, p + "attn_k.weight", {c.dim, kvDim});
        L.wv = view(f, p + "attn_v.weight", {c.dim, kvDim});
        L.wo = view(f, p + "attn_output.weight", {qDim, c.dim});
        L.ffnNorm = view(f, p + "ffn_norm.weight", {c.dim});
        L.wGate = view(f, p + "ffn_gate.weight", {c.dim, c.ffnDim});
        L.wUp = view(f, p + "ffn_up.weight", {c.dim, c.ffnDim});
        L.wDown = view(f, p + "ffn_down.weight", {c.ffnDim, c.dim});
        L.bq = view(f, p + "attn_q.bias", {qDim}, true);
        L.bk = view(f, p + "attn_k.bias", {kvDim}, true);
        L.bv = view(f, p + "attn_v.bias", {kvDim}, true);
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

LlamaSession::LlamaSession(std::shared_ptr<const LlamaModel> model, Backend& backend, std::int64_t contextSize, DType kvType)
    : model_(std::move(model)), backend_(backend), nCtx_(contextSize) {
    const LlamaConfig& c = model_->config();
    if (nCtx_ <= 0) throw std::invalid_argument("the context size must be positive");
    if (kvType != DType::F16 && kvType != DType::F32) throw std::invalid_argument("the KV cache must be F16 or F32");
    const std::int64_t kvDim = c.nKvHeads * c.headDim;
    const std::int64_t kvBytes = nCtx_ * kvDim * (kvType == DType::F16 ? 2 : 4);
    for (std::int64_t l = 0; l < c.nLayers; ++l) {
        kvMemory_.push_back(backend_.allocBytes(kvBytes));
        kvMemory_.push_back(backend_.allocBytes(kvBytes));
        kv_.push_back({kvType, kvMemory_[kvMemory_.size() - 2].get(), kvMemory_.back().get()});
    }
    const std::int64_t qDim = c.nHeads * c.headDim;
    x_ = backend_.alloc(c.dim);
    xb_ = backend_.alloc(c.dim);
    q_ = backend_.alloc(qDim);
    k_ = backend_.alloc(kvDim);
    v_ = backend_.alloc(kvDim);
    attOut_ = backend_.alloc(qDim);
    att_ = backend_.alloc(c.dim);
    gate_ = backend_.alloc(c.ffnDim);
    up_ = backend_.alloc(c.ffnDim);
    ffnOut_ = backend_.alloc(c.dim);
    logitsDevice_ = backend_.alloc(c.vocabSize);
    scratch_ = backend_.alloc(nCtx_);
    logits_.resize(static_cast<std::size_t>(c.vocabSize));
}

void LlamaSession::truncate(std::int64_t pos) { pos_ = std::clamp<std::int64_t>(pos, 0, pos_); }

const std::vector<float>& LlamaSession::decode(std::int32_t token) {
    const LlamaConfig& c = model_->config();
    const LlamaWeights& w = model_->weights();
    if (pos_ >= nCtx_)
        throw std::out_of_range("the context is full (" + std::to_string(nCtx_) + " tokens)");
    if (token < 0 || token >= c.vocabSize) throw std::out_of_range("token id " + std::to_string(token) + " is outside the vocabulary");
    const std::int64_t kvDim = c.nKvHeads * c.headDim, qDim = c.nHeads * c.headDim;
    float* x = x_.get();

    // The token's embedding starts the residual stream.
    backend_.embedRow(w.tokenEmbedding, token, x);
    for (std::int64_t l = 0; l < c.nLayers; ++l) {
        const LlamaLayer& L = w.layers[static_cast<std::size_t>(l)];
        // Attention block: normalise, project to q/k/v, rotate q and k for this position.
        backend_.rmsNorm(x, L.attnNorm, c.rmsEps, c.dim, xb_.get());
        backend_.matvec(L.wq, xb_.get(), q_.get());
        backend_.matvec(L.wk, xb_.get(), k_.get());
        backend_.matvec(L.wv, xb_.get(), v_.get());
        if (L.bq.data) backend_.addBias(q_.get(), L.bq, qDim);
        if (L.bk.data) backend_.addBias(k_.get(), L.bk, kvDim);
        if (L.bv.data) backend_.addBias(v_.get(), L.bv, kvDim);
        const auto* factors = reinterpret_cast<const float*>(w.ropeFreqs.data);
        backend_.rope(q_.get(), c.nHeads, c.headDim, c.ropeDims, pos_, c.ropeFreqBase, c.ropeStyle, factors);
        backend_.rope(k_.get(), c.nKvHeads, c.headDim, c.ropeDims, pos_, c.ropeFreqBase, c.ropeStyle, factors);
        // Remember k and v, attend over every position so far, project back, add to the stream.
        backend_.storeKv(kv_[static_cast<std::size_t>(l)], pos_, kvDim, k_.get(), v_.get());
        backend_.attention(q_.get(), kv_[static_cast<std::size_t>(l)], pos_, c.nHeads, c.nKvHeads, c.headDim, scratch_.get(), attOut_.get());
        backend_.matvec(L.wo, attOut_.get(), att_.get());
        backend_.add(x, att_.get(), c.dim);
        // Feed-forward block: SwiGLU.
        backend_.rmsNorm(x, L.ffnNorm, c.rmsEps, c.dim, xb_.get());
        backend_.matvec(L.wGate, xb_.get(), gate_.get());
        backend_.matvec(L.wUp, xb_.get(), up_.get());
        backend_.siluMul(gate_.get(), up_.get(), c.ffnDim);
        backend_.matvec(L.wDown, gate_.get(), ffnOut_.get());
        backend_.add(x, ffnOut_.get(), c.dim);
    }
    // Final norm and the vocabulary projection.
    backend_.rmsNorm(x, w.outputNorm, c.rmsEps, c.dim, xb_.get());
    backend_.matvec(w.output, xb_.get(), logitsDevice_.get());
    backend_.download(logitsDevice_.get(), logits_.data(), c.vocabSize);
    ++pos_;
    return logits_;
}

const std::vector<float>& LlamaSession::prefill(std::span<const std::int32_t> tokens, bool allLogits) {
    const LlamaConfig& c = model_->config();
    const LlamaWeights& w = model_->weights();
    const auto n = static_cast<std::int64_t>(tokens.size());
    if (n == 0) throw std::invalid_argument("prefill needs at least one token");
    if (n == 1 && !allLogits) return decode(tokens[0]);
    if (pos_ + n > nCtx_) throw std::out_of_range("the context is full (" + std::to_string(nCtx_) + " tokens)");
    for (auto t : tokens)
        if (t < 0 || t >= c.vocabSize) throw std::out_of_range("token id " + std::to_string(t) + " is outside the vocabulary");
    const std::int64_t kvDim = c.nKvHeads * c.headDim, qDim = c.nHeads * c.headDim;
    if (n > batchCapacity_) {
        bx_ = backend_.alloc(n * c.dim);
        bxb_ = backend_.alloc(n * c.dim);
        bq_ = backend_.alloc(n * qDim);
        bk_ = backend_.alloc(n * kvDim);
        bv_ = backend_.alloc(n * kvDim);
        battOut_ = backend_.alloc(n * qDim);
        batt_ = backend_.alloc(n * c.dim);
        bgate_ = backend_.alloc(n * c.ffnDim);
        bup_ = backend_.alloc(n * c.ffnDim);
        bffn_ = backend_.alloc(n * c.dim);
        batchCapacity_ = n;
    }
    float* x = bx_.get();
    for (std::int64_t i = 0; i < n; ++i) backend_.embedRow(w.tokenEmbedding, tokens[static_cast<std::size_t>(i)], x + i * c.dim);
    const auto* factors = reinterpret_cast<const float*>(w.ropeFreqs.data);
    for (std::int64_t l = 0; l < c.nLayers; ++l) {
        const LlamaLayer& L = w.layers[static_cast<std::size_t>(l)];
        const KvLayer& kv = kv_[static_cast<std::size_t>(l)];
        for (std::int64_t i = 0; i < n; ++i) backend_.rmsNorm(x + i * c.dim, L.attnNorm, c.rmsEps, c.dim, bxb_.get() + i * c.dim);
        backend_.matmul(L.wq, bxb_.get(), n, bq_.get());
        backend_.matmul(L.wk, bxb_.get(), n, bk_.get());
        backend_.matmul(L.wv, bxb_.get(), n, bv_.get());
        for (std::int64_t i = 0; i < n; ++i) {
            float* q = bq_.get() + i * qDim;
            float* k = bk_.get() + i * kvDim;
            float* v = bv_.get() + i * kvDim;
            if (L.bq.data) backend_.addBias(q, L.bq, qDim);
            if (L.bk.data) backend_.addBias(k, L.bk, kvDim);
            if (L.bv.data) backend_.addBias(v, L.bv, kvDim);
            backend_.rope(q, c.nHeads, c.headDim, c.ropeDims, pos_ + i, c.ropeFreqBase, c.ropeStyle, factors);
            backend_.rope(k, c.nKvHeads, c.headDim, c.ropeDims, pos_ + i, c.ropeFreqBase, c.ropeStyle, factors);
            backend_.storeKv(kv, pos_ + i, kvDim, k, v);
        }
        // Causal: position pos_ + i attends to everything up to itself.
        for (std::int64_t i = 0; i < n; ++i)
            backend_.attention(bq_.get() + i * qDim, kv, pos_ + i, c.nHeads, c.nKvHeads, c.headDim, scratch_.get(), battOut_.get() + i * qDim);
        backend_.matmul(L.wo, battOut_.get(), n, batt_.get());
        backend_.add(x, batt_.get(), n * c.dim);
        for (std::int64_t i = 0; i < n; ++i) backend_.rmsNorm(x + i * c.dim, L.ffnNorm, c.rmsEps, c.dim, bxb_.get() + i * c.dim);
        backend_.matmul(L.wGate, bxb_.get(), n, bgate_.get());
        backend_.matmul(L.wUp, bxb_.get(), n, bup_.get());
        backend_.siluMul(bgate_.get(), bup_.get(), n * c.ffnDim);
        backend_.matmul(L.wDown, bgate_.get(), n, bffn_.get());
        backend_.add(x, bffn_.get(), n * c.dim);
    }
    pos_ += n;
    if (!allLogits) {
        backend_.rmsNorm(x + (n - 1) * c.dim, w.outputNorm, c.rmsEps, c.dim, xb_.get());
        backend_.matvec(w.output, xb_.get(), logitsDevice_.get());
        backend_.download(logitsDevice_.get(), logits_.data(), c.vocabSize);
        return logits_;
    }
    for (std::int64_t i = 0; i < n; ++i) backend_.rmsNorm(x + i * c.dim, w.outputNorm, c.rmsEps, c.dim, bxb_.get() + i * c.dim);
    blogits_ = backend_.alloc(n * c.vocabSize);
    backend_.matmul(w.output, bxb_.get(), n, blogits_.get());
    batchLogits_.resize(static_cast<std::size_t>(n * c.vocabSize));
    backend_.download(blogits_.get(), batchLogits_.data(), n * c.vocabSize);
    std::copy(batchLogits_.end() - c.vocabSize, batchLogits_.end(), logits_.begin());
    return batchLogits_;
}

}  // namespace lumen::inference
