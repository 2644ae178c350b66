#pragma once
// A decoder-only language model from a GGUF file: the config and weights every family shares,
// and a session (KV cache, activations, the layer loop). What differs between families (which
// tensors and keys the file has, the order of a layer's blocks) lives in one file per family
// under models/. Shapes in ggml order (ne0 = input width of a row):
//
//   token_embd.weight          (dim, vocab)
//   blk.N.attn_norm.weight     (dim)
//   blk.N.attn_q.weight        (dim, nHeads * headDim)      [+ attn_q.bias (nHeads * headDim), qwen2]
//   blk.N.attn_k.weight        (dim, nKvHeads * headDim)    [+ attn_k.bias]
//   blk.N.attn_v.weight        (dim, nKvHeads * headDim)    [+ attn_v.bias]
//   blk.N.attn_q_norm.weight   (headDim)                    qwen3, gemma3: RMSNorm of each query head
//   blk.N.attn_k_norm.weight   (headDim)                    qwen3, gemma3
//   blk.N.attn_output.weight   (nHeads * headDim, dim)
//   blk.N.post_attention_norm.weight (dim)                  gemma2, gemma3
//   blk.N.ffn_norm.weight      (dim)
//   blk.N.ffn_gate.weight      (dim, ffn)
//   blk.N.ffn_up.weight        (dim, ffn)
//   blk.N.ffn_down.weight      (ffn, dim)
//   blk.N.post_ffw_norm.weight (dim)                        gemma2, gemma3
//   output_norm.weight         (dim)
//   output.weight              (dim, vocab)   absent when tied to token_embd
//   rope_freqs.weight          (ropeDims / 2) F32, Llama 3.1+: divisors of each RoPE frequency
//
// Mixtures of experts (llama files with experts: Mixtral; qwen3moe) replace ffn_gate/up/down by
//   blk.N.ffn_gate_inp.weight  (dim, nExperts)              the router
//   blk.N.ffn_gate_exps.weight (dim, expertFfn, nExperts)   each expert's gate, one 2-D slice each
//   blk.N.ffn_up_exps.weight   (dim, expertFfn, nExperts)
//   blk.N.ffn_down_exps.weight (expertFfn, dim, nExperts)
//   blk.N.ffn_gate_inp_shexp.weight (dim), ffn_gate/up_shexp.weight (dim, sharedFfn),
//   ffn_down_shexp.weight (sharedFfn, dim)             qwen2moe: a shared expert, sigmoid-gated
//
// Qwen3.5 (qwen35, qwen35moe) mixes Gated DeltaNet layers (a recurrence with a fixed-size state
// instead of a KV cache; see models/qwen35.cpp for their tensors) with gated attention layers,
// whose attn_q.weight (dim, 2 * nHeads * headDim) gives each head's query and then its output
// gate.
//
// Phi-3 stores q, k and v as one attn_qkv.weight and gate and up as one ffn_up.weight; its
// loader takes row views of them, so the layer sees the same fields.

#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "inference/core/backend.h"
#include "inference/core/memory.h"
#include "inference/formats/gguf.h"

namespace lumen::inference {

// How one layer's attention differs from the next: local (sliding-window) and global layers of
// Gemma, NoPE layers of SmolLM3.
struct LayerAttention {
    std::int64_t window = 0;  // a query sees this many positions, itself included; 0: all
    bool rope = true;         // false: no rotation by position
    float ropeBase = 10000.0f;
    float ropeScale = 1.0f;   // linear RoPE scaling: positions are divided by it
    bool recurrent = false;   // a Gated DeltaNet layer (qwen35): a recurrent state, no attention or KV cache
};

// The Gated DeltaNet layers' sizes (see DeltaNetSpec): the short convolution's taps, the key and
// value heads and their dimensions.
struct DeltaNetConfig {
    std::int64_t convTaps = 0;
    std::int64_t nKHeads = 0;
    std::int64_t nVHeads = 0;
    std::int64_t kDim = 0;
    std::int64_t vDim = 0;

