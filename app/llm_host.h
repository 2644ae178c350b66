#pragma once
// The one way a language model is opened, placed and fed, shared by the desktop app's ChatEngine,
// lumen-cli's generate/describe/chat/bench and the coming server: opening and checking a GGUF,
// the memory check, where layers run (one rule for CPU and GPU), pairing an image projector with
// the model, an image's rows and placeholder ids (keyed by projector and image), and a rendered
// prompt's tokens. Plain C++ (no Qt): the callers add their own threads and messages. Errors are
// exceptions whose text is meant for the user.

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "inference/core/backend.h"
#include "inference/formats/gguf.h"
#include "inference/llm/chat_template.h"
#include "inference/llm/generator.h"
#include "inference/llm/language_model.h"
#include "inference/llm/tokenizer.h"

namespace lumen::vision {
class EmbeddingCache;
class Mmproj;
}  // namespace lumen::vision

namespace lumen::app {

// Layers go on the GPU while they fit in this share of its free memory: the rest is left for the
// CUDA context, the projector and other programs.
constexpr std::uint64_t kGpuMemoryPercent = 90;
// The context of a model whose caller names none: the model's, at most this.
constexpr std::int64_t kDefaultContext = 4096;

// A model's file, weights, tokenizer and chat template, read and checked but not yet placed: the
// app opens a new model while the old one still runs, and lets the old one go only when this works.
struct OpenedLlm {
    std::shared_ptr<const inference::GgufFile> file;
    std::shared_ptr<inference::LanguageModel> model;
    std::shared_ptr<const inference::Tokenizer> tokenizer;
    std::optional<inference::ChatTemplate> chatTemplate;  // the file's own, when it has one
    std::string fileName;                                 // "stories260K.gguf"
    std::int64_t parameters = 0;

    // The file's template, else the named built-in (chatml for chat, llava for images).
    inference::ChatTemplate templateOr(std::string_view builtin) const;
};

// Opens and checks a GGUF language model (format, family, vocabulary). `templateRequired`: a chat
// template that does not parse is an error; otherwise it is set aside (the model still generates
// from token ids). Throws FormatError.
OpenedLlm openLlm(const std::string& path, bool templateRequired = true);

struct LlmOptions {
    std::int64_t contextSize = 0;  // tokens; 0: the model's, at most kDefaultContext
    int threads = 0;               // CPU threads; 0: the physical cores
    std::int64_t gpuLayers = -1;   // -1: all that fit on a usable GPU (else the CPU); 0: none; N: N, or an error
    inference::DType kvType = inference::DType::F16;
    std::uint64_t snapshotBytes = inference::kSnapshotBytes;  // saved states of recurrent models
    std::shared_ptr<inference::ThreadPool> cpuPool;            // shared with other backends (else its own)
    // An explicit gpuLayers that cannot be met (no usable GPU, or fewer layers fit) is an error
    // (lumen-cli: the user asked for exactly that); otherwise the most that can be met, with a
    // note (the app: a model is never lost to a GPU that went away).
    bool strictGpuLayers = true;
};

// The context a model gets for a request: at most what it was trained for (0: at most kDefaultContext).
std::int64_t contextFor(const inference::LanguageModel& model, std::int64_t requested);
// The KV cache type a model can take: Q8_0 stores heads in blocks of 32, so other head sizes keep F16.
inference::DType kvTypeFor(const inference::LanguageModel& model, inference::DType requested);

// Thrown when a model cannot be placed as asked: it will not fit in free memory (Memory: a smaller
// context helps), or the GPU layers asked for cannot run or do not fit (Gpu).
class FitError : public std::runtime_error {
public:
    enum class Kind { Memory, Gpu };
    FitError(Kind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
    Kind kind() const { return kind_; }

private:
    Kind kind_;
};

// Throws FitError (what it needs, what is free) when a CPU session needs more than `available`
// bytes. Weights are mapped from the file, not copied, so what must fit is the whole estimate.
void requireFits(const inference::LanguageModel& model, std::int64_t context, inference::DType kvType, std::uint64_t snapshotBytes,
                 std::uint64_t available);

// Whether models can use a GPU here and why not, in words for the window and `lumen-cli info`.
struct GpuStatus {
    bool built = false;   // this build has the CUDA backend
    bool usable = false;  // a GPU the backend can run on (driver, cuBLAS, compute 8.0) is present
    std::string text;     // "NVIDIA H100 80GB HBM3: 79.2 GB free of 79.6 GB, usable for models" or why not
};
GpuStatus gpuStatus();

// Where a model's layers run: the CPU always, plus a GPU for the last `gpuLayers`.
struct Placement {
    std::unique_ptr<inference::Backend> cpu, gpu;
    std::shared_ptr<inference::ThreadPool> pool;  // the CPU backend's, when shared
    std::int64_t gpuLayers = 0, layers = 0;
    std::vector<std::string> notes;  // what the user should know: "20 of 32 layers fit in the GPU's free memory; ..."

