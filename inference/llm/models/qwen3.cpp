// Qwen3 (dense): llama's pre-norm block with SwiGLU, NeoX RoPE, no q/k/v biases, and each head of
// q and k RMS-normalised (attn_q_norm, attn_k_norm: headDim weights) before RoPE. The head
// dimension comes from attention.key_length: 128 on every size, so it differs from
// dim / heads on the small ones (0.6B: 1024 / 16).
//
// Qwen3-MoE (qwen3moe: 30B-A3B, 235B-A22B) is the same layer with a mixture of experts for the
// FFN: a softmax router over expert_count experts, the best expert_used_count of them per token
// with their weights renormalised (norm_topk_prob), each expert a SwiGLU of
// expert_feed_forward_length.

#include "inference/llm/models/family.h"

namespace lumen::inference {
namespace {

void read(ModelReader& r, ModelConfig& c, ModelWeights& w) {
    r.readCommon();
    c.ropeStyle = RopeStyle::NeoX;
    const bool moe = c.architecture == "qwen3moe";
    if (moe && !r.readExpertCounts(c.ffnDim)) r.fail("a qwen3moe file needs " + r.key("expert_count"));
    for (std::int64_t l = 0; l < c.nLayers; ++l) {
        LayerWeights& L = w.layers[static_cast<std::size_t>(l)];
        const std::string p = "blk." + std::to_string(l) + ".";
        r.readAttention(L, l);
        L.qNorm = r.tensor(p + "attn_q_norm.weight", {c.headDim});
        L.kNorm = r.tensor(p + "attn_k_norm.weight", {c.headDim});
        if (moe) r.readExperts(L, l);
        else r.readFfn(L, l);
    }
}

}  // namespace

const ModelFamily kQwen3Family{"qwen3", {"qwen3", "qwen3moe"}, read, preNormLayer};

}  // namespace lumen::inference