    std::int64_t convChannels() const { return 2 * nKHeads * kDim + nVHeads * vDim; }
    std::int64_t valueWidth() const { return nVHeads * vDim; }
    // Floats of one layer's recurrent state: the convolution's last convTaps - 1 input rows and
    // the heads' kDim x vDim matrices.
    std::int64_t stateFloats() const { return (convTaps - 1) * convChannels() + nVHeads * kDim * vDim; }
};

struct ModelConfig {
    std::string architecture;  // general.architecture: llama, mistral, qwen2, qwen3, gemma2, ...
    std::int64_t dim = 0;
    std::int64_t nLayers = 0;
    std::int64_t nHeads = 0;
    std::int64_t nKvHeads = 0;
    std::int64_t headDim = 0;
    std::int64_t ffnDim = 0;
    std::int64_t vocabSize = 0;
    std::int64_t contextLength = 0;  // what the model was trained for
    std::int64_t ropeDims = 0;       // dimensions of each head that RoPE rotates
    float ropeFreqBase = 10000.0f;
    RopeStyle ropeStyle = RopeStyle::Interleaved;
    float rmsEps = 1e-5f;
    float attentionScale = 0.0f;    // query scale; 0: 1 / sqrt(headDim)
    float attentionSoftcap = 0.0f;  // gemma2: scores = cap * tanh(scores / cap)
    float finalSoftcap = 0.0f;      // gemma2: the logits likewise
    float embeddingScale = 1.0f;    // gemma: token embeddings times sqrt(dim) (not input rows given in their place)
    float ropeAttnFactor = 1.0f;    // phi3 LongRoPE, YaRN: cosine and sine scaled by it
    std::int64_t ropeOriginalContext = 0;  // phi3 LongRoPE: sessions longer than this use the long factors
    std::vector<LayerAttention> layers;    // nLayers entries
    // Mixtures of experts (nExperts 0: a dense FFN): each token through nExpertsUsed experts of
    // expertFfnDim, their routing weights renormalised over the chosen ones when expertWeightsNorm.
    std::int64_t nExperts = 0;
    std::int64_t nExpertsUsed = 0;
    std::int64_t expertFfnDim = 0;
    bool expertWeightsNorm = true;
    float expertWeightsScale = 1.0f;
    float swigluLimit = 0.0f;  // gpt-oss: > 0, its experts' clamped SwiGLU (ClampedSwiglu)
    std::int64_t sharedExpertFfnDim = 0;  // qwen2moe: the shared expert's width (0: none)
    bool gatedAttention = false;  // qwen35: attn_q gives each head a query and an output gate (sigmoid)
    DeltaNetConfig deltaNet;      // qwen35: the recurrent layers' sizes (LayerAttention::recurrent)

    bool hasRecurrentLayers() const { return deltaNet.nVHeads > 0; }
};

struct LayerWeights {
    Tensor attnNorm, wq, wk, wv, wo, ffnNorm, wGate, wUp, wDown;
    Tensor bq, bk, bv;                 // qwen2, gpt-oss (data == nullptr when absent)
    Tensor bo;                         // gpt-oss: attn_output.bias
    Tensor sinks;                      // gpt-oss: attn_sinks.weight, one F32 logit per query head
    Tensor qNorm, kNorm;               // qwen3, gemma3
    Tensor postAttnNorm, postFfnNorm;  // gemma2, gemma3
    Tensor router;                                          // mixtures of experts: ffn_gate_inp
    std::vector<Tensor> expertGate, expertUp, expertDown;  // one slice of the *_exps tensors per expert
    Tensor routerBias;                                                // gpt-oss: ffn_gate_inp.bias
    std::vector<Tensor> expertGateBias, expertUpBias, expertDownBias;  // gpt-oss: rows of ffn_*_exps.bias
    Tensor sharedGateInp, sharedGate, sharedUp, sharedDown;           // qwen2moe: ffn_gate_inp_shexp, ffn_*_shexp
    // Gated DeltaNet (qwen35): attn_qkv, attn_gate (z), ssm_alpha, ssm_beta, ssm_conv1d, ssm_a,
    // ssm_dt.bias, ssm_norm, ssm_out.
    Tensor deltaQkv, deltaZ, deltaAlpha, deltaBeta, deltaConv, deltaA, deltaDtBias, deltaNorm, deltaOut;

