#include "app/llm_host.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "inference/core/compute_devices.h"
#include "inference/core/memory.h"
#include "inference/formats/format_error.h"
#include "inference/llm/multimodal.h"
#include "vision/embedding_cache.h"
#include "vision/image_decode.h"
#include "vision/mmproj.h"

namespace lumen::app {

inference::ChatTemplate OpenedLlm::templateOr(std::string_view builtin) const {
    return chatTemplate ? *chatTemplate : inference::ChatTemplate::builtin(builtin);
}

OpenedLlm openLlm(const std::string& path, bool templateRequired) {
    OpenedLlm o;
    o.file = std::make_shared<const inference::GgufFile>(inference::GgufFile::open(path));
    o.model = inference::LanguageModel::load(o.file);
    o.tokenizer = std::make_shared<const inference::Tokenizer>(inference::Tokenizer::fromGguf(*o.file));
    try {
        o.chatTemplate = inference::ChatTemplate::fromGguf(*o.file);
    } catch (const inference::FormatError&) {  // (a template that does not parse)
        if (templateRequired) throw;
    }
    o.fileName = std::filesystem::path(path).filename().string();
    for (const auto& t : o.file->tensors()) o.parameters += t.elements;
    return o;
}

std::int64_t contextFor(const inference::LanguageModel& model, std::int64_t requested) {
    const std::int64_t trained = model.config().contextLength;
    return std::min(requested > 0 ? requested : kDefaultContext, trained);
}

inference::DType kvTypeFor(const inference::LanguageModel& model, inference::DType requested) {
    return requested == inference::DType::Q8_0 && model.config().headDim % 32 != 0 ? inference::DType::F16 : requested;
}

void requireFits(const inference::LanguageModel& model, std::int64_t context, inference::DType kvType, std::uint64_t snapshotBytes,
                 std::uint64_t available) {
    const auto need = model.estimateMemory(context, kvType, snapshotBytes);
    if (need.total() > available)
        throw FitError(FitError::Kind::Memory, "it needs about " + inference::formatBytes(need.total()) + " (weights " + inference::formatBytes(need.weights) + ", KV cache " +
                       inference::formatBytes(need.kvCache) + " for " + std::to_string(context) + " tokens) but only " +
                       inference::formatBytes(available) + " is free");
}

GpuStatus gpuStatus() {
    const auto devices = inference::queryComputeDevices();
    GpuStatus s;
    s.built = devices.cudaBuilt;
    if (!devices.cudaBuilt) {
        s.text = "this build has no CUDA backend: models run on the CPU";
        return s;
    }
    if (devices.gpus.empty()) {
        s.text = "no GPU in use (" + devices.cudaUnavailableReason + "): models run on the CPU";
        return s;
    }
    const auto& gpu = devices.gpus.front();
    // A GPU found is not always usable: the backend also needs cuBLAS and compute 8.0. Tried once
    // (making a backend costs a context and handles), then remembered.
    static const std::string unusable = [] {
        try {
            inference::makeCudaBackend();
            return std::string();
        } catch (const std::exception& e) {
            return std::string(e.what()).empty() ? std::string("unknown reason") : std::string(e.what());
        }
    }();
    s.usable = unusable.empty();
    s.text = s.usable ? gpu.name + ": " + inference::formatBytes(gpu.freeMemory) + " free of " + inference::formatBytes(gpu.totalMemory) + ", usable for models"
                      : gpu.name + " is not usable (" + unusable + "): models run on the CPU";
    return s;
}

std::string Placement::describe() const {
    if (gpuLayers == 0) return std::string(cpu->name());
    if (gpuLayers == layers) return std::string(gpu->name());
    return std::string(gpu->name()) + " (" + std::to_string(gpuLayers) + " of " + std::to_string(layers) + " layers) and " + std::string(cpu->name());
}

std::string Placement::where() const {
    if (gpuLayers == 0) return "CPU";
    if (gpuLayers == layers) return "GPU";
    return "GPU " + std::to_string(gpuLayers) + " of " + std::to_string(layers) + " layers";
}

Placement placeLlm(const inference::LanguageModel& model, const LlmOptions& options) {
    const std::int64_t nLayers = model.config().nLayers;
    const std::int64_t context = contextFor(model, options.contextSize);
    const auto kvType = kvTypeFor(model, options.kvType);
    std::int64_t wanted = std::min(options.gpuLayers, nLayers);
    Placement p;
    p.layers = nLayers;
    p.pool = options.cpuPool;
    p.cpu = inference::makeCpuBackend({.threads = options.threads, .pool = options.cpuPool});
    if (wanted != 0) {
        try {
            p.gpu = inference::makeCudaBackend();
        } catch (const std::exception& e) {
            if (wanted > 0 && options.strictGpuLayers) throw FitError(FitError::Kind::Gpu, std::string("cannot use the GPU: ") + e.what());
            if (inference::queryComputeDevices().cudaBuilt) p.notes.push_back(std::string("computing on the CPU: ") + e.what());
        }
    }
    if (p.gpu) {
        const auto devices = inference::queryComputeDevices();
        const std::uint64_t freeBytes = devices.gpus.empty() ? 0 : devices.gpus.front().freeMemory;
        const std::int64_t fitting = model.gpuLayersFitting(freeBytes / 100 * kGpuMemoryPercent, context, kvType);
        if (wanted > fitting && options.strictGpuLayers)
            throw FitError(FitError::Kind::Gpu, std::to_string(wanted) + " layers do not fit in " + std::to_string(kGpuMemoryPercent) + "% of the GPU's " +
                                                    inference::formatBytes(freeBytes) + " of free memory; at most " + std::to_string(fitting) +
                                                    " do (ask for fewer GPU layers or a smaller context)");
        p.gpuLayers = wanted < 0 ? fitting : std::min(wanted, fitting);
        if (p.gpuLayers < std::max<std::int64_t>(wanted, wanted < 0 ? nLayers : 0))
            p.notes.push_back(std::to_string(p.gpuLayers) + " of " + std::to_string(wanted < 0 ? nLayers : wanted) +
                              " layers fit in the GPU's free memory; the rest run on the CPU");
        if (p.gpuLayers == 0) p.gpu.reset();
    }
    // A partly placed model keeps its CPU layers' cache in RAM; the check is made for the CPU case,
    // where the whole estimate must fit.
    if (const auto available = inference::availableMemory(); p.gpuLayers == 0 && available)
        requireFits(model, context, kvType, options.snapshotBytes, *available);
    return p;
}

std::unique_ptr<inference::LanguageSession> LoadedLlm::newSession() const {
    auto session = std::make_unique<inference::LanguageSession>(llm.model, placement.split(), contextSize, kvType);
    session->setSnapshotLimit(snapshotBytes);
    return session;
}

std::string LoadedLlm::summary() const {
    const auto& c = llm.model->config();
    char params[32];
    std::snprintf(params, sizeof params, "%.1fM", static_cast<double>(llm.parameters) / 1e6);
    return llm.fileName + " (" + c.architecture + ", " + std::to_string(c.nLayers) + " layers, " + params + " parameters, " + placement.where() + ")";
}

LoadedLlm loadLlm(OpenedLlm llm, const LlmOptions& options) {
    LoadedLlm loaded;
    loaded.contextSize = contextFor(*llm.model, options.contextSize);
    loaded.kvType = kvTypeFor(*llm.model, options.kvType);
    loaded.snapshotBytes = options.snapshotBytes;
    loaded.placement = placeLlm(*llm.model, options);
    if (options.contextSize > loaded.contextSize)
        loaded.placement.notes.push_back("the context is " + std::to_string(loaded.contextSize) + " tokens, what the model was trained for, not the " +
                                         std::to_string(options.contextSize) + " asked for");
    loaded.llm = std::move(llm);
    return loaded;
}

Projector::Projector() = default;
Projector::Projector(Projector&&) noexcept = default;
Projector& Projector::operator=(Projector&& other) noexcept {
    mmproj = std::move(other.mmproj);  // (the old projector goes first, then its backend)
    backend = std::move(other.backend);
    key = std::move(other.key);
    notes = std::move(other.notes);
    return *this;
}
Projector::~Projector() = default;

Projector openProjector(const std::string& path, const LoadedLlm& llm) {
    Projector p;
    if (llm.placement.gpuLayers > 0) {
        try {
            p.backend = inference::makeCudaBackend();
        } catch (const std::exception& e) {
            p.notes.push_back(std::string("the image projector runs on the CPU: ") + e.what());
        }
    }
    if (!p.backend) p.backend = inference::makeCpuBackend({.pool = llm.placement.pool});
    p.mmproj = vision::Mmproj::load(path, *p.backend);
    p.mmproj->checkFits(llm.llm.model->config().dim, llm.llm.fileName);
    std::error_code error;
    const auto canonical = std::filesystem::canonical(path, error);
    p.key = error ? path : canonical.string();
    return p;
}

ImageRows projectImage(const Projector& projector, vision::EmbeddingCache& cache, std::span<const std::uint8_t> bytes, const std::string& sha256) {
    ImageRows in;
    in.rows = cache.find(projector.key, sha256);
    in.cached = in.rows != nullptr;
    if (!in.rows) {
        const auto start = std::chrono::steady_clock::now();
        cache.insert(projector.key, sha256, projector.mmproj->encode(vision::decodeImage(bytes, {.neededSide = vision::kLargestModelSide})));
        in.rows = cache.find(projector.key, sha256);
        in.encodeMs = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    }
    in.placeholders = inference::imagePlaceholders(inference::imageRowsKey(projector.key, sha256),
                                                   static_cast<std::int64_t>(in.rows->size()) / projector.mmproj->outputWidth());
    return in;
}

void addRows(const Projector& projector, const ImageRows& image, inference::EmbeddingRows& rows) {
    const auto width = static_cast<std::size_t>(projector.mmproj->outputWidth());
    for (std::size_t r = 0; r < image.placeholders.size(); ++r) rows[image.placeholders[r]] = image.rows->data() + r * width;
}

std::vector<inference::TokenId> promptTokens(const inference::Tokenizer& tokenizer, const std::string& prompt,
                                             const std::vector<std::vector<inference::TokenId>>& images) {
    const auto& vocab = tokenizer.vocabulary();
    const std::string bos = vocab.bos ? vocab.tokens[static_cast<std::size_t>(*vocab.bos)] : std::string();
    const bool templateHasBos = !bos.empty() && prompt.starts_with(bos);
    return images.empty() ? tokenizer.encode(prompt, !templateHasBos, true) : inference::spliceImages(tokenizer, prompt, images, !templateHasBos);
}

}  // namespace lumen::app
