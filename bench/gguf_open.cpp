// How long opening a GGUF takes: it must cost in proportion to the metadata, not the file.
//   bench_gguf_open [MODEL.gguf ...]     times the given files
//   bench_gguf_open --generate DIR       also writes and times a 1 GiB llama-shaped Q8_0 file
// Each file is opened 20 times; the median is reported. The page cache is warm (the point is
// what parsing costs; tensor bytes are not read at open).

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "inference/formats/gguf.h"

using namespace lumen::inference;

namespace {

double medianOpenMs(const std::filesystem::path& path, std::size_t& tensors) {
    std::vector<double> times;
    for (int i = 0; i < 20; ++i) {
        const auto start = std::chrono::steady_clock::now();
        const GgufFile f = GgufFile::open(path);
        times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
        tensors = f.tensors().size();
    }
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
}

std::filesystem::path generate(const std::filesystem::path& dir) {
    // 32 blocks of a 2048-wide model with a 32000-token vocabulary, all Q8_0: about 1.1 GB.
    const std::int64_t dim = 2048, ffn = 5632, vocab = 32000, layers = 32;
    GgufWriter w;
    w.set("general.architecture", GgufWriteValue::string("llama"));
    w.set("llama.block_count", GgufWriteValue::u32(layers));
    w.set("llama.embedding_length", GgufWriteValue::u32(dim));
    std::vector<std::string> tokens;
    std::vector<float> scores;
    for (std::int64_t i = 0; i < vocab; ++i) {
        tokens.push_back("tok" + std::to_string(i));
        scores.push_back(static_cast<float>(-i));
    }
    w.set("tokenizer.ggml.tokens", GgufWriteValue::stringArray(tokens));
    w.set("tokenizer.ggml.scores", GgufWriteValue::f32Array(scores));
    std::vector<std::uint8_t> zeros(static_cast<std::size_t>(*byteSize(DType::Q8_0, vocab * dim)));
    auto add = [&](const std::string& name, std::int64_t cols, std::int64_t rows) {
        w.addTensor(name, DType::Q8_0, {cols, rows},
                    std::span(zeros.data(), static_cast<std::size_t>(*byteSize(DType::Q8_0, cols * rows))));
    };
    add("token_embd.weight", dim, vocab);
    for (std::int64_t l = 0; l < layers; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        add(p + "attn_q.weight", dim, dim);
        add(p + "attn_k.weight", dim, dim / 8);
        add(p + "attn_v.weight", dim, dim / 8);
        add(p + "attn_output.weight", dim, dim);
        add(p + "ffn_gate.weight", dim, ffn);
        add(p + "ffn_up.weight", dim, ffn);
        add(p + "ffn_down.weight", ffn, dim);
    }
    add("output.weight", dim, vocab);
    const auto path = dir / "bench-1g-q8_0.gguf";
    w.write(path);
    return path;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::filesystem::path> files;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--generate" && i + 1 < argc) files.push_back(generate(argv[++i]));
        else files.emplace_back(arg);
    }
    if (files.empty()) {
        std::fprintf(stderr, "usage: %s [--generate DIR] [MODEL.gguf ...]\n", argv[0]);
        return 2;
    }
    for (const auto& f : files) {
        std::size_t tensors = 0;
        const double ms = medianOpenMs(f, tensors);
        std::printf("%-50s %10.1f MB  %4zu tensors  open %.3f ms (median of 20)\n", f.filename().c_str(),
                    static_cast<double>(std::filesystem::file_size(f)) / 1e6, tensors, ms);
    }
    return 0;
}
