// llama, mistral and qwen2: the pre-norm block with SwiGLU (family.h). llama and mistral files
// hold Q and K permuted by llama.cpp's converter for interleaved RoPE; qwen2 keeps Hugging
// Face's order (NeoX RoPE) and adds biases to q, k and v. Llama 3.1+ files may carry
// rope_freqs.weight, the divisors of its scaled RoPE frequencies. Mixtral is a llama file with
// experts (expert_count, ffn_*_exps): each token through its best expert_used_count SwiGLU
// experts of feed_forward_length, weighted by the softmax of their router logits. Qwen2-MoE
// (qwen2moe: Qwen1.5-MoE-A2.7B, Qwen2-57B-A14B) is qwen2 with experts of
// expert_feed_forward_length, their weights not renormalised, and a shared expert of
// expert_shared_feed_forward_length every token goes through, gated by sigmoid(ffn_gate_inp_shexp x).

#include "inference/llm/models/family.h"

namespace lumen::inference {
namespace {

void read(ModelReader& r, ModelConfig& c, ModelWeights& w) {
    r.readCommon();
    const bool qwen2 = c.architecture == "qwen2" || c.architecture == "qwen2moe";
    c.ropeStyle = qwen2 ? RopeStyle::NeoX : RopeStyle::Interleaved;
    if (r.file().findTensor("rope_freqs.weight")) {  // (else YaRN's divisors, if the file asks for YaRN, stay)
        w.ropeFreqs = r.tensor("rope_freqs.weight", {c.ropeDims / 2});
        if (w.ropeFreqs.dtype != DType::F32) r.fail("tensor 'rope_freqs.weight' must be F32");
    }
    const bool moe = r.readExpertCounts(c.ffnDim);
    if (c.architecture == "qwen2moe" && !moe) r.fail("a qwen2moe file needs " + r.key("expert_count"));
    for (std::int64_t l = 0; l < c.nLayers; ++l) {
        LayerWeights& L = w.layers[static_cast<std::size_t>(l)];
        r.readAttention(L, l);
        if (moe) r.readExperts(L, l);
        else r.readFfn(L, l);
    }
}

}  // namespace

const ModelFamily kLlamaFamily{"llama", {"llama", "mistral", "qwen2", "qwen2moe"}, read, preNormLayer};

}  // namespace lumen::inference
