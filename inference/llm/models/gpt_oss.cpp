// gpt-oss (OpenAI's gpt-oss-20b and -120b; general.architecture "gpt-oss"): a pre-norm mixture of
// experts with
//   - biases on q, k, v and the output projection;
//   - attention sinks: each head's softmax also counts a learned logit with no value
//     (blk.N.attn_sinks.weight, one F32 per head);
//   - a 128-position sliding window on even layers (0, 2, ...), full attention on odd ones;
//   - NeoX RoPE with YaRN scaling (factor 32 over an original 4096 positions); gpt-oss's config
//     does not round YaRN's correction range (Hugging Face's truncate: false, as OpenAI's
//     reference computes it), which llama.cpp does;
//   - the FFN's norm stored as post_attention_norm; a router with a bias whose best k logits are
//     softmaxed; experts with biases and the clamped SwiGLU (alpha 1.702, limit 7).
//
//   blk.N.attn_q/k/v/output.bias      (qDim / kvDim / kvDim / dim)
//   blk.N.attn_sinks.weight           (nHeads) F32
//   blk.N.post_attention_norm.weight  (dim)
//   blk.N.ffn_gate_inp.bias           (nExperts)
//   blk.N.ffn_gate_exps.bias, ffn_up_exps.bias (expertFfn, nExperts); ffn_down_exps.bias (dim, nExperts)
//
// The converter writes no SwiGLU limit: llama.cpp fixes it at 7, and so does this.

#include "inference/llm/models/family.h"

namespace lumen::inference {
namespace {

constexpr float kSwigluLimit = 7.0f;

void read(ModelReader& r, ModelConfig& c, ModelWeights& w) {
    r.readCommon();
    c.ropeStyle = RopeStyle::NeoX;
    if (!r.readExpertCounts(c.ffnDim)) r.fail("a gpt-oss file needs " + r.key("expert_count"));
    c.swigluLimit = kSwigluLimit;
    const std::int64_t window = r.getInt("attention.sliding_window", 128);
    if (window <= 0) r.fail("the sliding window (" + r.key("attention.sliding_window") + ") is " + std::to_string(window));
    for (std::int64_t l = 0; l < c.nLayers; l += 2) c.layers[static_cast<std::size_t>(l)].window = window;
    const std::int64_t ffn = c.expertFfnDim;
    for (std::int64_t l = 0; l < c.nLayers; ++l) {
        LayerWeights& L = w.layers[static_cast<std::size_t>(l)];
        const std::string p = "blk." + std::to_string(l) + ".";
        r.readAttention(L, l);
        L.bq = r.tensor(p + "attn_q.bias", {c.nHeads * c.headDim});
        L.bk = r.tensor(p + "attn_k.bias", {c.nKvHeads * c.headDim});
        L.bv = r.tensor(p + "attn_v.bias", {c.nKvHeads * c.headDim});
        L.bo = r.tensor(p + "attn_output.bias", {c.dim});
        L.sinks = r.tensor(p + "attn_sinks.weight", {c.nHeads});
        if (L.sinks.dtype != DType::F32) r.fail("tensor '" + L.sinks.name + "' must be F32");
        r.readExperts(L, l, "post_attention_norm.weight");
        L.routerBias = r.tensor(p + "ffn_gate_inp.bias", {c.nExperts});
        const Tensor gateBias = r.tensor(p + "ffn_gate_exps.bias", {ffn, c.nExperts});
        const Tensor upBias = r.tensor(p + "ffn_up_exps.bias", {ffn, c.nExperts});
        const Tensor downBias = r.tensor(p + "ffn_down_exps.bias", {c.dim, c.nExperts});
        for (std::int64_t e = 0; e < c.nExperts; ++e) {
            const std::string n = "[" + std::to_string(e) + "]";
            L.expertGateBias.push_back(ModelReader::rows(gateBias, e, 1, gateBias.name + n));
            L.expertUpBias.push_back(ModelReader::rows(upBias, e, 1, upBias.name + n));
            L.expertDownBias.push_back(ModelReader::rows(downBias, e, 1, downBias.name + n));
        }
    }
}

}  // namespace

const ModelFamily kGptOssFamily{"gpt-oss", {"gpt-oss"}, read, preNormLayer};

}  // namespace lumen::inference