    // Every tensor, present or not, for the loops that place or count them.
    std::vector<const Tensor*> all() const {
        std::vector<const Tensor*> out{&attnNorm, &wq,    &wk,    &wv,           &wo,          &ffnNorm, &wGate,     &wUp, &wDown,
                                       &bq,       &bk,    &bv,    &bo,           &sinks,       &qNorm,   &kNorm,     &postAttnNorm,
                                       &postFfnNorm, &router, &routerBias, &sharedGateInp, &sharedGate, &sharedUp, &sharedDown,
                                       &deltaQkv,    &deltaZ, &deltaAlpha, &deltaBeta,     &deltaConv,  &deltaA,   &deltaDtBias,
                                       &deltaNorm,   &deltaOut};
        for (const auto* experts : {&expertGate, &expertUp, &expertDown, &expertGateBias, &expertUpBias, &expertDownBias})
            for (const Tensor& t : *experts) out.push_back(&t);
        return out;
    }
};

struct ModelWeights {
    Tensor tokenEmbedding, outputNorm, output;
    Tensor ropeFreqs;      // RoPE frequency divisors (ropeDims / 2, F32): Llama 3's, Phi-3's short ones; absent otherwise
    Tensor ropeFreqsLong;  // Phi-3's long ones, for sessions past ropeOriginalContext
    std::vector<float> computedRopeFreqs;  // what ropeFreqs points to when the loader computed it (YaRN)
    std::vector<LayerWeights> layers;
};

struct ModelFamily;

// A model with recurrent layers (qwen35) cannot cut its state back like a KV cache, so a session
// keeps copies of it (snapshots) to go back to: every kSnapshotInterval positions, and where its
// owner asks (the end of a prompt). This bounds their memory unless the session is told otherwise.
constexpr std::uint64_t kSnapshotBytes = 256ull << 20;
constexpr std::int64_t kSnapshotInterval = 256;

// The model: config and weight views over a memory-mapped GGUF file (kept open here).
class LanguageModel {
public:
    // FormatError when the file's architecture is not one of supportedArchitectures(), or a
    // tensor or key the family needs is missing or misshapen.
    static std::shared_ptr<LanguageModel> load(std::shared_ptr<const GgufFile> file);