    inference::LayerSplit split() const { return {cpu.get(), gpu.get(), gpuLayers}; }
    // "CPU (AVX-512 ...)", "CUDA ... (20 of 32 layers) and CPU (...)": the backends' own names.
    std::string describe() const;
    // "CPU", "GPU", "GPU 20 of 32 layers": short, for a status line.
    std::string where() const;
};

// Places a model by the one rule: `gpuLayers` -1 puts as many of the last layers on the GPU as fit
// in kGpuMemoryPercent of its free memory (none without a usable GPU, with a note when CUDA was
// built but cannot run); N > 0 asks for N layers (see strictGpuLayers for when they cannot be
// had); 0 stays on the CPU. Then checks that the CPU's share fits in free memory.
Placement placeLlm(const inference::LanguageModel& model, const LlmOptions& options);

// A placed model, ready for sessions.
struct LoadedLlm {
    OpenedLlm llm;
    Placement placement;
    std::int64_t contextSize = 0;
    inference::DType kvType = inference::DType::F16;
    std::uint64_t snapshotBytes = inference::kSnapshotBytes;

    std::unique_ptr<inference::LanguageSession> newSession() const;
    // "stories260K.gguf (llama, 5 layers, 0.3M parameters, CPU)"
    std::string summary() const;
};

// openLlm's result placed as `options` say (contextFor, kvTypeFor, placeLlm).
LoadedLlm loadLlm(OpenedLlm llm, const LlmOptions& options);

// An image projector (llama.cpp mmproj GGUF) paired with a loaded model: its rows are as wide as
// the model's embeddings (else FormatError says what it is for). It runs on a backend of its own,
// on the GPU when the model uses one (else, or when the GPU cannot be had, on the CPU, sharing
// the model's pool): a GPU backend keeps its weights until it goes, so a projector swapped out
// takes its weights with it.
struct Projector {
    std::unique_ptr<inference::Backend> backend;  // (declared first: it goes after the projector)
    std::unique_ptr<vision::Mmproj> mmproj;
    std::string key;  // names its rows in caches and placeholder ids: the file's canonical path
    std::vector<std::string> notes;  // "the projector runs on the CPU: ..."
    Projector();
    Projector(Projector&&) noexcept;
    Projector& operator=(Projector&&) noexcept;  // (the old projector goes before its backend)
    ~Projector();
};
Projector openProjector(const std::string& path, const LoadedLlm& llm);

// One image's rows in a prompt: the projected rows and the placeholder ids standing for them.
struct ImageRows {
    std::shared_ptr<const std::vector<float>> rows;
    std::vector<inference::TokenId> placeholders;
    double encodeMs = 0;  // 0 when the rows came from the cache
    bool cached = false;
};

// The rows of an image (its file bytes, and their SHA-256 hex) through `projector`: from `cache`
// when it has them, else decoded and encoded (vision::ImageError for bytes that are no image).
ImageRows projectImage(const Projector& projector, vision::EmbeddingCache& cache, std::span<const std::uint8_t> bytes, const std::string& sha256);
// Adds an image's rows to the map the generator reads placeholders from.
void addRows(const Projector& projector, const ImageRows& image, inference::EmbeddingRows& rows);

// A rendered prompt's tokens: special-token text parsed, BOS added when the template did not
// write it, and each image marker replaced by that image's placeholders (in order).
std::vector<inference::TokenId> promptTokens(const inference::Tokenizer& tokenizer, const std::string& prompt,
                                             const std::vector<std::vector<inference::TokenId>>& images = {});

}  // namespace lumen::app
