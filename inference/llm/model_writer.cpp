#include "inference/llm/model_writer.h"

#include <algorithm>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "inference/core/thread_pool.h"
#include "inference/formats/gguf.h"
#include "inference/formats/quants.h"

namespace lumen::inference {
namespace {

DType typeFor(const RandomModelSpec& spec, const std::string& name) {
    if (spec.mix == WeightMix::Q4_K_M) {
        if (name.find("attn_v") != std::string::npos || name.find("ffn_down") != std::string::npos || name == "output.weight")
            return DType::Q6_K;
        return DType::Q4_K;
    }
    if (spec.mix == WeightMix::Mxfp4Experts)  // (a dense FFN too: a dense twin reads what the experts read)
        return name.find("ffn_") != std::string::npos ? DType::MXFP4 : DType::Q8_0;
    return spec.weightType;
}

}  // namespace

void writeRandomLanguageModel(const RandomModelSpec& spec, const std::filesystem::path& path) {
    if (spec.headDim == 0 && spec.dim % spec.nHeads != 0) throw std::invalid_argument("dim must be a multiple of the head count");
    if (spec.nHeads % spec.nKvHeads != 0) throw std::invalid_argument("the head count must be a multiple of the KV head count");
    const std::string& arch = spec.architecture;
    const bool gemma = arch == "gemma2" || arch == "gemma3";
    const std::int64_t headDim = spec.headDim > 0 ? spec.headDim : spec.dim / spec.nHeads, kvDim = spec.nKvHeads * headDim;
    const bool quarterRope = spec.architecture == "qwen35" || spec.architecture == "qwen35moe";  // (partial_rotary_factor 0.25)
    const std::int64_t qDim = spec.nHeads * headDim, ropeDims = spec.ropeDims > 0 ? spec.ropeDims : quarterRope ? headDim / 4 : headDim;
    // Values come in chunks, each from its own generator seeded by (seed, tensor, chunk): the
    // same for a given seed however many threads fill them (an 8B model takes seconds, not minutes).
    ThreadPool pool(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
    std::uint64_t tensorIndex = 0;
    constexpr std::int64_t kChunk = 1 << 16;

    GgufWriter w;
    const std::string a = spec.architecture + ".";
    w.set("general.architecture", GgufWriteValue::string(spec.architecture));
    w.set("general.name", GgufWriteValue::string("random " + spec.architecture));
    w.set(a + "context_length", GgufWriteValue::u32(static_cast<std::uint32_t>(spec.contextLength)));
    w.set(a + "embedding_length", GgufWriteValue::u32(static_cast<std::uint32_t>(spec.dim)));
    w.set(a + "block_count", GgufWriteValue::u32(static_cast<std::uint32_t>(spec.nLayers)));
    w.set(a + "feed_forward_length", GgufWriteValue::u32(static_cast<std::uint32_t>(spec.ffnDim)));
    w.set(a + "attention.head_count", GgufWriteValue::u32(static_cast<std::uint32_t>(spec.nHeads)));
    w.set(a + "attention.head_count_kv", GgufWriteValue::u32(static_cast<std::uint32_t>(spec.nKvHeads)));
    w.set(a + "rope.dimension_count", GgufWriteValue::u32(static_cast<std::uint32_t>(ropeDims)));
    w.set(a + "rope.freq_base", GgufWriteValue::f32(spec.ropeFreqBase));
    const bool qwen35 = arch == "qwen35" || arch == "qwen35moe";
    w.set(a + "attention.layer_norm_rms_epsilon", GgufWriteValue::f32(gemma || qwen35 ? 1e-6f : 1e-5f));
    const bool qwen3 = arch == "qwen3" || arch == "qwen3moe" || qwen35, moe = spec.nExperts > 0, gptOss = arch == "gpt-oss";
    if ((arch == "qwen3moe" || arch == "qwen35moe" || gptOss) && !moe) throw std::invalid_argument("a " + arch + " model needs experts");
    const bool ownExpertWidth = arch == "qwen3moe" || arch == "qwen35moe" || gptOss;  // (llama's experts are feed_forward_length wide)
    const std::int64_t deltaKeys = spec.deltaKHeads * spec.deltaHeadDim, deltaValues = spec.deltaVHeads * spec.deltaHeadDim;
    if (qwen35) {
        w.set(a + "ssm.conv_kernel", GgufWriteValue::u32(static_cast<std::uint32_t>(spec.deltaConvTaps)));
        w.set(a + "ssm.state_size", GgufWriteValue::u32(static_cast<std::uint32_t>(spec.deltaHeadDim)));
        w.set(a + "ssm.group_count", GgufWriteValue::u32(static_cast<std::uint32_t>(spec.deltaKHeads)));
        w.set(a + "ssm.time_step_rank", GgufWriteValue::u32(static_cast<std::uint32_t>(spec.deltaVHeads)));
        w.set(a + "ssm.inner_size", GgufWriteValue::u32(static_cast<std::uint32_t>(deltaValues)));
        w.set(a + "full_attention_interval", GgufWriteValue::u32(4));
        if (moe) w.set(a + "expert_shared_feed_forward_length", GgufWriteValue::u32(static_cast<std::uint32_t>(spec.sharedExpertFfnDim)));
    }
    const std::int64_t expertFfn = ownExpertWidth ? spec.expertFfnDim : spec.ffnDim;
    if (moe) {
        if (spec.nExpertsUsed < 1 || spec.nExpertsUsed > spec.nExperts || expertFfn <= 0)
            throw std::invalid_argument("experts need 1 to nExperts used per token and a positive width");
        w.set(a + "expert_count", GgufWriteValue::u32(static_cast<std::uint32_t>(spec.nExperts)));
        w.set(a + "expert_used_count", GgufWriteValue::u32(static_cast<std::uint32_t>(spec.nExpertsUsed)));
        if (ownExpertWidth) w.set(a + "expert_feed_forward_length", GgufWriteValue::u32(static_cast<std::uint32_t>(expertFfn)));
    }
    if (gptOss) {
        // gpt-oss-20b's settings: a 128-position window on even layers, YaRN from 4096 positions.
        w.set(a + "attention.sliding_window", GgufWriteValue::u32(static_cast<std::uint32_t>(spec.slidingWindow > 0 ? spec.slidingWindow : 128)));
        w.set(a + "rope.scaling.type", GgufWriteValue::string("yarn"));
        w.set(a + "rope.scaling.factor", GgufWriteValue::f32(32.0f));
        w.set(a + "rope.scaling.original_context_length", GgufWriteValue::u32(4096));
    }
    if (headDim * spec.nHeads != spec.dim || qwen3 || gemma || gptOss) {
        w.set(a + "attention.key_length", GgufWriteValue::u32(static_cast<std::uint32_t>(headDim)));
        w.set(a + "attention.value_length", GgufWriteValue::u32(static_cast<std::uint32_t>(headDim)));
    }
    // The converter writes Phi-3's window always (0 for none: Phi-4), and llama.cpp requires it.
    if ((spec.slidingWindow > 0 && gemma) || arch == "phi3")
        w.set(a + "attention.sliding_window", GgufWriteValue::u32(static_cast<std::uint32_t>(spec.slidingWindow)));

    // Vocabulary: <unk> <s> </s>, the 256 byte tokens, then pieces "▁a", "▁b", ... to fill.
    std::vector<std::string> tokens{"<unk>", "<s>", "</s>"};
    std::vector<std::int32_t> types{2, 3, 3};
    static const char* kHex = "0123456789ABCDEF";
    for (int b = 0; b < 256; ++b) {
        tokens.push_back(std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">");
        types.push_back(6);
    }
    for (std::int64_t i = 0; static_cast<std::int64_t>(tokens.size()) < spec.vocabSize; ++i) {
        std::string piece = "\xE2\x96\x81";
        for (std::int64_t v = i; ; v = v / 26 - 1) {
            piece += static_cast<char>('a' + v % 26);
            if (v < 26) break;
        }
        tokens.push_back(piece);
        types.push_back(1);
    }
    tokens.resize(static_cast<std::size_t>(spec.vocabSize));
    types.resize(static_cast<std::size_t>(spec.vocabSize));
    std::vector<float> scores(tokens.size());
    for (std::size_t i = 0; i < scores.size(); ++i) scores[i] = -static_cast<float>(i);
    w.set("tokenizer.ggml.model", GgufWriteValue::string("llama"));
    w.set("tokenizer.ggml.tokens", GgufWriteValue::stringArray(tokens));
    w.set("tokenizer.ggml.scores", GgufWriteValue::f32Array(scores));
    w.set("tokenizer.ggml.token_type", GgufWriteValue::i32Array(types));
    w.set("tokenizer.ggml.bos_token_id", GgufWriteValue::u32(1));
    w.set("tokenizer.ggml.eos_token_id", GgufWriteValue::u32(2));
    w.set("tokenizer.ggml.unknown_token_id", GgufWriteValue::u32(0));
    if (!spec.chatTemplate.empty()) w.set("tokenizer.chat_template", GgufWriteValue::string(spec.chatTemplate));

    std::vector<std::vector<std::uint8_t>> storage;  // kept alive until write()
    // Values: normal around 0, or around 1 (norms), or below -0.5 (Gated DeltaNet's decay rates).
    enum Fill { Plain, Norm, Negative };
    auto add = [&](const std::string& name, std::vector<std::int64_t> shape, DType type, int fill) {
        std::int64_t n = 1;
        for (auto d : shape) n *= d;
        std::vector<float> values(static_cast<std::size_t>(n));
        const std::uint64_t index = tensorIndex++;
        pool.parallelFor((n + kChunk - 1) / kChunk, [&](std::int64_t begin, std::int64_t end) {
            for (std::int64_t c = begin; c < end; ++c) {
                std::seed_seq seq{spec.seed, index, static_cast<std::uint64_t>(c)};
                std::mt19937_64 rng(seq);
                std::normal_distribution<float> normal(0.0f, spec.weightScale);
                for (std::int64_t i = c * kChunk; i < std::min(n, (c + 1) * kChunk); ++i)
                    values[static_cast<std::size_t>(i)] = fill == Norm ? 1.0f + normal(rng) : fill == Negative ? -0.5f - std::fabs(normal(rng)) * 20.0f : normal(rng);
            }
        });
        const auto bytes = byteSize(type, n);
        if (!bytes || shape[0] % traits(type).blockSize != 0)
            throw std::invalid_argument(name + ": row length " + std::to_string(shape[0]) + " does not fit " + std::string(inference::name(type)) + " blocks");
        storage.emplace_back(static_cast<std::size_t>(*bytes));
        // Quantized a run of whole rows per thread.
        const std::int64_t rowLength = shape[0], rows = n / rowLength, rowBytes = *byteSize(type, rowLength);
        std::uint8_t* out = storage.back().data();
        pool.parallelFor(rows, [&](std::int64_t begin, std::int64_t end) {
            quantize(type, values.data() + begin * rowLength, out + begin * rowBytes, (end - begin) * rowLength);
        });
        w.addTensor(name, type, std::move(shape), storage.back());
    };
    add("token_embd.weight", {spec.dim, spec.vocabSize}, typeFor(spec, "token_embd.weight"), Plain);
    const auto matrix = [&](const std::string& name, std::int64_t in, std::int64_t out) { add(name, {in, out}, typeFor(spec, name), Plain); };
    for (std::int64_t l = 0; l < spec.nLayers; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        add(p + "attn_norm.weight", {spec.dim}, DType::F32, Norm);
        if (qwen35 && (l + 1) % 4 != 0) {  // a Gated DeltaNet layer (the converter's names and types)
            matrix(p + "attn_qkv.weight", spec.dim, 2 * deltaKeys + deltaValues);
            matrix(p + "attn_gate.weight", spec.dim, deltaValues);
            matrix(p + "ssm_alpha.weight", spec.dim, spec.deltaVHeads);
            matrix(p + "ssm_beta.weight", spec.dim, spec.deltaVHeads);
            add(p + "ssm_conv1d.weight", {spec.deltaConvTaps, 2 * deltaKeys + deltaValues}, DType::F32, Plain);
            add(p + "ssm_a", {spec.deltaVHeads}, DType::F32, Negative);
            add(p + "ssm_dt.bias", {spec.deltaVHeads}, DType::F32, Plain);
            add(p + "ssm_norm.weight", {spec.deltaHeadDim}, DType::F32, Norm);
            matrix(p + "ssm_out.weight", deltaValues, spec.dim);
        } else if (qwen35) {  // gated attention: each head's query, then its gate
            matrix(p + "attn_q.weight", spec.dim, 2 * qDim);
            matrix(p + "attn_k.weight", spec.dim, kvDim);
            matrix(p + "attn_v.weight", spec.dim, kvDim);
        } else if (arch == "phi3") {
            matrix(p + "attn_qkv.weight", spec.dim, qDim + 2 * kvDim);
        } else {
            matrix(p + "attn_q.weight", spec.dim, qDim);
            matrix(p + "attn_k.weight", spec.dim, kvDim);
            matrix(p + "attn_v.weight", spec.dim, kvDim);
        }
        if (arch == "qwen2" || gptOss) {
            add(p + "attn_q.bias", {qDim}, DType::F32, Plain);
            add(p + "attn_k.bias", {kvDim}, DType::F32, Plain);
            add(p + "attn_v.bias", {kvDim}, DType::F32, Plain);
        }
        if ((qwen3 && (!qwen35 || (l + 1) % 4 == 0)) || arch == "gemma3") {
            add(p + "attn_q_norm.weight", {headDim}, DType::F32, Norm);
            add(p + "attn_k_norm.weight", {headDim}, DType::F32, Norm);
        }
        if (!qwen35 || (l + 1) % 4 == 0) matrix(p + "attn_output.weight", qDim, spec.dim);
        if (gptOss) {
            add(p + "attn_output.bias", {spec.dim}, DType::F32, Plain);
            add(p + "attn_sinks.weight", {spec.nHeads}, DType::F32, Plain);
        }
        if (gemma) add(p + "post_attention_norm.weight", {spec.dim}, DType::F32, Norm);
        add(p + (gptOss || qwen35 ? "post_attention_norm.weight" : "ffn_norm.weight"), {spec.dim}, DType::F32, Norm);
        if (moe) {
            // The router stays F32, as llama.cpp's quantizer leaves it; the experts stacked in 3-D.
            add(p + "ffn_gate_inp.weight", {spec.dim, spec.nExperts}, DType::F32, Plain);
            add(p + "ffn_gate_exps.weight", {spec.dim, expertFfn, spec.nExperts}, typeFor(spec, "ffn_gate_exps"), Plain);
            add(p + "ffn_up_exps.weight", {spec.dim, expertFfn, spec.nExperts}, typeFor(spec, "ffn_up_exps"), Plain);
            add(p + "ffn_down_exps.weight", {expertFfn, spec.dim, spec.nExperts}, typeFor(spec, "ffn_down_exps"), Plain);
            if (qwen35) {  // the shared expert, its gate F32 as the quantizer leaves it
                add(p + "ffn_gate_inp_shexp.weight", {spec.dim}, DType::F32, Plain);
                matrix(p + "ffn_gate_shexp.weight", spec.dim, spec.sharedExpertFfnDim);
                matrix(p + "ffn_up_shexp.weight", spec.dim, spec.sharedExpertFfnDim);
                matrix(p + "ffn_down_shexp.weight", spec.sharedExpertFfnDim, spec.dim);
            }
            if (gptOss) {  // biases, F32 as the converter keeps them
                add(p + "ffn_gate_inp.bias", {spec.nExperts}, DType::F32, Plain);
                add(p + "ffn_gate_exps.bias", {expertFfn, spec.nExperts}, DType::F32, Plain);
                add(p + "ffn_up_exps.bias", {expertFfn, spec.nExperts}, DType::F32, Plain);
                add(p + "ffn_down_exps.bias", {spec.dim, spec.nExperts}, DType::F32, Plain);
            }
            continue;
        }
        if (arch == "phi3") {
            matrix(p + "ffn_up.weight", spec.dim, 2 * spec.ffnDim);
        } else {
            matrix(p + "ffn_gate.weight", spec.dim, spec.ffnDim);
            matrix(p + "ffn_up.weight", spec.dim, spec.ffnDim);
        }
        matrix(p + "ffn_down.weight", spec.ffnDim, spec.dim);
        if (gemma) add(p + "post_ffw_norm.weight", {spec.dim}, DType::F32, Norm);
    }
    add("output_norm.weight", {spec.dim}, DType::F32, Norm);
    if (!spec.tiedEmbeddings && !gemma) matrix("output.weight", spec.dim, spec.vocabSize);
    w.write(path);
}

}  // namespace lumen::inference
