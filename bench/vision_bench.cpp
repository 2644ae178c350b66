// Image-encoder speed on the CPU (or the GPU with --gpu), with random weights at real shapes:
//   bench_vision [--gpu] [--threads 1,2] [--runs N] [--only NAME]
// Writes Hugging Face folders (F16 safetensors, config.json, preprocessor_config.json) to a
// temporary folder, then times image encoding (preprocessing excluded: the pixel tensor is made
// once) for CLIP ViT-B/32, ViT-B/16, ViT-L/14-336 and DINOv2 ViT-S/14, ViT-B/14 (224 x 224 input,
// positions resized from 37 x 37), and zero-shot classification throughput with 1000 labels
// whose text embeddings are cached (computed once, outside the timing).

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "inference/core/backend.h"
#include "inference/formats/half.h"
#include "inference/formats/safetensors_writer.h"
#include "vision/classifier.h"
#include "vision/clip_model.h"
#include "vision/dinov2_model.h"
#include "vision/mmproj.h"
#include "inference/formats/gguf.h"

using namespace lumen;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

struct Shape {
    std::string name;
    bool dino;
    int dim, layers, heads, inter, image, patch, grid;  // grid: trained position grid
    int textDim = 0, textLayers = 0, textHeads = 0, proj = 0;
};

inference::SafetensorsEntry tensor(const std::string& name, std::vector<std::int64_t> shape, std::mt19937& rng, float scale, float offset = 0.0f) {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(n) * 2);
    std::uniform_real_distribution<float> u(-scale, scale);
    // note: one random value per 64 repeated with a stride keeps writing 300M weights quick.
    std::vector<std::uint16_t> pool(4096);
    for (auto& h : pool) h = inference::floatToHalf(offset + u(rng));
    for (std::int64_t i = 0; i < n; ++i) {
        const std::uint16_t h = pool[static_cast<std::size_t>((i * 2654435761u) % pool.size())];
        std::memcpy(bytes.data() + 2 * i, &h, 2);
    }
    return {name, "F16", std::move(shape), std::move(bytes)};
}

void layers(std::vector<inference::SafetensorsEntry>& t, const std::string& prefix, const std::vector<std::string>& names, int dim, int inter, int count,
            std::mt19937& rng) {
    // names: ln1, q, k, v, o, ln2, fc1, fc2 [, ls1, ls2]
    const float s = 1.0f / std::sqrt(static_cast<float>(dim));
    for (int i = 0; i < count; ++i) {
        const std::string p = prefix + std::to_string(i) + ".";
        for (int n : {0, 5}) {
            t.push_back(tensor(p + names[n] + ".weight", {dim}, rng, 0.1f, 1.0f));
            t.push_back(tensor(p + names[n] + ".bias", {dim}, rng, 0.1f));
        }
        for (int n : {1, 2, 3, 4}) {
            t.push_back(tensor(p + names[n] + ".weight", {dim, dim}, rng, s));
            t.push_back(tensor(p + names[n] + ".bias", {dim}, rng, 0.05f));
        }
        t.push_back(tensor(p + names[6] + ".weight", {inter, dim}, rng, s));
        t.push_back(tensor(p + names[6] + ".bias", {inter}, rng, 0.05f));
        t.push_back(tensor(p + names[7] + ".weight", {dim, inter}, rng, 1.0f / std::sqrt(static_cast<float>(inter))));
        t.push_back(tensor(p + names[7] + ".bias", {dim}, rng, 0.05f));
        if (names.size() > 8) {
            t.push_back(tensor(p + names[8], {dim}, rng, 0.1f, 0.5f));
            t.push_back(tensor(p + names[9], {dim}, rng, 0.1f, 0.5f));
        }
    }
}

void writeJson(const fs::path& file, const nlohmann::json& j) { std::ofstream(file) << j.dump(1); }

