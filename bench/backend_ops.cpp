// Op-level speed of a compute backend (the GPU's when there is one, else the CPU's):
//   bench_backend_ops [--cpu]
// For each weight dtype, matrix-vector products of Llama-3-8B shapes (4096 -> 14336, 14336 ->
// 4096) run back to back; the weight bytes read per second show how close the kernels come to
// the memory's bandwidth. Then the cost of a small op (a 4096-element add), which bounds how
// fast a model with hundreds of ops per token can decode.

#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "inference/core/backend.h"
#include "inference/formats/quants.h"

using namespace lumen::inference;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
    std::unique_ptr<Backend> backend;
    if (argc > 1 && std::strcmp(argv[1], "--cpu") == 0) {
        backend = makeCpuBackend();
    } else {
        try {
            backend = makeCudaBackend();
        } catch (const std::exception& e) {
            std::printf("no GPU (%s): the CPU backend\n", e.what());
            backend = makeCpuBackend();
        }
    }
    std::printf("%s\n", std::string(backend->name()).c_str());
    std::printf("%-6s %-14s %10s %10s\n", "dtype", "shape", "us/call", "GB/s");
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (DType t : {DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q4_1, DType::Q3_K, DType::Q2_K}) {
        for (auto [cols, rows] : {std::pair<std::int64_t, std::int64_t>{4096, 14336}, {14336, 4096}}) {
            std::vector<float> values(static_cast<std::size_t>(cols * rows));
            for (auto& v : values) v = normal(rng) * 0.05f;
            std::vector<std::uint8_t> bytes(static_cast<std::size_t>(*byteSize(t, cols * rows)));
            if (canQuantize(t)) quantize(t, values.data(), bytes.data(), cols * rows);
            else for (auto& b : bytes) b = static_cast<std::uint8_t>(rng() & 0x37);
            Tensor w;
            w.name = std::string(1, 'w');
            w.dtype = t;
            w.ne = {cols, rows, 1, 1};
            w.data = bytes.data();
            const Tensor* list[] = {&w};
            backend->prepareWeights(list);
            auto x = backend->alloc(cols), y = backend->alloc(rows);
            std::vector<float> hx(static_cast<std::size_t>(cols), 0.5f), sink(1);
            backend->upload(hx.data(), x.get(), cols);
            backend->matvec(w, x.get(), y.get());
            backend->download(y.get(), sink.data(), 1);
            const int reps = backend->name().starts_with("CUDA") ? 200 : 5;
            const auto start = Clock::now();
            for (int i = 0; i < reps; ++i) backend->matvec(w, x.get(), y.get());
            backend->download(y.get(), sink.data(), 1);
            const double s = std::chrono::duration<double>(Clock::now() - start).count() / reps;
            std::printf("%-6s %5lldx%-8lld %10.1f %10.1f\n", std::string(name(t)).c_str(), static_cast<long long>(cols), static_cast<long long>(rows),
                        s * 1e6, static_cast<double>(bytes.size()) / s / 1e9);
            backend->releaseWeights();
        }
    }
    auto a = backend->alloc(4096), b = backend->alloc(4096);
    std::vector<float> sink(1);
    const int reps = 20000;
    const auto start = Clock::now();
    for (int i = 0; i < reps; ++i) backend->add(a.get(), b.get(), 4096);
    backend->download(a.get(), sink.data(), 1);
    std::printf("small op (add of 4096 floats): %.2f us per call\n", std::chrono::duration<double>(Clock::now() - start).count() / reps * 1e6);
    return 0;
}
