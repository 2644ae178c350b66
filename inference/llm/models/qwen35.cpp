// Qwen3.5 and Qwen3.6 (qwen35: 0.8B to 27B; qwen35moe: 35B-A3B and up), as llama.cpp's converter
// writes them: three of every four layers are Gated DeltaNet, the fourth gated attention, each
// followed by the FFN (SwiGLU, or a mixture of experts with a shared expert).
//
// Every layer: x += mix(attn_norm(x)); x += ffn(post_attention_norm(x)). The converter stores every
// RMSNorm weight but ssm_norm with Hugging Face's 1 + w already added.
//
// Gated attention layers (layer l when (l + 1) % full_attention_interval == 0, or where
// attention.recurrent_layers says false):
//   blk.N.attn_q.weight  (dim, 2 * nHeads * headDim)  each head's query, then its output gate
//   blk.N.attn_k/v.weight, attn_output.weight, attn_q_norm/attn_k_norm.weight (headDim)
//   q and k RMS-normalised per head, NeoX RoPE on the first rope.dimension_count dimensions
//   (text positions: the file's M-RoPE sections all see the same position, which is plain RoPE),
//   the attention output times sigmoid(gate) before attn_output.
//
// Gated DeltaNet layers (DeltaNetSpec; Hk = ssm.group_count key heads of ssm.state_size, Hv =
// ssm.time_step_rank value heads of ssm.inner_size / Hv):
//   blk.N.attn_qkv.weight   (dim, 2 Hk Dk + Hv Dv)  q | k | v, head after head
//   blk.N.attn_gate.weight  (dim, Hv Dv)            z, the output gate
//   blk.N.ssm_alpha.weight, ssm_beta.weight (dim, Hv)
//   blk.N.ssm_conv1d.weight (ssm.conv_kernel, 2 Hk Dk + Hv Dv) F32, no bias
//   blk.N.ssm_a             (Hv) F32: -exp(A_log)   blk.N.ssm_dt.bias (Hv) F32
//   blk.N.ssm_norm.weight   (Dv)                    blk.N.ssm_out.weight (Hv Dv, dim)
// The converter moves the value heads from Hugging Face's order (the value heads of one key head
// together) to key head h % Hk for value head h, as DeltaNetSpec::kHead reads them.
//
// Files from newer converters append nextn_predict_layers multi-token-prediction layers to
// block_count (blk.N.nextn.*): the forward pass does not run them, and they are not read.

#include "inference/llm/models/family.h"