fs::path makeFolder(const Shape& s, const fs::path& root) {
    const fs::path dir = root / s.name;
    fs::create_directories(dir);
    std::mt19937 rng(7);
    std::vector<inference::SafetensorsEntry> t;
    if (s.dino) {
        t.push_back(tensor("embeddings.cls_token", {1, 1, s.dim}, rng, 0.5f));
        t.push_back(tensor("embeddings.position_embeddings", {1, s.grid * s.grid + 1, s.dim}, rng, 0.5f));
        t.push_back(tensor("embeddings.patch_embeddings.projection.weight", {s.dim, 3, s.patch, s.patch}, rng, 0.03f));
        t.push_back(tensor("embeddings.patch_embeddings.projection.bias", {s.dim}, rng, 0.1f));
        t.push_back(tensor("layernorm.weight", {s.dim}, rng, 0.1f, 1.0f));
        t.push_back(tensor("layernorm.bias", {s.dim}, rng, 0.1f));
        layers(t, "encoder.layer.",
               {"norm1", "attention.attention.query", "attention.attention.key", "attention.attention.value", "attention.output.dense", "norm2", "mlp.fc1",
                "mlp.fc2", "layer_scale1.lambda1", "layer_scale2.lambda1"},
               s.dim, s.inter, s.layers, rng);
        writeJson(dir / "config.json", {{"model_type", "dinov2"}, {"hidden_size", s.dim}, {"num_hidden_layers", s.layers}, {"num_attention_heads", s.heads},
                                        {"patch_size", s.patch}, {"image_size", s.grid * s.patch}, {"layer_norm_eps", 1e-6}, {"hidden_act", "gelu"}});
        writeJson(dir / "preprocessor_config.json", {{"size", {{"shortest_edge", 256}}}, {"crop_size", {{"height", s.image}, {"width", s.image}}}});
    } else {
        const std::vector<std::string> names = {"layer_norm1", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "layer_norm2", "mlp.fc1", "mlp.fc2"};
        const int g = s.image / s.patch;
        t.push_back(tensor("vision_model.embeddings.class_embedding", {s.dim}, rng, 0.5f));
        t.push_back(tensor("vision_model.embeddings.patch_embedding.weight", {s.dim, 3, s.patch, s.patch}, rng, 0.03f));
        t.push_back(tensor("vision_model.embeddings.position_embedding.weight", {g * g + 1, s.dim}, rng, 0.3f));
        for (const char* n : {"vision_model.pre_layrnorm", "vision_model.post_layernorm"}) {
            t.push_back(tensor(std::string(n) + ".weight", {s.dim}, rng, 0.1f, 1.0f));
            t.push_back(tensor(std::string(n) + ".bias", {s.dim}, rng, 0.1f));
        }
        t.push_back(tensor("visual_projection.weight", {s.proj, s.dim}, rng, 0.05f));
        layers(t, "vision_model.encoder.layers.", names, s.dim, s.inter, s.layers, rng);
        nlohmann::json config = {{"model_type", "clip"},
                                 {"vision_config", {{"hidden_size", s.dim}, {"num_hidden_layers", s.layers}, {"num_attention_heads", s.heads}, {"image_size", s.image}, {"patch_size", s.patch}}}};
        if (s.textDim > 0) {
            t.push_back(tensor("text_model.embeddings.token_embedding.weight", {49408, s.textDim}, rng, 0.5f));
            t.push_back(tensor("text_model.embeddings.position_embedding.weight", {77, s.textDim}, rng, 0.3f));
            t.push_back(tensor("text_model.final_layer_norm.weight", {s.textDim}, rng, 0.1f, 1.0f));
            t.push_back(tensor("text_model.final_layer_norm.bias", {s.textDim}, rng, 0.1f));
            t.push_back(tensor("text_projection.weight", {s.proj, s.textDim}, rng, 0.05f));
            layers(t, "text_model.encoder.layers.", names, s.textDim, 4 * s.textDim, s.textLayers, rng);
            config["text_config"] = {{"hidden_size", s.textDim}, {"num_hidden_layers", s.textLayers}, {"num_attention_heads", s.textHeads}};
        }
        writeJson(dir / "config.json", config);
        writeJson(dir / "preprocessor_config.json", {{"size", {{"shortest_edge", s.image}}}, {"crop_size", {{"height", s.image}, {"width", s.image}}}});
    }
    inference::writeSafetensors(dir / "model.safetensors", t);
    return dir;
}

