// Tokenizer throughput: encodes about 1 MB of mixed text (English prose with code, numbers,
// punctuation and some non-Latin scripts, generated deterministically) with each vocabulary
// given, 5 times, and reports the median MB/s.
//   bench_tokenize ../shared/data/tokenizers/ggml-vocab-llama-spm.gguf ../shared/data/tokenizers/ggml-vocab-gpt-2.gguf

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "inference/formats/gguf.h"
#include "inference/llm/tokenizer.h"

using namespace lumen::inference;

namespace {

std::string makeText(std::size_t bytes) {
    static const char* kWords[] = {"the", "model", "reads", "tokens", "from", "a", "file", "and", "writes", "text",
                                   "Lumen", "runs", "locally", "on", "your", "machine", "with", "images", "described",
                                   "quickly", "because", "it", "is", "fast", "2024", "3.14", "x=y+1;", "(see", "below)",
                                   "naïve", "café", "Straße", "日本語", "Привет", "🦙", "don't", "we'll", "HTTP/1.1"};
    std::mt19937 rng(42);
    std::string text;
    while (text.size() < bytes) {
        const int words = 5 + static_cast<int>(rng() % 20);
        for (int i = 0; i < words; ++i) {
            text += kWords[rng() % std::size(kWords)];
            text += (rng() % 13 == 0) ? ", " : " ";
        }
        text += (rng() % 5 == 0) ? ".\n\n" : ". ";
    }
    return text;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s VOCAB.gguf...\n", argv[0]);
        return 2;
    }
    const std::string text = makeText(1 << 20);
    for (int i = 1; i < argc; ++i) {
        const GgufFile file = GgufFile::open(argv[i]);
        const Tokenizer tokenizer = Tokenizer::fromGguf(file);
        std::vector<double> seconds;
        std::size_t tokens = 0;
        for (int run = 0; run < 5; ++run) {
            const auto start = std::chrono::steady_clock::now();
            tokens = tokenizer.encode(text, false, false).size();
            seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        }
        std::sort(seconds.begin(), seconds.end());
        const double mb = static_cast<double>(text.size()) / 1e6;
        std::printf("%-32s %s  %.2f MB -> %zu tokens  %.2f MB/s (median of 5; %.0f ms)\n", file.displayName().substr(file.displayName().rfind('/') + 1).c_str(),
                    tokenizer.vocabulary().model == Vocabulary::Model::Spm ? "SPM" : "BPE", mb, tokens, mb / seconds[2], seconds[2] * 1e3);
    }
    return 0;
}
