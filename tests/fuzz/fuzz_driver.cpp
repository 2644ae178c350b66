// A stand-in for libFuzzer's main: feeds every file of the given corpus folders (or files) to
// LLVMFuzzerTestOneInput, then `--iterations N` deterministic mutations of them (byte flips,
// truncations, insertions, splices). A crash, sanitizer report or escaped exception fails it.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
// usage: fuzz_x [--iterations N] [--save-last FILE] CORPUS...

namespace {

std::vector<std::uint8_t> readAll(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<std::uint8_t> mutate(std::vector<std::uint8_t> data, const std::vector<std::vector<std::uint8_t>>& seeds,
                                 std::mt19937_64& rng) {
    const int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits; ++e) {
        const std::size_t n = data.size();
        switch (rng() % 6) {
            case 0:  // flip bits
                if (n) data[rng() % n] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
                break;
            case 1:  // set an interesting byte
                if (n) {
                    static const std::uint8_t kInteresting[] = {0, 1, 0x7F, 0x80, 0xFF, '"', '{', '[', '\\', '0'};
                    data[rng() % n] = kInteresting[rng() % std::size(kInteresting)];
                }
                break;
            case 2:  // truncate
                if (n) data.resize(rng() % n);
                break;
            case 3:  // insert random bytes
                if (data.size() < (1u << 20)) {
                    const std::size_t at = n ? rng() % (n + 1) : 0;
                    const std::size_t count = 1 + rng() % 16;
                    std::vector<std::uint8_t> bytes(count);
                    for (auto& b : bytes) b = static_cast<std::uint8_t>(rng());
                    data.insert(data.begin() + static_cast<std::ptrdiff_t>(at), bytes.begin(), bytes.end());
                }
                break;
            case 4:  // splice in a piece of another seed
                if (!seeds.empty()) {
                    const auto& other = seeds[rng() % seeds.size()];
                    if (!other.empty() && n) {
                        const std::size_t from = rng() % other.size();
                        const std::size_t count = std::min<std::size_t>(1 + rng() % 64, other.size() - from);
                        const std::size_t at = rng() % n;
                        for (std::size_t i = 0; i < count && at + i < n; ++i) data[at + i] = other[from + i];
                    }
                }
                break;
            default:  // overwrite a 4-byte field with an extreme integer
                if (n >= 4) {
                    static const std::uint32_t kExtremes[] = {0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x10000};
                    const std::uint32_t v = kExtremes[rng() % std::size(kExtremes)];
                    const std::size_t at = rng() % (n - 3);
                    for (int i = 0; i < 4; ++i) data[at + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v >> (8 * i));
                }
                break;
        }
    }
    return data;
}

}  // namespace

int main(int argc, char** argv) {
    long iterations = 0;
    std::string saveLast;  // --save-last FILE: each input is written there first, to replay a crash
    std::vector<std::vector<std::uint8_t>> seeds;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--iterations" && i + 1 < argc) {
            iterations = std::strtol(argv[++i], nullptr, 10);
            continue;
        }
        if (arg == "--save-last" && i + 1 < argc) {
            saveLast = argv[++i];
            continue;
        }
        const std::filesystem::path path(arg);
        if (std::filesystem::is_directory(path)) {
            for (const auto& entry : std::filesystem::directory_iterator(path))
                if (entry.is_regular_file()) seeds.push_back(readAll(entry.path()));
        } else if (std::filesystem::is_regular_file(path)) {
            seeds.push_back(readAll(path));
        } else {
            std::fprintf(stderr, "fuzz driver: %s: no such file or folder\n", arg.c_str());
            return 2;
        }
    }
    if (seeds.empty()) {
        std::fprintf(stderr, "usage: %s [--iterations N] CORPUS...\n", argv[0]);
        return 2;
    }
    for (const auto& seed : seeds) LLVMFuzzerTestOneInput(seed.data(), seed.size());
    std::mt19937_64 rng(0x4C554D454EULL);
    for (long i = 0; i < iterations; ++i) {
        const auto input = mutate(seeds[rng() % seeds.size()], seeds, rng);
        if (!saveLast.empty()) {
            std::ofstream out(saveLast, std::ios::binary | std::ios::trunc);
            out.write(reinterpret_cast<const char*>(input.data()), static_cast<std::streamsize>(input.size()));
        }
        LLVMFuzzerTestOneInput(input.data(), input.size());
    }
    std::printf("%zu seeds and %ld mutations ran without a crash\n", seeds.size(), iterations);
    return 0;
}
