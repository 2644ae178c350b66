// Gemma 2 and Gemma 3 (text). Each layer normalises around both blocks:
//   x += post_attention_norm(attention(attn_norm(x)))
//   x += post_ffw_norm(GeGLU ffn(ffn_norm(x)))         GeGLU: gelu_tanh(gate) * up
// Token embeddings are scaled by sqrt(dim) (rows given in their place, an image's, are not).
// llama.cpp's converter stores Gemma's RMSNorm weights as 1 + w, so they are plain RMSNorm
// weights here. RoPE is NeoX. Local layers attend within a sliding window: every other layer
// from the first in Gemma 2, five of every six in Gemma 3 (each sixth layer is global).
// Gemma 2 soft-caps attention scores and the logits; Gemma 3 normalises each q and k head
// instead (and soft-caps the logits only when final_logit_softcapping is set), and its local layers use RoPE base 10000 while global ones use the file's base with
// linear scaling (rope.scaling.factor).
//
//   blk.N.post_attention_norm.weight (dim)
//   blk.N.post_ffw_norm.weight       (dim)
//   blk.N.attn_q_norm.weight         (headDim)   gemma3
//   blk.N.attn_k_norm.weight         (headDim)   gemma3

#include <cmath>

#include "inference/llm/models/family.h"

namespace lumen::inference {
namespace {

void read(ModelReader& r, ModelConfig& c, ModelWeights& w) {
    r.readCommon();
    const bool gemma3 = c.architecture == "gemma3";
    c.ropeStyle = RopeStyle::NeoX;
    c.rmsEps = r.getFloat("attention.layer_norm_rms_epsilon", 1e-6);
    c.embeddingScale = std::sqrt(static_cast<float>(c.dim));
    // The query scale: 1 / sqrt(query_pre_attn_scalar), which is the head dimension but on the
    // 27B models, where it is dim / heads. The converter does not store it; llama.cpp tells the
    // 27B models by their layer count, and so does this (an attention.scale key wins).
    const bool is27B = c.nLayers == (gemma3 ? 62 : 46);
    c.attentionScale = r.has("attention.scale") ? r.getFloat("attention.scale", 0.0)
                       : is27B                  ? 1.0f / std::sqrt(static_cast<float>(c.dim / c.nHeads))
                                                : 1.0f / std::sqrt(static_cast<float>(c.headDim));
    if (!std::isfinite(c.attentionScale) || c.attentionScale <= 0.0f) r.fail("the attention scale is not a positive number");
    // Gemma 3 files without a window (or with 0) attend globally on every layer, as llama.cpp reads them.
    const std::int64_t window = r.getInt("attention.sliding_window", gemma3 ? 0 : 4096);
    if (window < 0 || (!gemma3 && window == 0)) r.fail("the sliding window is " + std::to_string(window));
    const std::int64_t pattern = gemma3 ? r.getInt("attention.sliding_window_pattern", 6) : 2;
    if (pattern <= 0 || pattern > c.nLayers + 1) r.fail("the sliding window pattern is " + std::to_string(pattern));
    if (!gemma3) c.attentionSoftcap = r.getFloat("attn_logit_softcapping", 50.0);
    c.finalSoftcap = r.getFloat("final_logit_softcapping", gemma3 ? 0.0 : 30.0);
    if (!(c.attentionSoftcap >= 0.0f) || !(c.finalSoftcap >= 0.0f)) r.fail("a soft-capping value is negative or not a number");
    float ropeScale = 1.0f;
    if (gemma3 && r.file().getString(r.key("rope.scaling.type"), "linear") == "linear") {
        ropeScale = r.getFloat("rope.scaling.factor", 1.0);
        if (!std::isfinite(ropeScale) || ropeScale < 1.0f) ropeScale = 1.0f;  // 0 or absent: none
    }
    for (std::int64_t l = 0; l < c.nLayers; ++l) {
        LayerAttention& la = c.layers[static_cast<std::size_t>(l)];
        const bool local = window > 0 && l % pattern < pattern - 1;
        if (local) {
            la.window = window;
            if (gemma3) la.ropeBase = r.getFloat("rope.freq_base_swa", 10000.0);
        } else {
            la.ropeScale = ropeScale;
        }
    }
    for (std::int64_t l = 0; l < c.nLayers; ++l) {
        LayerWeights& L = w.layers[static_cast<std::size_t>(l)];
        const std::string p = "blk." + std::to_string(l) + ".";
        r.readAttention(L, l);
        r.readFfn(L, l);
        L.postAttnNorm = r.tensor(p + "post_attention_norm.weight", {c.dim});
        L.postFfnNorm = r.tensor(p + "post_ffw_norm.weight", {c.dim});
        if (gemma3) {
            L.qNorm = r.tensor(p + "attn_q_norm.weight", {c.headDim});
            L.kNorm = r.tensor(p + "attn_k_norm.weight", {c.headDim});
        }
    }
}

void layer(const LayerPass& p, const LayerWeights& L) {
    ActivationBuffers& b = p.b;
    // Attention block, normalised on the way in and on the way out.
    p.norm(L.attnNorm, p.x(), b.xb.get());
    attentionBlock(p, L, b.xb.get(), b.att.get());
    p.norm(L.postAttnNorm, b.att.get(), b.att.get());
    p.residual(b.att.get());
    // Feed-forward block: GeGLU, likewise.
    p.norm(L.ffnNorm, p.x(), b.xb.get());
    gatedFfnBlock(p, L, b.xb.get(), b.ffn.get(), GatedActivation::GeluTanh);
    p.norm(L.postFfnNorm, b.ffn.get(), b.ffn.get());
    p.residual(b.ffn.get());
}

}  // namespace

const ModelFamily kGemmaFamily{"gemma", {"gemma2", "gemma3"}, read, layer};

}  // namespace lumen::inference
