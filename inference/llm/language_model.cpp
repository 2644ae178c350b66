#include "inference/llm/language_model.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "inference/formats/format_error.h"
#include "inference/llm/models/family.h"

namespace lumen::inference {

std::shared_ptr<LanguageModel> LanguageModel::load(std::shared_ptr<const GgufFile> file) {
    auto model = std::shared_ptr<LanguageModel>(new LanguageModel());
    model->file_ = std::move(file);
    const GgufFile& f = *model->file_;
    ModelConfig& c = model->config_;
    c.architecture = f.getString("general.architecture");
    model->family_ = findFamily(c.architecture);
    if (!model->family_)
        throw FormatError(f.displayName() + ": architecture '" + c.architecture + "' is not supported (this version reads " +
                          supportedArchitectures() + ")");
    ModelReader reader(f, c, model->weights_);
    model->family_->read(reader, c, model->weights_);
    return model;
}

MemoryEstimate LanguageModel::estimateMemory(std::int64_t contextSize, DType kvType, std::uint64_t snapshotBytes) const {
    MemoryEstimate m;
    for (const auto& t : file_->tensors()) m.weights += static_cast<std::uint64_t>(t.bytes);
    const auto& c = config_;
    const std::uint64_t kvDim = static_cast<std::uint64_t>(c.nKvHeads * c.headDim);
    // (on the CPU, which this estimate is for, sliding-window layers keep only their window)
    double positions = 0;
    std::int64_t recurrent = 0;
    for (const LayerAttention& la : c.layers) {
        if (la.recurrent) ++recurrent;
        else positions += static_cast<double>(windowedCachePositions(la.window, contextSize));
    }
    m.kvCache = static_cast<std::uint64_t>(2.0 * positions * static_cast<double>(kvDim) * kvBytesPerValue(kvType));
    // Recurrent layers keep a state instead, and the session its snapshots (LanguageSession::snapshot).
    const auto stateBytes = static_cast<std::uint64_t>(recurrent * c.deltaNet.stateFloats() * 4);
    if (stateBytes > 0) {
        // (at most one per interval of the context and one at the prompt's end, and the limit)
        const std::uint64_t snapshots = static_cast<std::uint64_t>(contextSize / kSnapshotInterval + 1);
        m.kvCache += stateBytes + std::min(snapshotBytes / stateBytes, snapshots) * stateBytes;
    }
    m.scratch = 4ull * static_cast<std::uint64_t>(8 * c.dim + 6 * c.nHeads * c.headDim + 2 * std::max({c.ffnDim, c.expertFfnDim, c.sharedExpertFfnDim}) + c.nExperts +
                                                  2 * c.vocabSize + contextSize + 3 * c.deltaNet.convChannels() + 2 * c.deltaNet.valueWidth());
    return m;
}

std::int64_t LanguageModel::gpuLayersFitting(std::uint64_t bytes, std::int64_t contextSize, DType kvType) const {
    const auto& c = config_;
    const auto& w = weights_;
    const auto size = [](const Tensor& t) { return t.data ? static_cast<std::uint64_t>(t.rowBytes() * t.rows()) : 0ull; };
    const auto kvPerLayer = static_cast<std::uint64_t>(2.0 * static_cast<double>(contextSize * c.nKvHeads * c.headDim) * kvBytesPerValue(kvType));
    // Activations for a 512-token prompt batch and the GEMM scratch, roughly.
    const std::uint64_t scratch = 4ull * 512 * static_cast<std::uint64_t>(4 * c.dim + 2 * c.ffnDim + c.vocabSize) + (256ull << 20);
    std::uint64_t used = size(w.output) + size(w.outputNorm) + size(w.ropeFreqs) + size(w.ropeFreqsLong) + scratch;
    if (used > bytes) return 0;
    std::int64_t fitting = 0;
    for (std::int64_t l = c.nLayers - 1; l >= 0; --l) {
        const LayerWeights& L = w.layers[static_cast<std::size_t>(l)];
        std::uint64_t layer = c.layers[static_cast<std::size_t>(l)].recurrent ? static_cast<std::uint64_t>(c.deltaNet.stateFloats() * 4) : kvPerLayer;
        for (const Tensor* t : L.all()) layer += size(*t);
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

std::int64_t windowedCachePositions(std::int64_t window, std::int64_t contextSize, std::int64_t chunk) {
    return window > 0 && chunk > 0 ? std::min(contextSize, window - 1 + chunk) : contextSize;
}

LanguageSession::LanguageSession(std::shared_ptr<const LanguageModel> model, Backend& backend, std::int64_t contextSize, DType kvType,
                                 std::int64_t windowChunk)
    : model_(std::move(model)), nCtx_(contextSize), windowChunk_(std::max<std::int64_t>(0, windowChunk)), id_(nextSessionId.fetch_add(1)) {
    init(std::vector<Backend*>(static_cast<std::size_t>(model_->config().nLayers), &backend), kvType);
}

LanguageSession::LanguageSession(std::shared_ptr<const LanguageModel> model, const LayerSplit& split, std::int64_t contextSize, DType kvType,
                                 std::int64_t windowChunk)
    : model_(std::move(model)), nCtx_(contextSize), windowChunk_(std::max<std::int64_t>(0, windowChunk)), id_(nextSessionId.fetch_add(1)) {
    const std::int64_t nLayers = model_->config().nLayers;
    if (split.gpuLayers < 0 || split.gpuLayers > nLayers)
        throw std::invalid_argument("gpu layers must be from 0 to " + std::to_string(nLayers) + ", not " + std::to_string(split.gpuLayers));
    if ((split.gpuLayers < nLayers && !split.cpu) || (split.gpuLayers > 0 && !split.gpu))
        throw std::invalid_argument("a layer split needs a backend for each side");
    std::vector<Backend*> layers;
    for (std::int64_t l = 0; l < nLayers; ++l) layers.push_back(l < nLayers - split.gpuLayers ? split.cpu : split.gpu);
    init(layers, kvType);
}

LanguageSession::~LanguageSession() {
    for (auto& stage : stages_) stage.backend->forgetSteps(id_);
}

void LanguageSession::init(const std::vector<Backend*>& layerBackends, DType kvType) {
    const ModelConfig& c = model_->config();
    const ModelWeights& w = model_->weights();
    if (nCtx_ <= 0) throw std::invalid_argument("the context size must be positive");
    if (kvType != DType::F16 && kvType != DType::F32 && kvType != DType::Q8_0) throw std::invalid_argument("the KV cache must be F16, F32 or Q8_0");
    if (kvType == DType::Q8_0 && c.headDim % 32 != 0)
        throw std::invalid_argument("a q8_0 KV cache needs heads of a multiple of 32 dimensions (this model's have " + std::to_string(c.headDim) +
                                    "): use f16");
    // LongRoPE (Phi-3): the long factors for sessions past the trained context, as llama.cpp picks them.
    const bool longContext = w.ropeFreqsLong.data && c.ropeOriginalContext > 0 && nCtx_ > c.ropeOriginalContext;
    ropeFactors_ = longContext ? &w.ropeFreqsLong : w.ropeFreqs.data ? &w.ropeFreqs : nullptr;
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
        if (ropeFactors_) tensors.push_back(ropeFactors_);
        for (std::int64_t l = stages_[s].first; l < stages_[s].end; ++l)
            for (const Tensor* t : w.layers[static_cast<std::size_t>(l)].all())
                if (t->data) tensors.push_back(t);
        stages_[s].backend->prepareWeights(tensors);
    }
    const std::int64_t kvDim = c.nKvHeads * c.headDim;
    const bool q8 = kvType == DType::Q8_0;
    for (std::int64_t l = 0; l < c.nLayers; ++l) {
        Backend* b = layerBackends[static_cast<std::size_t>(l)];
        // A sliding-window layer on the CPU keeps its window and room for a piece of new rows
        // (see makeRoom); other backends record decode steps at fixed positions: the whole context.
        recurrent_.push_back({});
        if (c.layers[static_cast<std::size_t>(l)].recurrent) {
            // A recurrent layer keeps its state (zeros: nothing seen yet), no keys and values.
            const std::int64_t convFloats = (c.deltaNet.convTaps - 1) * c.deltaNet.convChannels();
            kvMemory_.push_back(b->allocBytes(c.deltaNet.stateFloats() * 4));
            recurrent_.back().conv = static_cast<float*>(kvMemory_.back().get());
            recurrent_.back().matrices = recurrent_.back().conv + convFloats;
            kv_.push_back(KvLayer{kvType, nullptr, nullptr, 0, c.headDim});
            kvBase_.push_back(0);
            continue;
        }
        const std::int64_t window = c.layers[static_cast<std::size_t>(l)].window;
        const std::int64_t positions = b->hostMemory() ? windowedCachePositions(window, nCtx_, windowChunk_) : nCtx_;
        windowed_ = windowed_ || positions < nCtx_;
        const std::int64_t kvBytes = positions * kvDim * (q8 ? 1 : kvType == DType::F16 ? 2 : 4);
        KvLayer layer{kvType, nullptr, nullptr, positions, c.headDim};
        const auto take = [&](std::int64_t bytes) {
            kvMemory_.push_back(b->allocBytes(bytes));
            return kvMemory_.back().get();
        };
        layer.keys = take(kvBytes);
        layer.values = take(kvBytes);
        if (q8) {  // one F32 scale per 32 values
            layer.keyScales = static_cast<float*>(take(positions * kvDim / 32 * 4));
            layer.valueScales = static_cast<float*>(take(positions * kvDim / 32 * 4));
        }
        kv_.push_back(layer);
        kvBase_.push_back(0);
    }
    for (const LayerAttention& la : c.layers)
        if (la.recurrent) recurrentFloats_ += c.deltaNet.stateFloats();
    for (auto& stage : stages_) reserve(stage, 1, false);
    logits_.resize(static_cast<std::size_t>(c.vocabSize));
}

void LanguageSession::reserve(Stage& stage, std::int64_t n, bool allLogits) {
    const ModelConfig& c = model_->config();
    ActivationBuffers& b = stage.buffers;
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
        // (a mixture of experts decodes a token through all its experts at once: MoeBuffers)
        const std::int64_t expertRows = std::max(n, c.nExpertsUsed);
        const std::int64_t ffn = std::max({n * c.ffnDim, expertRows * c.expertFfnDim, n * c.sharedExpertFfnDim});
        b.gate = be.alloc(ffn);
        b.up = be.alloc(ffn);
        b.ffn = be.alloc(n * c.dim);
        if (c.nExperts > 0) {
            b.router = be.alloc(n * c.nExperts);
            b.expertRows = be.alloc(n * c.dim);
            b.expertOut = be.alloc(expertRows * c.dim);
        }
        if (c.gatedAttention) {
            b.queryGate = be.alloc(n * 2 * qDim);
            b.attGate = be.alloc(n * qDim);
        }
        if (c.hasRecurrentLayers()) {
            const DeltaNetConfig& d = c.deltaNet;
            b.deltaIn = be.alloc(n * d.convChannels());
            b.deltaConv = be.alloc(n * d.convChannels());
            b.deltaZ = be.alloc(n * d.valueWidth());
            b.deltaAlpha = be.alloc(n * d.nVHeads);
            b.deltaBeta = be.alloc(n * d.nVHeads);
            b.deltaY = be.alloc(n * d.valueWidth());
        }
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

void LanguageSession::truncate(std::int64_t pos) {
    pos = std::clamp<std::int64_t>(pos, 0, pos_);
    const bool back = pos < pos_;
    pos_ = pos;
    // A recurrent state goes back to the latest snapshot at or before pos (later ones belong to
    // the rows that go).
    if (recurrent() && back) rewindRecurrent();
    // The next row at pos_ sees pos_ - window + 1 on: a cache that dropped some of those cannot go on.
    const ModelConfig& c = model_->config();
    for (std::size_t l = 0; l < kv_.size(); ++l)
        if (kvBase_[l] > 0 && kvBase_[l] > pos_ - c.layers[l].window + 1) {
            pos_ = 0;
            std::fill(kvBase_.begin(), kvBase_.end(), std::int64_t{0});
            if (recurrent()) {
                snapshots_.clear();
                loadRecurrent(nullptr);
            }
            return;
        }
}

Backend& LanguageSession::layerBackend(std::int64_t layer) const {
    for (const Stage& s : stages_)
        if (layer >= s.first && layer < s.end) return *s.backend;
    throw std::logic_error("a layer outside the session's stages");
}

void LanguageSession::loadRecurrent(const float* floats) {
    const ModelConfig& c = model_->config();
    const std::int64_t each = c.deltaNet.stateFloats();
    std::vector<float> zeros;
    if (!floats) zeros.assign(static_cast<std::size_t>(each), 0.0f);
    for (std::int64_t l = 0; l < c.nLayers; ++l) {
        if (!c.layers[static_cast<std::size_t>(l)].recurrent) continue;
        layerBackend(l).upload(floats ? floats : zeros.data(), recurrent_[static_cast<std::size_t>(l)].conv, each);
        if (floats) floats += each;
    }
}

void LanguageSession::takeSnapshot(bool pinned) {
    if (!recurrent()) return;
    if (!snapshots_.empty() && snapshots_.back().position == pos_) {
        snapshots_.back().pinned = snapshots_.back().pinned || pinned;
        return;
    }
    const auto bytes = static_cast<std::uint64_t>(recurrentFloats_) * 4;
    if (bytes > snapshotLimit_) return;
    const ModelConfig& c = model_->config();
    const std::int64_t each = c.deltaNet.stateFloats();
    Snapshot s{pos_, std::vector<float>(static_cast<std::size_t>(recurrentFloats_)), pinned};
    float* out = s.state.data();
    for (std::int64_t l = 0; l < c.nLayers; ++l) {
        if (!c.layers[static_cast<std::size_t>(l)].recurrent) continue;
        layerBackend(l).download(recurrent_[static_cast<std::size_t>(l)].conv, out, each);
        out += each;
    }
    snapshots_.push_back(std::move(s));
    evictSnapshots();
}

void LanguageSession::evictSnapshots() {
    // The oldest first, but the latest pinned one (regenerate's) last.
    while (!snapshots_.empty() && snapshotBytes() > snapshotLimit_) {
        auto keep = snapshots_.end();
        for (auto it = snapshots_.begin(); it != snapshots_.end(); ++it)
            if (it->pinned) keep = it;
        auto drop = snapshots_.begin();
        if (drop == keep && snapshots_.size() > 1) ++drop;
        snapshots_.erase(drop);
    }
}

void LanguageSession::setSnapshotLimit(std::uint64_t bytes) {
    snapshotLimit_ = bytes;
    evictSnapshots();
}

void LanguageSession::rewindRecurrent() {
    while (!snapshots_.empty() && snapshots_.back().position > pos_) snapshots_.pop_back();
    loadRecurrent(snapshots_.empty() ? nullptr : snapshots_.back().state.data());
    pos_ = snapshots_.empty() ? 0 : snapshots_.back().position;
}

std::vector<std::int64_t> LanguageSession::snapshotPositions() const {
    std::vector<std::int64_t> out;
    for (const Snapshot& s : snapshots_) out.push_back(s.position);
    return out;
}

void LanguageSession::snapshotOnInterval() {
    if (recurrent() && snapshotInterval_ > 0 && pos_ % snapshotInterval_ == 0) takeSnapshot(false);
}

void LanguageSession::makeRoom(std::int64_t n) {
    const ModelConfig& c = model_->config();
    for (std::size_t l = 0; l < kv_.size(); ++l) {
        KvLayer& kv = kv_[l];
        if (c.layers[l].recurrent) continue;
        const std::int64_t keep = c.layers[l].window - 1, drop = pos_ - keep - kvBase_[l];
        if (kv.capacity >= nCtx_ || pos_ + n - kvBase_[l] <= kv.capacity || drop <= 0) continue;
        // The window the rows need (pos_ - window + 1 .. pos_ - 1) to the start, head by head (the
        // CPU keeps each KV head's rows together), keys, values and their Q8_0 scales alike.
        const auto move = [&](void* data, std::int64_t rowBytes) {
            auto* bytes = static_cast<std::uint8_t*>(data);
            for (std::int64_t h = 0; h < c.nKvHeads; ++h) {
                std::uint8_t* head = bytes + h * kv.capacity * rowBytes;
                std::memmove(head, head + drop * rowBytes, static_cast<std::size_t>(keep * rowBytes));
            }
        };
        const std::int64_t valueBytes = kv.dtype == DType::F32 ? 4 : kv.dtype == DType::F16 ? 2 : 1;
        move(kv.keys, c.headDim * valueBytes);
        move(kv.values, c.headDim * valueBytes);
        if (kv.keyScales) {
            move(kv.keyScales, c.headDim / 32 * 4);
            move(kv.valueScales, c.headDim / 32 * 4);
        }
        kvBase_[l] += drop;
    }
}

void LanguageSession::forwardInPieces(std::span<const std::int32_t> tokens, const float* embeddings, std::int64_t n, bool allLogits) {
    // Pieces end where a windowed cache needs room made, and where a snapshot is due.
    const bool snapshots = recurrent() && snapshotInterval_ > 0;
    const auto piece = [&](std::int64_t left) {
        std::int64_t m = left;
        if (windowed_) m = std::min(m, windowChunk_);
        if (snapshots) m = std::min(m, (pos_ / snapshotInterval_ + 1) * snapshotInterval_ - pos_);
        return m;
    };
    if (piece(n) == n) {
        forward(tokens, embeddings, n, allLogits);
        snapshotOnInterval();
        return;
    }
    const std::int64_t vocab = model_->config().vocabSize, dim = model_->config().dim;
    if (allLogits) pieceLogits_.clear();
    for (std::int64_t i = 0, m = 0; i < n; i += m) {
        m = piece(n - i);
        forward(embeddings ? tokens : tokens.subspan(static_cast<std::size_t>(i), static_cast<std::size_t>(m)), embeddings ? embeddings + i * dim : nullptr,
                m, allLogits);
        snapshotOnInterval();
        if (allLogits) pieceLogits_.insert(pieceLogits_.end(), batchLogits_.begin(), batchLogits_.begin() + m * vocab);
    }
    if (allLogits) batchLogits_.swap(pieceLogits_);
}

const std::vector<float>& LanguageSession::decode(std::int32_t token) {
    forward(std::span<const std::int32_t>(&token, 1), nullptr, 1, false);
    snapshotOnInterval();
    return logits_;
}

const std::vector<float>& LanguageSession::prefill(std::span<const std::int32_t> tokens, bool allLogits) {
    if (tokens.empty()) throw std::invalid_argument("prefill needs at least one token");
    forwardInPieces(tokens, nullptr, static_cast<std::int64_t>(tokens.size()), allLogits);
    return allLogits ? batchLogits_ : logits_;
}

const std::vector<float>& LanguageSession::prefillEmbeddings(std::span<const float> rows, bool allLogits) {
    const std::int64_t dim = model_->config().dim;
    if (rows.empty() || static_cast<std::int64_t>(rows.size()) % dim != 0)
        throw std::invalid_argument("input embeddings come in rows of " + std::to_string(dim) + " values");
    forwardInPieces({}, rows.data(), static_cast<std::int64_t>(rows.size()) / dim, allLogits);
    return allLogits ? batchLogits_ : logits_;
}

void LanguageSession::forward(std::span<const std::int32_t> tokens, const float* embeddings, std::int64_t n, bool allLogits) {
    const ModelConfig& c = model_->config();
    if (pos_ + n > nCtx_) throw std::out_of_range("the context is full (" + std::to_string(nCtx_) + " tokens)");
    for (auto t : tokens)
        if (t < 0 || t >= c.vocabSize) throw std::out_of_range("token id " + std::to_string(t) + " is outside the vocabulary");
    for (auto& stage : stages_) reserve(stage, n, allLogits);
    if (windowed_) makeRoom(n);
    // (a pass that fails part-way may have moved recurrent states on: they go back with pos_)
    try {
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
            // (a mixture of experts routes on the host: its steps are not the same ops every token)
            if (n > 1 || embeddings || c.nExperts > 0) {
                runLayers(stage, last, n, allLogits, embeddings == nullptr);
                continue;
            }
            // A decode step: the same ops on the same buffers every token, which a backend may
            // record once and replay.
            const std::uint64_t key = (std::uint64_t{id_} << 32) | (std::uint64_t{generation_} << 16) | s;
            if (be.replayStep(key, pos_, nCtx_)) continue;
            be.beginStep(key, pos_, nCtx_);
            try {
                runLayers(stage, last, n, allLogits, embeddings == nullptr);
            } catch (...) {
                be.endStep(false);
                throw;
            }
            be.endStep(true);
        }
    } catch (...) {
        if (recurrent()) rewindRecurrent();
        throw;
    }
    pos_ += n;
    Stage& last = stages_.back();
    // Gemma 2 soft-caps the logits: cap * tanh(logit / cap).
    const auto softcap = [cap = c.finalSoftcap](std::vector<float>& logits) {
        if (cap > 0.0f)
            for (float& v : logits) v = cap * std::tanh(v / cap);
    };
    if (allLogits) {
        batchLogits_.resize(static_cast<std::size_t>(n * c.vocabSize));
        last.backend->download(last.buffers.logits.get(), batchLogits_.data(), n * c.vocabSize);
        softcap(batchLogits_);
        std::copy(batchLogits_.end() - c.vocabSize, batchLogits_.end(), logits_.begin());
    } else {
        last.backend->download(last.buffers.logits.get(), logits_.data(), c.vocabSize);
        softcap(logits_);
    }
    // Another program wrote over the mapped weights (their reads then gave zeros, not a crash).
    if (model_->file().changedOnDisk())
        throw std::runtime_error(model_->file().displayName() + " changed on disk while in use (another program wrote over it): load the model again");
    // (NaN goes through every later position: the last row tells)
    requireFinite(logits_, "the logits at position " + std::to_string(pos_ - 1));
}

// The stage's layers over n rows at positions pos_.., and on the last stage the final norm and
// the vocabulary projection. `tokens`: the rows are token embeddings (not input rows given in
// their place), which some families scale.
void LanguageSession::runLayers(Stage& stage, bool last, std::int64_t n, bool allLogits, bool tokens) {
    const ModelConfig& c = model_->config();
    const ModelWeights& w = model_->weights();
    const ModelFamily& family = model_->family();
    Backend& be = *stage.backend;
    ActivationBuffers& b = stage.buffers;
    if (tokens && stage.first == 0 && c.embeddingScale != 1.0f) be.scale(b.x.get(), c.embeddingScale, n * c.dim);
    for (std::int64_t l = stage.first; l < stage.end; ++l) {
        const auto i = static_cast<std::size_t>(l);
        const LayerPass pass{be, c, c.layers[i], kv_[i], ropeFactors_, pos_, pos_ - kvBase_[i], n, b, recurrent_[i]};
        family.layer(pass, w.layers[i]);
    }
    if (!last) return;
    // Final norm and the vocabulary projection.
    const std::int64_t rows = allLogits ? n : 1;
    be.rmsNorm(b.x.get() + (n - rows) * c.dim, w.outputNorm, c.rmsEps, c.dim, rows, b.xb.get());
    be.matmul(w.output, b.xb.get(), rows, b.logits.get());
}

}  // namespace lumen::inference