    const ModelConfig& config() const { return config_; }
    const ModelFamily& family() const { return *family_; }
    // Weights + KV cache + activations for a session of `contextSize` tokens.
    // (Recurrent layers: their state, and as many snapshots of it as fit in snapshotBytes and
    // the context holds.)
    MemoryEstimate estimateMemory(std::int64_t contextSize, DType kvType = DType::F16, std::uint64_t snapshotBytes = kSnapshotBytes) const;
    // How many of the last layers (with their KV cache, and the output head) fit in `bytes` of
    // GPU memory: nLayers when the whole model does (the embedding table then goes too).
    std::int64_t gpuLayersFitting(std::uint64_t bytes, std::int64_t contextSize, DType kvType = DType::F16) const;
    const ModelWeights& weights() const { return weights_; }
    const GgufFile& file() const { return *file_; }

private:
    std::shared_ptr<const GgufFile> file_;
    const ModelFamily* family_ = nullptr;
    ModelConfig config_;
    ModelWeights weights_;
};

// The architectures this version reads, for messages ("llama, mistral, qwen2, ...").
std::string supportedArchitectures();

// Which backend runs each layer: the first nLayers - gpuLayers layers on `cpu`, the rest (and
// then the output head) on `gpu`. A model split this way passes the residual stream from one to
// the other once per forward pass.
struct LayerSplit {
    Backend* cpu = nullptr;
    Backend* gpu = nullptr;
    std::int64_t gpuLayers = 0;
};

// Activations of up to `capacity` tokens on one backend.
struct ActivationBuffers {
    std::int64_t capacity = 0;
    std::shared_ptr<float[]> x, xb, q, k, v, attOut, att, gate, up, ffn, logits;
    std::shared_ptr<float[]> router, expertRows, expertOut;  // mixtures of experts (MoeBuffers)
    std::shared_ptr<float[]> queryGate, attGate;             // gated attention: q and gate as projected, the gate
    std::shared_ptr<float[]> deltaIn, deltaConv, deltaZ, deltaAlpha, deltaBeta, deltaY;  // Gated DeltaNet
};

// A Gated DeltaNet layer's state in a session (backend memory): the convolution's last input
// rows and the heads' matrices (DeltaNetConfig::stateFloats() floats from conv on).
struct RecurrentState {
    float* conv = nullptr;
    float* matrices = nullptr;
};

// A sliding-window layer's cache on the CPU keeps its window and room for this many new rows
// (window - 1 + kWindowChunk positions) instead of the whole context; a session runs prompts in
// pieces of at most this many rows, and moves the window back to the start when the room is used.
constexpr std::int64_t kWindowChunk = 256;
// Positions such a layer's cache holds in a session of contextSize (chunk 0: every position).
std::int64_t windowedCachePositions(std::int64_t window, std::int64_t contextSize, std::int64_t chunk = kWindowChunk);

// One sequence's state: the KV cache and scratch activations, on the backends that run it.
class LanguageSession {
public:
    // Every layer on one backend. windowChunk: see kWindowChunk (0: every layer keeps every
    // position; tests compare the two).
    LanguageSession(std::shared_ptr<const LanguageModel> model, Backend& backend, std::int64_t contextSize, DType kvType = DType::F16,
                    std::int64_t windowChunk = kWindowChunk);
    // Layers split between two backends (gpuLayers 0: all on split.cpu; nLayers: all on split.gpu).
    LanguageSession(std::shared_ptr<const LanguageModel> model, const LayerSplit& split, std::int64_t contextSize,
                    DType kvType = DType::F16, std::int64_t windowChunk = kWindowChunk);
    ~LanguageSession();
    LanguageSession(const LanguageSession&) = delete;
    LanguageSession& operator=(const LanguageSession&) = delete;

    std::int64_t contextSize() const { return nCtx_; }
    std::int64_t position() const { return pos_; }  // tokens in the cache
    const LanguageModel& model() const { return *model_; }
    // The logits of the last token run (vocabSize floats).
    const std::vector<float>& lastLogits() const { return logits_; }
    // Drops cached positions from `pos` on (a follow-up turn reuses the common prefix). When a
    // sliding-window layer no longer holds the window the position after them needs, everything
    // goes: position() then says 0, and the caller runs the prompt from the start. A model with
    // recurrent layers goes back to its latest snapshot at or before `pos` (or the start), and
    // position() says which.
    void truncate(std::int64_t pos);
    // Recurrent layers' snapshots (see kSnapshotBytes): snapshot() keeps one at position() (the
    // end of a prompt: the latest of these is the last to go); past the limit the oldest others
    // go first. No-ops for other models.
    bool recurrent() const { return recurrentFloats_ > 0; }
    void snapshot() { takeSnapshot(true); }
    void setSnapshotLimit(std::uint64_t bytes);
    // Positions apart of the snapshots taken while running (0: only where snapshot() is called).
    void setSnapshotInterval(std::int64_t positions) { snapshotInterval_ = std::max<std::int64_t>(0, positions); }
    std::vector<std::int64_t> snapshotPositions() const;
    std::uint64_t snapshotBytes() const { return static_cast<std::uint64_t>(snapshots_.size()) * static_cast<std::uint64_t>(recurrentFloats_) * 4; }
    // Positions held by each layer's cache (the memory it takes).
    std::int64_t cachePositions(std::int64_t layer) const { return kv_[static_cast<std::size_t>(layer)].capacity; }

