// Developer tool: writes a GGUF language model with random weights, for tests and benchmarks.
//   lumen_make_model OUT.gguf [--preset tiny|stories|tinyllama|llama3-8b|qwen3-0.6b|qwen3-30b-a3b|qwen3-30b-a3b-dense|gpt-oss-20b|gpt-oss-20b-dense|gemma3-1b|phi4-mini|qwen3.5-0.8b|qwen3.6-35b-a3b]
//                    [--arch llama|mistral|qwen2|qwen3|qwen3moe|gemma2|gemma3|phi3|smollm3|gpt-oss]
//                    [--type F32|F16|BF16|Q8_0|Q4_0|Q4_1|Q5_0|Q5_1|Q4_K|Q6_K|IQ4_NL|IQ4_XS|MXFP4|Q4_K_M|MXFP4_MOE] [--tied] [--seed N]
//                    [--dim N] [--layers N] [--heads N] [--kv-heads N] [--ffn N] [--vocab N]
//                    [--experts N --experts-used N [--expert-ffn N]]

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "inference/llm/model_writer.h"

using namespace lumen::inference;

int main(int argc, char** argv) {
    if (argc < 2 || argv[1][0] == '-') {
        std::fprintf(stderr, "usage: %s OUT.gguf [--preset tiny|stories|tinyllama|llama3-8b|qwen3-0.6b|qwen3-30b-a3b|qwen3-30b-a3b-dense|gpt-oss-20b|gpt-oss-20b-dense|gemma3-1b|phi4-mini|qwen3.5-0.8b|qwen3.6-35b-a3b] [--arch A] [--type T] [--tied] [--seed N] [--dim N] ...\n", argv[0]);
        return 2;
    }
    RandomModelSpec spec;
    for (int i = 2; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "%s needs a value\n", arg.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        auto number = [&] { return std::strtoll(value().c_str(), nullptr, 10); };
        if (arg == "--preset") {
            const std::string p = value();
            if (p == "tiny") spec = RandomModelSpec{};
            else if (p == "stories") { spec.dim = 64; spec.nLayers = 5; spec.nHeads = 8; spec.nKvHeads = 4; spec.ffnDim = 172; spec.vocabSize = 512; }
            else if (p == "tinyllama") { spec.dim = 2048; spec.nLayers = 22; spec.nHeads = 32; spec.nKvHeads = 4; spec.ffnDim = 5632; spec.vocabSize = 32000; spec.contextLength = 2048; }
            else if (p == "llama3-8b") { spec.dim = 4096; spec.nLayers = 32; spec.nHeads = 32; spec.nKvHeads = 8; spec.ffnDim = 14336; spec.vocabSize = 128256; spec.contextLength = 8192; spec.ropeFreqBase = 500000.0f; }
            // The shapes of the released models (their config.json), with random weights.
            else if (p == "qwen3-0.6b") {
                spec = RandomModelSpec{.architecture = "qwen3", .dim = 1024, .nLayers = 28, .nHeads = 16, .nKvHeads = 8, .headDim = 128,
                                       .ffnDim = 3072, .vocabSize = 151936, .contextLength = 40960, .ropeFreqBase = 1000000.0f, .tiedEmbeddings = true};
            } else if (p == "qwen3-30b-a3b" || p == "qwen3-30b-a3b-dense") {
                // Qwen3-30B-A3B's layers (128 experts of 768, 8 per token), 8 of its 48 (5.6B
                // parameters, 3.8B in experts; a token reads 0.44B). The dense twin has one FFN as
                // wide as the 8 experts a token uses: the same bytes read per token.
                spec = RandomModelSpec{.architecture = "qwen3moe", .dim = 2048, .nLayers = 8, .nHeads = 32, .nKvHeads = 4, .headDim = 128,
                                       .ffnDim = 6144, .vocabSize = 151936, .contextLength = 40960, .ropeFreqBase = 1000000.0f,
                                       .nExperts = 128, .nExpertsUsed = 8, .expertFfnDim = 768};
                if (p.ends_with("dense")) spec.architecture = "qwen3", spec.nExperts = 0, spec.nExpertsUsed = 0;
            } else if (p == "gpt-oss-20b" || p == "gpt-oss-20b-dense") {
                // gpt-oss-20b's layers (32 experts of 2880, 4 per token; sinks, biases, YaRN), 6 of its
                // 24, experts in MXFP4 and the rest in Q8_0 as OpenAI's release is converted. The dense
                // twin (a llama file of the same attention shape) has one FFN as wide as the 4
                // experts a token uses.
                spec = RandomModelSpec{.architecture = "gpt-oss", .dim = 2880, .nLayers = 6, .nHeads = 64, .nKvHeads = 8, .headDim = 64,
                                       .ffnDim = 2880, .vocabSize = 201088, .contextLength = 131072, .ropeFreqBase = 150000.0f,
                                       .mix = WeightMix::Mxfp4Experts, .nExperts = 32, .nExpertsUsed = 4, .expertFfnDim = 2880};
                if (p.ends_with("dense")) spec.architecture = "llama", spec.ffnDim = 4 * 2880, spec.nExperts = 0, spec.nExpertsUsed = 0;
            } else if (p == "qwen3.5-0.8b") {
                // Qwen3.5-0.8B: 18 Gated DeltaNet layers (16 key and 16 value heads of 128) and 6
                // gated attention layers (8 heads, 2 KV heads, of 256).
                spec = RandomModelSpec{.architecture = "qwen35", .dim = 1024, .nLayers = 24, .nHeads = 8, .nKvHeads = 2, .headDim = 256,
                                       .ffnDim = 3584, .vocabSize = 248320, .contextLength = 262144, .ropeFreqBase = 10000000.0f,
                                       .tiedEmbeddings = true};
            } else if (p == "qwen3.6-35b-a3b") {
                // Qwen3.5/3.6-35B-A3B's layers (256 experts of 512, 8 per token, a shared expert of
                // 512; 16 key and 32 value heads of 128), 8 of its 40 (6 DeltaNet, 2 attention).
                spec = RandomModelSpec{.architecture = "qwen35moe", .dim = 2048, .nLayers = 8, .nHeads = 16, .nKvHeads = 2, .headDim = 256,
                                       .ffnDim = 512, .vocabSize = 248320, .contextLength = 262144, .ropeFreqBase = 10000000.0f,
                                       .nExperts = 256, .nExpertsUsed = 8, .expertFfnDim = 512, .sharedExpertFfnDim = 512, .deltaVHeads = 32};
            } else if (p == "gemma3-1b") {
                spec = RandomModelSpec{.architecture = "gemma3", .dim = 1152, .nLayers = 26, .nHeads = 4, .nKvHeads = 1, .headDim = 256,
                                       .slidingWindow = 512, .ffnDim = 6912, .vocabSize = 262144, .contextLength = 32768,
                                       .ropeFreqBase = 1000000.0f, .tiedEmbeddings = true};
            } else if (p == "phi4-mini") {
                spec = RandomModelSpec{.architecture = "phi3", .dim = 3072, .nLayers = 32, .nHeads = 24, .nKvHeads = 8, .ropeDims = 96,
                                       .ffnDim = 8192, .vocabSize = 200064, .contextLength = 131072, .tiedEmbeddings = true};
            }
            else { std::fprintf(stderr, "unknown preset %s\n", p.c_str()); return 2; }
        } else if (arg == "--arch") spec.architecture = value();
        else if (arg == "--type") {
            const std::string t = value();
            if (t == "Q4_K_M") spec.mix = WeightMix::Q4_K_M;
            else if (t == "MXFP4_MOE") spec.mix = WeightMix::Mxfp4Experts;
            else if (const auto d = dtypeFromName(t)) spec.weightType = *d;
            else { std::fprintf(stderr, "unknown type %s\n", t.c_str()); return 2; }
        }
        else if (arg == "--tied") spec.tiedEmbeddings = true;
        else if (arg == "--seed") spec.seed = static_cast<std::uint64_t>(number());
        else if (arg == "--dim") spec.dim = number();
        else if (arg == "--layers") spec.nLayers = number();
        else if (arg == "--heads") spec.nHeads = number();
        else if (arg == "--kv-heads") spec.nKvHeads = number();
        else if (arg == "--ffn") spec.ffnDim = number();
        else if (arg == "--vocab") spec.vocabSize = number();
        else if (arg == "--experts") spec.nExperts = number();
        else if (arg == "--experts-used") spec.nExpertsUsed = number();
        else if (arg == "--expert-ffn") spec.expertFfnDim = number();
        else if (arg == "--shared-expert-ffn") spec.sharedExpertFfnDim = number();
        else if (arg == "--delta-heads") spec.deltaKHeads = number();
        else if (arg == "--delta-value-heads") spec.deltaVHeads = number();
        else if (arg == "--delta-head-dim") spec.deltaHeadDim = number();
        else { std::fprintf(stderr, "unknown option %s\n", arg.c_str()); return 2; }
    }
    try {
        writeRandomLanguageModel(spec, argv[1]);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    std::printf("wrote %s\n", argv[1]);
    return 0;
}
