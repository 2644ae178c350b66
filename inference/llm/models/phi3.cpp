// Phi-3, Phi-3.5, Phi-4 and Phi-4-mini: llama's pre-norm block with SwiGLU and NeoX RoPE, with
// q, k and v in one matrix and gate and up in another (taken here as row views, so the block
// code sees separate weights), RoPE on the first rope.dimension_count dimensions of each head
// (Phi-4-mini: 3/4 of them), LongRoPE and a sliding window when the file declares them.
//
//   blk.N.attn_qkv.weight    (dim, (nHeads + 2 nKvHeads) * headDim)   q rows, then k, then v
//                            (or attn_q/k/v as separate tensors)
//   blk.N.ffn_up.weight      (dim, 2 ffn)                              gate rows, then up
//   rope_factors_short.weight, rope_factors_long.weight  (ropeDims / 2, F32)  LongRoPE
//
// LongRoPE divides each frequency by a factor: the short ones while a session fits the
// original context (rope.scaling.original_context_length), the long ones past it, and scales
// cosine and sine by rope.scaling.attn_factor (sqrt(1 + ln(s) / ln(original)), s the ratio of
// the extended context to the original, as the converter computes it).

#include <cmath>

#include "inference/llm/models/family.h"

namespace lumen::inference {
namespace {

void read(ModelReader& r, ModelConfig& c, ModelWeights& w) {
    r.readCommon();
    c.ropeStyle = RopeStyle::NeoX;
    const std::int64_t window = r.getInt("attention.sliding_window", 0);
    if (window < 0) r.fail("the sliding window is " + std::to_string(window));
    for (LayerAttention& la : c.layers) la.window = window;
    w.ropeFreqs = r.tensor("rope_factors_short.weight", {c.ropeDims / 2}, true);
    w.ropeFreqsLong = r.tensor("rope_factors_long.weight", {c.ropeDims / 2}, true);
    for (const Tensor* t : {&w.ropeFreqs, &w.ropeFreqsLong})
        if (t->data && t->dtype != DType::F32) r.fail("tensor '" + t->name + "' must be F32");
    if (w.ropeFreqsLong.data) {
        c.ropeOriginalContext = r.getInt("rope.scaling.original_context_length", c.contextLength);
        const float ratio = static_cast<float>(c.contextLength) / static_cast<float>(std::max<std::int64_t>(c.ropeOriginalContext, 2));
        const float computed = ratio > 1.0f ? std::sqrt(1.0f + std::log(ratio) / std::log(static_cast<float>(c.ropeOriginalContext))) : 1.0f;
        c.ropeAttnFactor = r.getFloat("rope.scaling.attn_factor", computed);
        if (!std::isfinite(c.ropeAttnFactor) || c.ropeAttnFactor <= 0.0f) r.fail("the RoPE attention factor is not a positive number");
    }
    const std::int64_t qDim = c.nHeads * c.headDim, kvDim = c.nKvHeads * c.headDim;
    for (std::int64_t l = 0; l < c.nLayers; ++l) {
        LayerWeights& L = w.layers[static_cast<std::size_t>(l)];
        const std::string p = "blk." + std::to_string(l) + ".";
        if (r.file().findTensor(p + "attn_qkv.weight")) {
            const Tensor qkv = r.tensor(p + "attn_qkv.weight", {c.dim, qDim + 2 * kvDim});
            L.attnNorm = r.tensor(p + "attn_norm.weight", {c.dim});
            L.wq = ModelReader::rows(qkv, 0, qDim, p + "attn_qkv.weight (q)");
            L.wk = ModelReader::rows(qkv, qDim, kvDim, p + "attn_qkv.weight (k)");
            L.wv = ModelReader::rows(qkv, qDim + kvDim, kvDim, p + "attn_qkv.weight (v)");
            L.wo = r.tensor(p + "attn_output.weight", {qDim, c.dim});
        } else {
            r.readAttention(L, l);
        }
        L.ffnNorm = r.tensor(p + "ffn_norm.weight", {c.dim});
        const Tensor gateUp = r.tensor(p + "ffn_up.weight", {c.dim, 2 * c.ffnDim});
        L.wGate = ModelReader::rows(gateUp, 0, c.ffnDim, p + "ffn_up.weight (gate)");
        L.wUp = ModelReader::rows(gateUp, c.ffnDim, c.ffnDim, p + "ffn_up.weight (up)");
        L.wDown = r.tensor(p + "ffn_down.weight", {c.ffnDim, c.dim});
    }
}

}  // namespace

const ModelFamily kPhi3Family{"phi3", {"phi3"}, read, preNormLayer};

}  // namespace lumen::inference
