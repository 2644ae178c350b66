// The shared blocks of the families' forward passes, reading a family from the file, and the
// list of families.

#include <algorithm>
#include <cmath>

#include "inference/formats/format_error.h"
#include "inference/llm/models/family.h"

namespace lumen::inference {

// Gated DeltaNet's l2 norm of queries and keys: x / sqrt(sum x^2 + eps), Hugging Face's eps.
constexpr float kDeltaNetL2Eps = 1e-6f;

void attentionBlock(const LayerPass& p, const LayerWeights& L, const float* in, float* out) {
    const ModelConfig& c = p.c;
    const LayerAttention& la = p.attention;
    Backend& be = p.be;
    ActivationBuffers& b = p.b;
    const std::int64_t n = p.n, qDim = c.nHeads * c.headDim, kvDim = c.nKvHeads * c.headDim;
    // Project to queries, keys and values. Gated attention's query rows hold each head's query
    // and then its output gate.
    const Backend::Product qkv[] = {{&L.wq, c.gatedAttention ? b.queryGate.get() : b.q.get()}, {&L.wk, b.k.get()}, {&L.wv, b.v.get()}};
    be.matmuls(qkv, in, n);
    if (c.gatedAttention) {
        be.copyRows(b.queryGate.get(), 2 * c.headDim, b.q.get(), c.headDim, c.headDim, n * c.nHeads);
        be.copyRows(b.queryGate.get() + c.headDim, 2 * c.headDim, b.attGate.get(), c.headDim, c.headDim, n * c.nHeads);
    }
    if (L.bq.data) be.addBias(b.q.get(), L.bq, qDim, n);
    if (L.bk.data) be.addBias(b.k.get(), L.bk, kvDim, n);
    if (L.bv.data) be.addBias(b.v.get(), L.bv, kvDim, n);
    // Qwen3 and Gemma 3 normalise each head of q and k on its own.
    if (L.qNorm.data) be.rmsNorm(b.q.get(), L.qNorm, c.rmsEps, c.headDim, n * c.nHeads, b.q.get());
    if (L.kNorm.data) be.rmsNorm(b.k.get(), L.kNorm, c.rmsEps, c.headDim, n * c.nKvHeads, b.k.get());
    // Rotate q and k by position.
    if (la.rope) {
        RopeSpec rope{c.nHeads, c.headDim, c.ropeDims, la.ropeBase, c.ropeStyle, p.ropeFactors, 1.0f / la.ropeScale, c.ropeAttnFactor};
        be.rope(b.q.get(), n, p.pos, rope);
        rope.nHeads = c.nKvHeads;
        be.rope(b.k.get(), n, p.pos, rope);
    }
    // Remember k and v, attend causally (within the window), project back.
    // (A sliding-window layer may keep only its window: the cache then starts later, and the
    // rows go in at kvPos. The window's first position falls on the same key either way.)
    be.storeKv(p.kv, p.kvPos, n, kvDim, b.k.get(), b.v.get());
    const AttentionSpec spec{c.nHeads, c.nKvHeads, c.headDim, c.attentionScale, la.window, c.attentionSoftcap, L.sinks.data ? &L.sinks : nullptr};
    be.attention(b.q.get(), p.kv, p.kvPos, n, spec, b.attOut.get());
    if (c.gatedAttention) be.sigmoidMul(b.attOut.get(), b.attGate.get(), n * qDim);
    be.matmul(L.wo, b.attOut.get(), n, out);
    if (L.bo.data) be.addBias(out, L.bo, c.dim, n);
}

void deltaNetBlock(const LayerPass& p, const LayerWeights& L, const float* in, float* out) {
    const ModelConfig& c = p.c;
    const DeltaNetConfig& d = c.deltaNet;
    Backend& be = p.be;
    ActivationBuffers& b = p.b;
    const std::int64_t n = p.n;
    const Backend::Product inputs[] = {{&L.deltaQkv, b.deltaIn.get()},
                                       {&L.deltaZ, b.deltaZ.get()},
                                       {&L.deltaAlpha, b.deltaAlpha.get()},
                                       {&L.deltaBeta, b.deltaBeta.get()}};
    be.matmuls(inputs, in, n);
    be.shortConv(b.deltaIn.get(), n, d.convChannels(), L.deltaConv, p.state.conv, b.deltaConv.get());
    const DeltaNetSpec spec{d.nKHeads, d.nVHeads, d.kDim, d.vDim, &L.deltaA, &L.deltaDtBias, kDeltaNetL2Eps};
    be.deltaNet(b.deltaConv.get(), b.deltaAlpha.get(), b.deltaBeta.get(), n, spec, p.state.matrices, b.deltaY.get());
    // Each head's output normalised (one weight for every head), then gated: z = silu(z) * y.
    be.rmsNorm(b.deltaY.get(), L.deltaNorm, c.rmsEps, d.vDim, n * d.nVHeads, b.deltaY.get());
    be.siluMul(b.deltaZ.get(), b.deltaY.get(), n * d.valueWidth());
    be.matmul(L.deltaOut, b.deltaZ.get(), n, out);
}

void gatedFfnBlock(const LayerPass& p, const LayerWeights& L, const float* in, float* out, GatedActivation act) {
    Backend& be = p.be;
    ActivationBuffers& b = p.b;
    const std::int64_t values = p.n * p.c.ffnDim;
    const Backend::Product gateUp[] = {{&L.wGate, b.gate.get()}, {&L.wUp, b.up.get()}};
    be.matmuls(gateUp, in, p.n);
    if (act == GatedActivation::Silu) {
        be.siluMul(b.gate.get(), b.up.get(), values);
    } else {
        be.gelu(b.gate.get(), values, GeluKind::Tanh);
        be.mul(b.gate.get(), b.up.get(), values);
    }
    be.matmul(L.wDown, b.gate.get(), p.n, out);
}

void moeFfnBlock(const LayerPass& p, const LayerWeights& L, const float* in, float* out) {
    ActivationBuffers& b = p.b;
    const ClampedSwiglu clamped{1.702f, p.c.swigluLimit};
    const auto present = [](const Tensor& t) { return t.data ? &t : nullptr; };  // (absent tensors: nullptr)
    const MoeSpec spec{&L.router,          L.expertGate,       L.expertUp,       L.expertDown,       p.c.nExpertsUsed,
                       p.c.expertWeightsNorm, p.c.expertWeightsScale, present(L.routerBias), L.expertGateBias, L.expertUpBias,
                       L.expertDownBias,   p.c.swigluLimit > 0.0f ? &clamped : nullptr, present(L.sharedGateInp), present(L.sharedGate),
                       present(L.sharedUp), present(L.sharedDown)};
    p.be.moe(in, p.n, spec, MoeBuffers{b.router.get(), b.expertRows.get(), b.gate.get(), b.up.get(), b.expertOut.get()}, out);
}

void preNormLayer(const LayerPass& p, const LayerWeights& L) {
    ActivationBuffers& b = p.b;
    // Attention block: normalise, attend, add to the stream.
    p.norm(L.attnNorm, p.x(), b.xb.get());
    if (p.attention.recurrent) deltaNetBlock(p, L, b.xb.get(), b.att.get());
    else attentionBlock(p, L, b.xb.get(), b.att.get());
    p.residual(b.att.get());
    // Feed-forward block: SwiGLU.
    p.norm(L.ffnNorm, p.x(), b.xb.get());
    if (L.router.data) moeFfnBlock(p, L, b.xb.get(), b.ffn.get());
    else gatedFfnBlock(p, L, b.xb.get(), b.ffn.get(), GatedActivation::Silu);
    p.residual(b.ffn.get());
}

ModelReader::ModelReader(const GgufFile& file, ModelConfig& config, ModelWeights& weights) : f_(file), c_(config), w_(weights) {}

bool ModelReader::has(std::string_view name) const { return f_.contains(key(name)); }

void ModelReader::positive(std::int64_t v, const char* what) const {
    if (v <= 0 || v > (1 << 20)) fail(std::string(what) + " is " + std::to_string(v));
}

void ModelReader::fail(const std::string& message) const { throw FormatError(f_.displayName() + ": " + message); }

Tensor ModelReader::tensor(const std::string& name, std::vector<std::int64_t> shape, bool optional) const {
    return tensorView(f_, name, std::move(shape), optional);
}

Tensor ModelReader::rows(const Tensor& t, std::int64_t first, std::int64_t count, const std::string& name) {
    Tensor part = t;
    part.name = name;
    part.ne = {t.ne[0], count, 1, 1};
    part.data = t.data + first * t.rowBytes();
    return part;
}

void ModelReader::readCommon() {
    ModelConfig& c = c_;
    c.dim = getInt("embedding_length");
    c.nLayers = getInt("block_count");
    c.nHeads = getInt("attention.head_count");
    c.nKvHeads = getInt("attention.head_count_kv", c.nHeads);
    // (a mixture of experts may give only its experts' width)
    c.ffnDim = getInt("feed_forward_length", getInt("expert_feed_forward_length", 0));
    c.contextLength = getInt("context_length", 2048);
    if (c.contextLength <= 0) fail("the context length (" + key("context_length") + ") is " + std::to_string(c.contextLength));
    c.ropeFreqBase = getFloat("rope.freq_base", 10000.0);
    c.rmsEps = getFloat("attention.layer_norm_rms_epsilon", 1e-5);
    positive(c.dim, ("the embedding length (" + key("embedding_length") + ")").c_str());
    positive(c.nLayers, ("the block count (" + key("block_count") + ")").c_str());
    positive(c.nHeads, ("the head count (" + key("attention.head_count") + ")").c_str());
    positive(c.nKvHeads, ("the KV head count (" + key("attention.head_count_kv") + ")").c_str());
    positive(c.ffnDim, ("the feed-forward length (" + key("feed_forward_length") + ")").c_str());
    if (c.nHeads % c.nKvHeads != 0)
        fail(std::to_string(c.nHeads) + " heads cannot share " + std::to_string(c.nKvHeads) + " KV heads evenly");
    c.headDim = getInt("attention.key_length", c.dim / c.nHeads);
    positive(c.headDim, "the head dimension");
    const std::int64_t valueLength = getInt("attention.value_length", c.headDim);
    if (valueLength != c.headDim)
        fail("value heads of " + std::to_string(valueLength) + " dimensions differ from key heads of " + std::to_string(c.headDim));
    c.ropeDims = getInt("rope.dimension_count", c.headDim);
    if (c.ropeDims <= 0 || c.ropeDims > c.headDim || c.ropeDims % 2 != 0)
        fail("RoPE dimension count " + std::to_string(c.ropeDims) + " does not fit the head dimension " + std::to_string(c.headDim));
    if (!std::isfinite(c.ropeFreqBase) || c.ropeFreqBase <= 1.0f) fail("the RoPE base " + std::to_string(c.ropeFreqBase) + " is not above 1");
    if (!std::isfinite(c.rmsEps) || c.rmsEps < 0.0f) fail("the RMS norm epsilon is not a small positive number");
    c.layers.assign(static_cast<std::size_t>(c.nLayers), LayerAttention{0, true, c.ropeFreqBase, 1.0f});

    ModelWeights& w = w_;
    // The vocabulary size is the embedding table's second dimension.
    const GgufTensor& table = f_.tensor("token_embd.weight");
    w.tokenEmbedding = tensor("token_embd.weight", {c.dim, table.shape.size() > 1 ? table.shape[1] : 0});
    c.vocabSize = w.tokenEmbedding.ne[1];
    positive(c.vocabSize, "the vocabulary size");
    w.outputNorm = tensor("output_norm.weight", {c.dim});
    w.output = tensor("output.weight", {c.dim, c.vocabSize}, true);
    if (!w.output.data) w.output = w.tokenEmbedding;  // tied embeddings
    w.layers.assign(static_cast<std::size_t>(c.nLayers), LayerWeights{});
    readYarn(c.architecture != "gpt-oss");
}

void ModelReader::readYarn(bool truncate) {
    ModelConfig& c = c_;
    if (f_.getString(key("rope.scaling.type"), "") != "yarn") return;
    const double factor = getFloat("rope.scaling.factor", 1.0);
    const double original = static_cast<double>(getInt("rope.scaling.original_context_length", c.contextLength));
    const double betaFast = getFloat("rope.scaling.yarn_beta_fast", 32.0), betaSlow = getFloat("rope.scaling.yarn_beta_slow", 1.0);
    const double ext = getFloat("rope.scaling.yarn_ext_factor", 1.0), attn = getFloat("rope.scaling.yarn_attn_factor", 1.0);
    for (const double v : {factor, original, betaFast, betaSlow, attn})
        if (!std::isfinite(v) || v <= 0.0) fail("the YaRN settings (" + key("rope.scaling.*") + ") are not positive numbers");
    if (!std::isfinite(ext) || ext < 0.0) fail("the YaRN extrapolation factor is not a number from 0 up");
    if (factor <= 1.0) return;  // no scaling
    // Dimension pair i turns at base^(-2i/d). Pairs that turn more than betaFast times over the
    // original context keep their frequency, those turning fewer than betaSlow times are
    // interpolated (divided by the factor), with a linear ramp between.
    const double d = static_cast<double>(c.ropeDims), base = c.ropeFreqBase;
    const auto correction = [&](double turns) { return d * std::log(original / (turns * 2.0 * M_PI)) / (2.0 * std::log(base)); };
    double low = correction(betaFast), high = correction(betaSlow);
    if (truncate) low = std::floor(low), high = std::ceil(high);
    low = std::max(low, 0.0);
    high = std::min(high, d - 1.0);
    if (high == low) high += 0.001;
    std::vector<float>& divisors = w_.computedRopeFreqs;
    divisors.resize(static_cast<std::size_t>(c.ropeDims / 2));
    for (std::size_t i = 0; i < divisors.size(); ++i) {
        const double ramp = std::clamp((static_cast<double>(i) - low) / (high - low), 0.0, 1.0);
        const double keep = (1.0 - ramp) * ext;  // the share of the original frequency
        divisors[i] = static_cast<float>(1.0 / (keep + (1.0 - keep) / factor));
    }
    Tensor& t = w_.ropeFreqs;
    t.name = "YaRN frequency divisors";
    t.dtype = DType::F32;
    t.ne = {static_cast<std::int64_t>(divisors.size()), 1, 1, 1};
    t.data = reinterpret_cast<const std::uint8_t*>(divisors.data());
    // Cosine and sine grow with the factor, so attention sharpens as Hugging Face's and
    // llama.cpp's YaRN make it (0.1 ln(factor) + 1).
    c.ropeAttnFactor = static_cast<float>((0.1 * std::log(factor) + 1.0) * attn);
}

void ModelReader::readAttention(LayerWeights& L, std::int64_t layer) const {
    const ModelConfig& c = c_;
    const std::string p = "blk." + std::to_string(layer) + ".";
    const std::int64_t qDim = c.nHeads * c.headDim, kvDim = c.nKvHeads * c.headDim;
    L.attnNorm = tensor(p + "attn_norm.weight", {c.dim});
    L.wq = tensor(p + "attn_q.weight", {c.dim, c.gatedAttention ? 2 * qDim : qDim});
    L.wk = tensor(p + "attn_k.weight", {c.dim, kvDim});
    L.wv = tensor(p + "attn_v.weight", {c.dim, kvDim});
    L.wo = tensor(p + "attn_output.weight", {qDim, c.dim});
    L.bq = tensor(p + "attn_q.bias", {qDim}, true);
    L.bk = tensor(p + "attn_k.bias", {kvDim}, true);
    L.bv = tensor(p + "attn_v.bias", {kvDim}, true);
}

void ModelReader::readFfn(LayerWeights& L, std::int64_t layer, const char* norm) const {
    const ModelConfig& c = c_;
    const std::string p = "blk." + std::to_string(layer) + ".";
    L.ffnNorm = tensor(p + norm, {c.dim});
    L.wGate = tensor(p + "ffn_gate.weight", {c.dim, c.ffnDim});
    L.wUp = tensor(p + "ffn_up.weight", {c.dim, c.ffnDim});
    L.wDown = tensor(p + "ffn_down.weight", {c.ffnDim, c.dim});
}

bool ModelReader::readExpertCounts(std::int64_t ffnFallback) {
    ModelConfig& c = c_;
    c.nExperts = getInt("expert_count", 0);
    if (c.nExperts == 0) return false;
    c.nExpertsUsed = getInt("expert_used_count", 0);
    c.expertFfnDim = getInt("expert_feed_forward_length", ffnFallback);
    positive(c.nExperts, ("the expert count (" + key("expert_count") + ")").c_str());
    positive(c.expertFfnDim, ("the expert feed-forward length (" + key("expert_feed_forward_length") + ")").c_str());
    if (c.nExpertsUsed < 1 || c.nExpertsUsed > c.nExperts)
        fail("each token uses " + std::to_string(c.nExpertsUsed) + " experts (" + key("expert_used_count") + ") of " + std::to_string(c.nExperts) +
             ": it must be 1 to " + std::to_string(c.nExperts));
    // (Qwen2-MoE's weights are not renormalised: norm_topk_prob false, as llama.cpp runs it)
    c.expertWeightsNorm = f_.getBool(key("expert_weights_norm"), c.architecture != "qwen2moe");
    c.sharedExpertFfnDim = getInt("expert_shared_feed_forward_length", 0);
    if (c.sharedExpertFfnDim < 0 || c.sharedExpertFfnDim > (1 << 20))
        fail("the shared expert's feed-forward length (" + key("expert_shared_feed_forward_length") + ") is " + std::to_string(c.sharedExpertFfnDim));
    c.expertWeightsScale = getFloat("expert_weights_scale", 0.0);
    if (!std::isfinite(c.expertWeightsScale) || c.expertWeightsScale < 0.0f) fail("the expert weights scale is not a positive number");
    if (c.expertWeightsScale == 0.0f) c.expertWeightsScale = 1.0f;  // (the converter's "none")
    return true;
}

void ModelReader::readExperts(LayerWeights& L, std::int64_t layer, const char* norm) const {
    const ModelConfig& c = c_;
    const std::string p = "blk." + std::to_string(layer) + ".";
    const std::int64_t experts = c.nExperts, ffn = c.expertFfnDim;
    // A shape as the file lists it: trailing 1s dropped (a single expert).
    const auto shape = [](std::vector<std::int64_t> s) {
        while (s.size() > 1 && s.back() == 1) s.pop_back();
        return s;
    };
    L.ffnNorm = tensor(p + norm, {c.dim});
    L.router = tensor(p + "ffn_gate_inp.weight", shape({c.dim, experts}));
    // Gate and up as one tensor (the converter's --fuse-gate-up-exps): each expert's gate rows, then its up rows.
    const Tensor gateUp = tensor(p + "ffn_gate_up_exps.weight", shape({c.dim, 2 * ffn, experts}), true);
    const Tensor gate = gateUp.data ? gateUp : tensor(p + "ffn_gate_exps.weight", shape({c.dim, ffn, experts}));
    const Tensor up = gateUp.data ? gateUp : tensor(p + "ffn_up_exps.weight", shape({c.dim, ffn, experts}));
    const std::int64_t step = gateUp.data ? 2 * ffn : ffn, upFirst = gateUp.data ? ffn : 0;
    const Tensor down = tensor(p + "ffn_down_exps.weight", shape({ffn, c.dim, experts}));
    if (c.sharedExpertFfnDim > 0) {  // a shared expert (qwen2moe)
        L.sharedGateInp = tensor(p + "ffn_gate_inp_shexp.weight", {c.dim});
        L.sharedGate = tensor(p + "ffn_gate_shexp.weight", {c.dim, c.sharedExpertFfnDim});
        L.sharedUp = tensor(p + "ffn_up_shexp.weight", {c.dim, c.sharedExpertFfnDim});
        L.sharedDown = tensor(p + "ffn_down_shexp.weight", {c.sharedExpertFfnDim, c.dim});
    }
    for (std::int64_t e = 0; e < experts; ++e) {
        const std::string n = "[" + std::to_string(e) + "]";
        L.expertGate.push_back(rows(gate, e * step, ffn, gate.name + n));
        L.expertUp.push_back(rows(up, e * step + upFirst, ffn, up.name + n));
        L.expertDown.push_back(rows(down, e * c.dim, c.dim, down.name + n));
    }
}

namespace {
const ModelFamily* const kFamilies[] = {&kLlamaFamily, &kQwen3Family, &kGemmaFamily, &kPhi3Family, &kSmolLm3Family, &kGptOssFamily, &kQwen35Family};
}

const ModelFamily* findFamily(std::string_view architecture) {
    for (const ModelFamily* f : kFamilies)
        if (std::find(f->architectures.begin(), f->architectures.end(), architecture) != f->architectures.end()) return f;
    return nullptr;
}

std::string supportedArchitectures() {
    std::string out;
    for (const ModelFamily* f : kFamilies)
        for (std::string_view a : f->architectures) out += (out.empty() ? "" : ", ") + std::string(a);
    return out;
}

}  // namespace lumen::inference
