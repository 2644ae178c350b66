#pragma once
// What a model family provides (one file each under models/), and the shared blocks its forward
// pass is written with. A family reads its keys and tensors from the GGUF file into the shared
// config and weights, and runs one layer over the residual stream; the session owns everything
// else (embedding, KV cache, stages on backends, the final norm and logits).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "inference/llm/language_model.h"

namespace lumen::inference {

// One layer's forward over n rows on one backend: the residual stream x, scratch buffers, and
// this layer's cache and attention options.
struct LayerPass {
    Backend& be;
    const ModelConfig& c;
    const LayerAttention& attention;
    const KvLayer& kv;
    const Tensor* ropeFactors;  // may be nullptr
    std::int64_t pos;           // position of the first row
    std::int64_t kvPos;         // where the first row goes in this layer's cache: pos, less the positions a
                                // sliding-window layer's cache has dropped (LanguageSession)
    std::int64_t n;             // rows
    ActivationBuffers& b;
    const RecurrentState& state;  // a recurrent layer's (LayerAttention::recurrent)

    float* x() const { return b.x.get(); }
    // out = RMSNorm(in) * weight, row by row (in == out allowed).
    void norm(const Tensor& weight, const float* in, float* out) const { be.rmsNorm(in, weight, c.rmsEps, c.dim, n, out); }
    // x += y
    void residual(const float* y) const { be.add(b.x.get(), y, n * c.dim); }
};

enum class GatedActivation { Silu, GeluTanh };

// Self-attention of the normalised rows `in` into `out` (n x dim): q/k/v projections (with their
// biases), per-head q/k norms when the layer has them, RoPE unless the layer skips it, the KV
// cache, grouped-query attention with the model's scale, window and soft-cap, the output
// projection.
void attentionBlock(const LayerPass& p, const LayerWeights& L, const float* in, float* out);
// A Gated DeltaNet layer's mixing of the normalised rows `in` into out (n x dim): q/k/v, the
// output gate z and the decay and strength inputs projected, the short convolution, the
// recurrence (Backend::deltaNet), each head's output RMS-normalised and times silu(z), the
// output projection.
void deltaNetBlock(const LayerPass& p, const LayerWeights& L, const float* in, float* out);
// The gated feed-forward network: down(act(gate(in)) * up(in)), into out (n x dim).
void gatedFfnBlock(const LayerPass& p, const LayerWeights& L, const float* in, float* out, GatedActivation act);
// The mixture of experts (Backend::moe) of the normalised rows `in`, into out (n x dim).
void moeFfnBlock(const LayerPass& p, const LayerWeights& L, const float* in, float* out);
// The pre-norm block of llama and most of its descendants:
//   x += attention(norm(x)); x += ffn(norm(x)) with SwiGLU, or a mixture of SwiGLU experts
//   when the layer has a router. A recurrent layer mixes with deltaNetBlock instead of attention.
void preNormLayer(const LayerPass& p, const LayerWeights& L);

// Reading a family's config and tensors from the file.
class ModelReader {
public:
    ModelReader(const GgufFile& file, ModelConfig& config, ModelWeights& weights);

    const GgufFile& file() const { return f_; }
    std::string key(std::string_view name) const { return c_.architecture + "." + std::string(name); }
    std::int64_t getInt(std::string_view name) const { return f_.getInt(key(name)); }
    std::int64_t getInt(std::string_view name, std::int64_t fallback) const { return f_.getInt(key(name), fallback); }
    float getFloat(std::string_view name, double fallback) const { return static_cast<float>(f_.getFloat(key(name), fallback)); }
    bool has(std::string_view name) const;
    // FormatError naming the file unless 0 < v <= 2^20.
    void positive(std::int64_t v, const char* what) const;
    [[noreturn]] void fail(const std::string& message) const;

    // The hyperparameters every family has (dim, layers, heads, ffn, context, RoPE base and
    // dimensions, RMS epsilon) and the embedding, output norm and output head (tied when absent).
    // Every layer starts with the model's RoPE base and no window.
    void readCommon();
    Tensor tensor(const std::string& name, std::vector<std::int64_t> shape, bool optional = false) const;
    // Rows [first, first + count) of a 2-D tensor, as a tensor of its own (a fused weight's part).
    static Tensor rows(const Tensor& t, std::int64_t first, std::int64_t count, const std::string& name);
    // blk.N.attn_q/k/v/output (+ biases when present) and the norm before the block; attn_q
    // twice as tall when the config's attention is gated.
    void readAttention(LayerWeights& L, std::int64_t layer) const;
    // The FFN's norm (blk.N.<norm>) and blk.N.ffn_gate/up/down.
    void readFfn(LayerWeights& L, std::int64_t layer, const char* norm = "ffn_norm.weight") const;
    // The expert counts (expert_count, expert_used_count, expert_feed_forward_length, else
    // `ffnFallback`) into the config; false when the file has no experts.
    bool readExpertCounts(std::int64_t ffnFallback);
    // The FFN's norm (blk.N.<norm>), the router and the experts' slices of ffn_gate/up/down_exps.
    void readExperts(LayerWeights& L, std::int64_t layer, const char* norm = "ffn_norm.weight") const;
    // YaRN RoPE scaling when rope.scaling.type is "yarn": the frequency divisors and the
    // cosine and sine factor it implies (ModelWeights::computedRopeFreqs, ropeAttnFactor).
    // `truncate`: the correction range rounded out to whole dimensions, as llama.cpp and Hugging
    // Face by default compute it; gpt-oss's config turns that off.
    void readYarn(bool truncate);

private:
    const GgufFile& f_;
    ModelConfig& c_;
    ModelWeights& w_;
};

struct ModelFamily {
    std::string_view name;                      // for messages: "llama", "gemma", ...
    std::vector<std::string_view> architectures;  // general.architecture values it reads
    void (*read)(ModelReader& reader, ModelConfig& config, ModelWeights& weights);
    void (*layer)(const LayerPass& pass, const LayerWeights& weights);
};

// The families, one per file under models/.
extern const ModelFamily kLlamaFamily;    // llama, mistral, qwen2
extern const ModelFamily kQwen3Family;    // qwen3
extern const ModelFamily kGemmaFamily;    // gemma2, gemma3
extern const ModelFamily kPhi3Family;     // phi3
extern const ModelFamily kSmolLm3Family;  // smollm3
extern const ModelFamily kGptOssFamily;   // gpt-oss
extern const ModelFamily kQwen35Family;   // qwen35, qwen35moe

// The family that reads `architecture`, or nullptr.
const ModelFamily* findFamily(std::string_view architecture);

}  // namespace lumen::inference