namespace lumen::inference {
namespace {

void read(ModelReader& r, ModelConfig& c, ModelWeights& w) {
    c.gatedAttention = true;
    r.readCommon();
    c.ropeStyle = RopeStyle::NeoX;
    const std::int64_t blocks = c.nLayers, mtp = r.getInt("nextn_predict_layers", 0);
    if (mtp < 0 || mtp >= blocks) r.fail("the multi-token-prediction layers (" + r.key("nextn_predict_layers") + ") are " + std::to_string(mtp) + " of " + std::to_string(blocks));
    c.nLayers = blocks - mtp;
    c.layers.resize(static_cast<std::size_t>(c.nLayers));
    w.layers.resize(static_cast<std::size_t>(c.nLayers));

    // Which layers are recurrent: the file's list, else every layer but each interval-th.
    if (r.has("attention.recurrent_layers")) {
        const std::vector<std::int64_t> flags = r.file().getIntArray(r.key("attention.recurrent_layers"));
        if (static_cast<std::int64_t>(flags.size()) < c.nLayers)
            r.fail(r.key("attention.recurrent_layers") + " lists " + std::to_string(flags.size()) + " of " + std::to_string(c.nLayers) + " layers");
        for (std::int64_t l = 0; l < c.nLayers; ++l) c.layers[static_cast<std::size_t>(l)].recurrent = flags[static_cast<std::size_t>(l)] != 0;
    } else {
        const std::int64_t interval = r.getInt("full_attention_interval", 4);
        r.positive(interval, ("the full attention interval (" + r.key("full_attention_interval") + ")").c_str());
        for (std::int64_t l = 0; l < c.nLayers; ++l) c.layers[static_cast<std::size_t>(l)].recurrent = (l + 1) % interval != 0;
    }

    DeltaNetConfig& d = c.deltaNet;
    d.convTaps = r.getInt("ssm.conv_kernel");
    d.kDim = r.getInt("ssm.state_size");
    d.nKHeads = r.getInt("ssm.group_count");
    d.nVHeads = r.getInt("ssm.time_step_rank");
    const std::int64_t inner = r.getInt("ssm.inner_size");
    r.positive(d.convTaps, ("the convolution's taps (" + r.key("ssm.conv_kernel") + ")").c_str());
    if (d.convTaps > 8) r.fail("a short convolution of " + std::to_string(d.convTaps) + " taps (" + r.key("ssm.conv_kernel") + "): this version runs up to 8");
    r.positive(d.kDim, ("the key head size (" + r.key("ssm.state_size") + ")").c_str());
    r.positive(d.nKHeads, ("the key heads (" + r.key("ssm.group_count") + ")").c_str());
    r.positive(d.nVHeads, ("the value heads (" + r.key("ssm.time_step_rank") + ")").c_str());
    r.positive(inner, ("the value width (" + r.key("ssm.inner_size") + ")").c_str());
    if (d.nVHeads % d.nKHeads != 0)
        r.fail(std::to_string(d.nVHeads) + " value heads cannot share " + std::to_string(d.nKHeads) + " key heads evenly");
    if (inner % d.nVHeads != 0) r.fail("the value width " + std::to_string(inner) + " does not split into " + std::to_string(d.nVHeads) + " heads");
    d.vDim = inner / d.nVHeads;

    const bool moe = c.architecture == "qwen35moe";
    if (moe) {
        if (!r.readExpertCounts(c.ffnDim)) r.fail("a qwen35moe file needs " + r.key("expert_count"));
        // (llama.cpp renormalises the chosen experts' weights and scales them by nothing, whatever the file says)
        c.expertWeightsNorm = true;
        c.expertWeightsScale = 1.0f;
    }
    const std::int64_t convChannels = d.convChannels(), valueWidth = d.valueWidth();
    for (std::int64_t l = 0; l < c.nLayers; ++l) {
        LayerWeights& L = w.layers[static_cast<std::size_t>(l)];
        const std::string p = "blk." + std::to_string(l) + ".";
        if (c.layers[static_cast<std::size_t>(l)].recurrent) {
            L.attnNorm = r.tensor(p + "attn_norm.weight", {c.dim});
            L.deltaQkv = r.tensor(p + "attn_qkv.weight", {c.dim, convChannels});
            L.deltaZ = r.tensor(p + "attn_gate.weight", {c.dim, valueWidth});
            L.deltaAlpha = r.tensor(p + "ssm_alpha.weight", {c.dim, d.nVHeads});
            L.deltaBeta = r.tensor(p + "ssm_beta.weight", {c.dim, d.nVHeads});
            L.deltaConv = r.tensor(p + "ssm_conv1d.weight", {d.convTaps, convChannels});
            L.deltaA = r.tensor(p + "ssm_a", {d.nVHeads});
            L.deltaDtBias = r.tensor(p + "ssm_dt.bias", {d.nVHeads});
            for (const Tensor* t : {&L.deltaA, &L.deltaDtBias})
                if (t->dtype != DType::F32) r.fail("tensor '" + t->name + "' must be F32");
            L.deltaNorm = r.tensor(p + "ssm_norm.weight", {d.vDim});
            L.deltaOut = r.tensor(p + "ssm_out.weight", {valueWidth, c.dim});
        } else {
            r.readAttention(L, l);
            L.qNorm = r.tensor(p + "attn_q_norm.weight", {c.headDim});
            L.kNorm = r.tensor(p + "attn_k_norm.weight", {c.headDim});
        }
        if (moe) r.readExperts(L, l, "post_attention_norm.weight");
        else r.readFfn(L, l, "post_attention_norm.weight");
    }
}

}  // namespace

const ModelFamily kQwen35Family{"qwen35", {"qwen35", "qwen35moe"}, read, preNormLayer};

}  // namespace lumen::inference
