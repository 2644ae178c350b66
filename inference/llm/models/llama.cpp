// llama, mistral and qwen2: the pre-norm block with SwiGLU (family.h). llama and mistral files
// hold Q and K permuted by llama.cpp's converter for interleaved RoPE; qwen2 keeps Hugging
// Face's order (NeoX RoPE) and adds biases to q, k and v. Llama 3.1+ files may carry
// rope_freqs.weight, the divisors of its scaled RoPE frequencies. Mixtral is a llama file with
// experts (expert_count, ffn_*_exps): each token through its best expert_used_count SwiGLU
// experts of feed_forward_length, weighted by the softmax of their router logits.

#include "inference/llm/models/family.h"

namespace lumen::inference {
namespace {

void read(ModelReader& r, ModelConfig& c, ModelWeights& w) {
    r.readCommon();
    c.ropeStyle = c.architecture == "qwen2" ? RopeStyle::NeoX : RopeStyle::Interleaved;
    w.ropeFreqs = r.tensor("rope_freqs.weight", {c.ropeDims / 2}, true);
    if (w.ropeFreqs.data && w.ropeFreqs.dtype != DType::F32) r.fail("tensor 'rope_freqs.weight' must be F32");
    const bool moe = r.readExpertCounts(c.ffnDim);
    for (std::int64_t l = 0; l < c.nLayers; ++l) {
        LayerWeights& L = w.layers[static_cast<std::size_t>(l)];
        r.readAttention(L, l);
        if (moe) r.readExperts(L, l);
        else r.readFfn(L, l);
    }
}

}  // namespace

const ModelFamily kLlamaFamily{"llama", {"llama", "mistral", "qwen2"}, read, preNormLayer};

}  // namespace lumen::inference