    // Runs token `token` at the next position and returns the logits (vocabSize floats, host
    // memory, valid until the next call). Throws std::out_of_range when the context is full.
    const std::vector<float>& decode(std::int32_t token);
    // Runs several tokens at once (a prompt): each weight matrix is read once for all of them.
    // Returns the logits of the last token, or of every token (row-major, tokens x vocab) when
    // allLogits is set. Same results as decoding the tokens one by one.
    const std::vector<float>& prefill(std::span<const std::int32_t> tokens, bool allLogits = false);
    // The same for rows of input embeddings given in place of tokens (dim values each, host
    // memory): an image's projected features in a multimodal prompt.
    const std::vector<float>& prefillEmbeddings(std::span<const float> rows, bool allLogits = false);

private:
    // Consecutive layers [first, end) on one backend.
    struct Stage {
        Backend* backend = nullptr;
        std::int64_t first = 0, end = 0;
        ActivationBuffers buffers;
    };

    void init(const std::vector<Backend*>& layerBackends, DType kvType);
    Backend& layerBackend(std::int64_t layer) const;
    // Every recurrent layer's state from `floats` (recurrentFloats_ of them), or zeros (nullptr).
    void loadRecurrent(const float* floats);
    // After n rows at pos_: a snapshot where the interval says.
    void snapshotOnInterval();
    void takeSnapshot(bool pinned);
    void evictSnapshots();
    // After a forward pass failed part-way, recurrent layers may have moved on: back to the
    // latest snapshot at or before position() (or the start).
    void rewindRecurrent();
    // Before n rows at pos_: windowed caches whose room is used move their window to the start.
    void makeRoom(std::int64_t n);
    // n rows in pieces of at most windowChunk_ when some cache keeps only its window.
    void forwardInPieces(std::span<const std::int32_t> tokens, const float* embeddings, std::int64_t n, bool allLogits);
    void reserve(Stage& stage, std::int64_t n, bool allLogits);
    void runLayers(Stage& stage, bool last, std::int64_t n, bool allLogits, bool tokens);
    // n tokens, or n rows of `embeddings` when it is given.
    void forward(std::span<const std::int32_t> tokens, const float* embeddings, std::int64_t n, bool allLogits);

    std::shared_ptr<const LanguageModel> model_;
    std::int64_t nCtx_;
    std::int64_t pos_ = 0;
    std::vector<Stage> stages_;
    std::vector<std::shared_ptr<void>> kvMemory_;
    std::vector<KvLayer> kv_;
    std::vector<RecurrentState> recurrent_;  // per layer (recurrent layers only)
    struct Snapshot {
        std::int64_t position;
        std::vector<float> state;  // every recurrent layer's, in layer order
        bool pinned = false;       // taken by snapshot(): a prompt's end
    };
    std::deque<Snapshot> snapshots_;  // by position
    std::int64_t recurrentFloats_ = 0;
    std::uint64_t snapshotLimit_ = kSnapshotBytes;
    std::int64_t snapshotInterval_ = kSnapshotInterval;
    std::vector<std::int64_t> kvBase_;  // per layer: the position in its cache's first slot (windowed caches move on)
    std::int64_t windowChunk_;
    bool windowed_ = false;             // some layer's cache keeps only its window
    std::vector<float> pieceLogits_;    // all-logits prefill in pieces
    const Tensor* ropeFactors_ = nullptr;  // the frequency divisors this session's length calls for
    std::vector<float> logits_;
    std::vector<float> batchLogits_;
    std::vector<float> handOver_;  // the residual stream on its way between two stages
    std::int64_t logitsRows_ = 0;  // rows the last stage's logits buffer holds
    std::uint32_t id_;             // names this session's recorded decode steps
    std::uint16_t generation_ = 0; // bumped when buffers move: older recordings are stale
};

}  // namespace lumen::inference