// A llama.cpp mmproj at LLaVA-1.5's shape: CLIP ViT-L/14 at 336 px with 23 of its 24 layers
// (the converter drops the last) and the two-layer projector to an LLM `llm` wide.
fs::path makeMmproj(const fs::path& root, int llm) {
    constexpr int dim = 1024, ffn = 4096, layers = 23, patch = 14, size = 336, grid = size / patch;
    std::mt19937 rng(9);
    std::vector<inference::SafetensorsEntry> t;  // reused as byte holders
    const auto add = [&](const std::string& name, std::vector<std::int64_t> shape, float scale, float offset = 0.0f) {
        t.push_back(tensor(name, std::move(shape), rng, scale, offset));
    };
    add("v.class_embd", {dim}, 0.5f);
    add("v.patch_embd.weight", {dim, 3, patch, patch}, 0.03f);
    add("v.position_embd.weight", {grid * grid + 1, dim}, 0.3f);
    add("v.pre_ln.weight", {dim}, 0.1f, 1.0f);
    add("v.pre_ln.bias", {dim}, 0.1f);
    for (int i = 0; i < layers; ++i) {
        const std::string p = "v.blk." + std::to_string(i) + ".";
        for (const char* n : {"ln1", "ln2"}) {
            add(p + n + ".weight", {dim}, 0.1f, 1.0f);
            add(p + n + ".bias", {dim}, 0.1f);
        }
        for (const char* n : {"attn_q", "attn_k", "attn_v", "attn_out"}) {
            add(p + n + ".weight", {dim, dim}, 0.03f);
            add(p + n + ".bias", {dim}, 0.05f);
        }
        add(p + "ffn_down.weight", {ffn, dim}, 0.03f);
        add(p + "ffn_down.bias", {ffn}, 0.05f);
        add(p + "ffn_up.weight", {dim, ffn}, 0.015f);
        add(p + "ffn_up.bias", {dim}, 0.05f);
    }
    add("mm.0.weight", {llm, dim}, 0.03f);
    add("mm.0.bias", {llm}, 0.05f);
    add("mm.2.weight", {llm, llm}, 0.02f);
    add("mm.2.bias", {llm}, 0.05f);
    inference::GgufWriter w;
    using V = inference::GgufWriteValue;
    w.set("general.architecture", V::string("clip"));
    w.set("clip.has_vision_encoder", V::boolean(true));
    w.set("clip.has_llava_projector", V::boolean(true));
    w.set("clip.projector_type", V::string("mlp"));
    w.set("clip.use_gelu", V::boolean(false));
    w.set("clip.vision.image_size", V::u32(size));
    w.set("clip.vision.patch_size", V::u32(patch));
    w.set("clip.vision.embedding_length", V::u32(dim));
    w.set("clip.vision.feed_forward_length", V::u32(ffn));
    w.set("clip.vision.projection_dim", V::u32(static_cast<std::uint32_t>(llm)));
    w.set("clip.vision.attention.head_count", V::u32(16));
    w.set("clip.vision.attention.layer_norm_epsilon", V::f32(1e-5f));
    w.set("clip.vision.block_count", V::u32(layers));
    for (const auto& e : t) {
        std::vector<std::int64_t> ne(e.shape.rbegin(), e.shape.rend());  // ggml order
        w.addTensor(e.name, inference::DType::F16, ne, e.bytes);
    }
    const fs::path file = root / "mmproj-llava-l14-336.gguf";
    fs::create_directories(root);
    w.write(file);
    return file;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    bool gpu = false;
    int runs = 5;
    std::vector<int> threads = {1, 2};
    std::string only;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--gpu") gpu = true;
        else if (a == "--runs" && i + 1 < argc) runs = std::max(1, std::atoi(argv[++i]));
        else if (a == "--only" && i + 1 < argc) only = argv[++i];
        else if (a == "--threads" && i + 1 < argc) {
            threads.clear();
            for (std::string s = argv[++i]; !s.empty();) {
                threads.push_back(std::atoi(s.c_str()));
                const auto comma = s.find(',');
                s = comma == std::string::npos ? "" : s.substr(comma + 1);
            }
        } else {
            std::fprintf(stderr, "usage: bench_vision [--gpu] [--threads 1,2] [--runs N] [--only NAME]\n");
            return 2;
        }
    }
    const std::vector<Shape> shapes = {
        {"clip-vit-b-32", false, 768, 12, 12, 3072, 224, 32, 0, 512, 12, 8, 512},
        {"clip-vit-b-16", false, 768, 12, 12, 3072, 224, 16, 0, 0, 0, 0, 512},
        {"clip-vit-l-14-336", false, 1024, 24, 16, 4096, 336, 14, 0, 0, 0, 0, 768},
        {"dinov2-vit-s-14", true, 384, 12, 6, 1536, 224, 14, 37},
        {"dinov2-vit-b-14", true, 768, 12, 12, 3072, 224, 14, 37},
    };
    const fs::path root = fs::temp_directory_path() / "lumen-bench-vision";
    std::printf("%-20s %8s %12s\n", "model", "threads", "encode ms");
    for (const Shape& s : shapes) {
        if (!only.empty() && s.name != only) continue;
        const fs::path dir = makeFolder(s, root);
        for (int t : gpu ? std::vector<int>{0} : threads) {
            auto backend = gpu ? inference::makeCudaBackend() : inference::makeCpuBackend({.threads = t});
            auto model = vision::openImageEncoder(dir, *backend);
            vision::PixelTensor px{3, s.image, s.image, std::vector<float>(static_cast<std::size_t>(3 * s.image * s.image))};
            std::mt19937 rng(1);
            std::normal_distribution<float> n;
            for (float& v : px.data) v = n(rng);
            model->embedImage(px);  // warm-up: weights paged in (and uploaded)
            std::vector<double> ms;
            for (int r = 0; r < runs; ++r) {
                const auto start = Clock::now();
                model->embedImage(px);
                ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
            }
            std::printf("%-20s %8s %12.1f\n", s.name.c_str(), gpu ? "gpu" : std::to_string(t).c_str(), median(ms));
            std::fflush(stdout);
            if (s.textDim > 0 && t == (gpu ? 0 : threads.back())) {
                // Zero-shot with 1000 labels: text embeddings computed once (the cache), then images.
                auto* clip = dynamic_cast<vision::ClipModel*>(model.get());
                std::vector<std::string> labels;
                std::vector<vision::Embedding> embeddings;
                const auto textStart = Clock::now();
                for (int l = 0; l < 1000; ++l) {
                    labels.push_back("label " + std::to_string(l));
                    const std::vector<std::int32_t> ids = {49406, 320 + l % 1000, 1125 + l / 7, 539, 49407};
                    embeddings.push_back(clip->embedTokens(ids));
                }
                const double textMs = std::chrono::duration<double, std::milli>(Clock::now() - textStart).count();
                const auto classifier = vision::Classifier::fromEmbeddings(labels, std::move(embeddings), clip->logitScale());
                const int images = std::max(runs, 4);
                const auto start = Clock::now();
                for (int i = 0; i < images; ++i) classifier.classify(model->embedImage(px), 5);
                const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
                std::printf("  zero-shot, 1000 labels: %.2f images/s (label embeddings once: %.1f s)\n", images / seconds, textMs / 1000.0);
            }
        }
    }
    if (only.empty() || only == "mmproj") {
        // LLaVA-1.5's tower and a projector to a TinyLlama-wide (2048) LLM.
        const fs::path file = makeMmproj(root, 2048);
        for (int t : gpu ? std::vector<int>{0} : threads) {
            auto backend = gpu ? inference::makeCudaBackend() : inference::makeCpuBackend({.threads = t});
            auto mmproj = vision::Mmproj::load(file, *backend);
            vision::PixelTensor px{3, 336, 336, std::vector<float>(3 * 336 * 336, 0.1f)};
            mmproj->encode(px);
            std::vector<double> ms;
            for (int r = 0; r < runs; ++r) {
                const auto start = Clock::now();
                mmproj->encode(px);
                ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
            }
            std::printf("%-20s %8s %12.1f   (%lld rows of %lld)\n", "mmproj-l14-336", gpu ? "gpu" : std::to_string(t).c_str(), median(ms),
                        static_cast<long long>(mmproj->imageRows()), static_cast<long long>(mmproj->outputWidth()));
        }
        if (std::getenv("LUMEN_KEEP_MMPROJ")) {
            std::printf("kept %s\n", file.c_str());
            return 0;
        }
    }
    fs::remove_all(root);
    return 0;
}
