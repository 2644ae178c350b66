// Regenerating a reply after a long chat, with and without the recurrent-state snapshots of a
// model with recurrent layers (Qwen3.5): a chat of --tokens prompt tokens is answered once
// (prefill and a short greedy reply), then the reply is regenerated; the time to its first token
// is what a user waits for. Models without recurrent layers reuse their KV cache either way.
//   bench_regenerate MODEL.gguf [--tokens 2000] [--reply 16] [--threads N]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "inference/core/backend.h"
#include "inference/formats/gguf.h"
#include "inference/llm/generator.h"

using namespace lumen::inference;

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s MODEL.gguf [--tokens N] [--reply N] [--threads N]\n", argv[0]);
        return 2;
    }
    int tokens = 2000, reply = 16, threads = 0;
    for (int i = 2; i + 1 < argc; i += 2) {
        const std::string arg = argv[i];
        const int value = std::atoi(argv[i + 1]);
        if (arg == "--tokens") tokens = value;
        else if (arg == "--reply") reply = value;
        else if (arg == "--threads") threads = value;
        else {
            std::fprintf(stderr, "unknown option %s\n", arg.c_str());
            return 2;
        }
    }
    try {
        auto file = std::make_shared<const GgufFile>(GgufFile::open(argv[1]));
        std::shared_ptr<const LanguageModel> model = LanguageModel::load(file);
        const Tokenizer tokenizer = Tokenizer::fromGguf(*file);
        auto backend = makeCpuBackend({.threads = threads});
        std::mt19937 rng(7);
        std::vector<TokenId> prompt{1};
        // (ids past the vocabulary's control and byte tokens)
        const auto vocab = static_cast<std::uint32_t>(model->config().vocabSize);
        while (static_cast<int>(prompt.size()) < tokens) prompt.push_back(static_cast<TokenId>(300 + rng() % (vocab - 300)));
        GenerationParams params;
        params.maxTokens = reply;
        params.sampling.temperature = 0;
        std::printf("%s, %s: a %d-token chat, a %d-token reply, then regenerated\n", argv[1], std::string(backend->name()).c_str(), tokens, reply);
        {  // (the weights' pages mapped in first, so neither run pays for it)
            LanguageSession warm(model, *backend, 64);
            warm.prefill(std::span(prompt).first(std::min<std::size_t>(32, prompt.size())));
        }
        for (const bool snapshots : {true, false}) {
            LanguageSession session(model, *backend, tokens + reply + 16);
            if (!snapshots) session.setSnapshotLimit(0);
            Generator generator(session, tokenizer);
            const auto first = generator.generate(prompt, params);
            const auto again = generator.generate(prompt, params);
            std::printf("  snapshots %-3s: first reply %.0f ms to its first token; regenerated %.1f ms to its first token (%d of %d prompt tokens "
                        "reused), same tokens: %s, snapshot memory %.1f MiB\n",
                        snapshots ? "on" : "off", first.ttftMs, again.ttftMs, again.reusedPromptTokens, tokens, again.tokens == first.tokens ? "yes" : "no",
                        static_cast<double>(session.snapshotBytes()) / (1 << 20));
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    return 0;
}
