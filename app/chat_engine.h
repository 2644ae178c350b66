#pragma once
// The language model behind the desktop app, on the job runner's LLM lane: loading a GGUF,
// rendering a conversation with the model's chat template, and streaming a reply. Everything
// that touches the model runs on the lane; results come back as queued signals, so the UI
// thread never waits on inference. stop() is honoured within one token.

#include <QObject>
#include <QString>
#include <QVariantMap>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "app/job_runner.h"
#include "app/prompt_builder.h"
#include "app/remote_client.h"
#include "inference/llm/generator.h"

namespace lumen::app {

// What to do with a chat longer than the model's context: leave out its oldest turns (the system
// prompt, a template's examples and the newest message stay), or refuse with a message.
enum class ContextPolicy { LeaveOutOldest = 0, Refuse = 1 };

struct EngineOptions {
    int threads = 0;          // 0: the physical cores
    int contextSize = 4096;   // at most the model's
    int gpuLayers = -1;       // layers on a CUDA GPU: -1 all that fit (when one is usable), 0 none
    inference::DType kvType = inference::DType::F16;  // the KV cache: F16, F32 (twice the memory, exact) or Q8_0 (a little over half)
    // Models with recurrent layers (Qwen3.5): memory for saved states, so regenerating and editing
    // a recent message do not re-read the whole chat (LanguageSession::snapshot), in MiB.
    int snapshotMiB = static_cast<int>(inference::kSnapshotBytes >> 20);
    // Not a load option: used from the next reply on.
    ContextPolicy contextPolicy = ContextPolicy::LeaveOutOldest;
};

// The KV cache type as the settings store it: bits per value, 32, 16 or 8 (Q8_0); anything else
// is the default, F16.
inline inference::DType kvTypeOfBits(int bits) {
    return bits == 32 ? inference::DType::F32 : bits == 8 ? inference::DType::Q8_0 : inference::DType::F16;
}
inline int kvBitsOf(inference::DType type) { return type == inference::DType::F32 ? 32 : type == inference::DType::Q8_0 ? 8 : 16; }

// What a GGUF holds and what it will need, read without loading it (for the confirmation the
// app shows before loading): architecture, size, quantization, context, memory estimate, and
// whether it fits in the free memory. Throws FormatError for files that are not LLMs.
struct ModelSummary {
    QString text;       // several lines, for a dialog
    bool fits = true;   // the estimate is below the available memory (or it is unknown)
};
ModelSummary summarizeModelFile(const QString& path, int contextSize);

class ChatEngine : public QObject {
    Q_OBJECT
public:
    // The runner must outlive the engine.
    explicit ChatEngine(JobRunner& jobs, QObject* parent = nullptr);
    // Stops a running reply and waits for the lane to finish it.
    ~ChatEngine() override;

    // Loads the model (replacing the current one) on the worker: modelLoaded or loadFailed.
    void loadModel(const QString& path, const EngineOptions& options = {});
    // Abandons a load in progress (loadCancelled; a model already loaded was dropped by it).
    void cancelLoad();
    // Lets the model (and its image projector) go, freeing their memory: a running reply stops
    // first. modelUnloaded at once; the memory is freed on the LLM lane.
    void unloadModel();
    bool isLoaded() const { return loaded_; }
    bool isBusy() const { return busy_.load(); }
    // "stories260K.gguf (llama, 5 layers, 0.3M parameters)", "qwen3 at http://gpu-box:8000/v1"
    QString modelName() const { return modelName_; }
    QString modelPath() const { return modelPath_; }  // (empty for a server's model)
    // The loaded model's context in tokens (0 before a model is loaded).
    int contextSize() const { return contextSize_; }

    // Replies come from an OpenAI-compatible server (vLLM, llama-server, Ollama, LM Studio,
    // lumen-cli serve) in place of a local model, which is let go: the server is asked for its
    // models first (modelLoaded, or loadFailed with why; a model left unnamed is the server's
    // only one). `seesImages`: the server's model takes images (sent inline as data: URLs).
    // Messages go as they are: the server renders its model's template.
    void connectRemote(const RemoteConfig& config, bool seesImages);
    bool isRemote() const { return remote_; }
    // The server's address and model (the API key too) while isRemote().
    const RemoteConfig& remoteConfig() const { return remoteConfig_; }

    // Serves the loaded model (one on this computer, with its image projector) to other programs
    // through the OpenAI API (OpenAiServer): their requests run on the LLM lane between the
    // chat's own replies, in a context of their own. serverStarted(url) or serverFailed(why).
    // Loading, unloading or replacing the model or its projector stops it (serverStopped).
    struct ServerSettings {
        QString host = QStringLiteral("127.0.0.1");  // another address needs an API key
        int port = 8080;
        QString apiKey;
    };
    void startServer(const ServerSettings& settings);
    void stopServer();
    bool isServing() const { return serving_; }
    QString serverUrl() const { return serverUrl_; }  // "http://127.0.0.1:8080/v1" while serving

    // Loads an image projector (llama.cpp mmproj GGUF) for the loaded LLM: imageProjectorLoaded
    // or loadFailed (also when it does not fit the LLM).
    void loadImageProjector(const QString& path);
    // Whether images reach the model: a local model's projector, or a server's model that sees.
    bool hasImageProjector() const { return projectorLoaded_ || (remote_ && remoteSeesImages_); }
    QString imageProjectorPath() const { return projectorPath_; }

    // An image's bytes by SHA-256, read on the LLM lane (never on the window's thread), and only
    // for images whose rows are not cached; an empty array when the image is gone.
    using ImageSource = std::function<QByteArray(const std::string& sha256)>;

    // Starts a reply to `messages` ([{role, content, images?: [sha256...], reasoning_content?,
    // keep?}], the newest last); `images` reads the images they name. Images reach the model
    // through the image projector (without one they are left out). A prompt that leaves less
    // than a quarter of the context (or params.maxTokens, if less) for the reply is fitted by
    // `policy`: whole user/assistant turns are left out, oldest first, except system messages,
    // those marked "keep" and the newest message; the result's "leftOut" counts them. `think` false asks templates
    // that read enable_thinking (Qwen3) for an answer without reasoning. Returns the reply's id,
    // or 0 when no model is loaded or a reply is running. Signals replyPiece (the answer) and
    // replyReasoning (a reasoning model's thinking, kept apart), then replyFinished.
    int startReply(const nlohmann::ordered_json& messages, const inference::GenerationParams& params,
                   ImageSource images = {}, bool think = true, ContextPolicy policy = ContextPolicy::LeaveOutOldest);
    void stop();
    // The loaded model's template and tokenizer (null before a model is loaded), for previews.
    std::shared_ptr<const PromptRenderer> renderer() const { return renderer_; }

signals:
    void modelLoaded(const QString& name);
    void imageProjectorLoaded(const QString& description);
    void loadFailed(const QString& message);
    // The image projector could not be loaded or does not fit the model (which stays loaded).
    void imageProjectorFailed(const QString& message);
    void loadCancelled();
    void modelUnloaded();
    // What the user should know about a load that worked: "12 of 32 layers fit in the GPU's free
    // memory; the rest run on the CPU", "the image projector runs on the CPU: ...".
    void loadNote(const QString& note);
    void replyPiece(int replyId, const QString& piece);
    void replyReasoning(int replyId, const QString& piece);
    // The exact text a reply's prompt rendered to (before its tokens and any image rows).
    void promptRendered(int replyId, const QString& prompt);
    // result: "status" (complete, stopped, error), "error", "promptTokens", "generatedTokens",
    // "ttftMs", "tokensPerSecond", "reasoningMs" (how long the model thought, when it did),
    // "stopReason", "contextSize", "leftOut" (messages left out to fit the context)
    void replyFinished(int replyId, const QVariantMap& result);
    void serverStarted(const QString& url);
    void serverStopped();
    void serverFailed(const QString& message);

private:
    // The server stops before what it serves changes (on this thread at once; joined on the lane).
    void stopServing();
    struct State;
    void remoteReply(const RemoteClient& client, int id, const nlohmann::ordered_json& messages, const inference::GenerationParams& params,
                     const ImageSource& images, bool think, QVariantMap& result);
    JobRunner& jobs_;
    std::shared_ptr<State> state_;   // touched only on the LLM lane
    std::atomic<bool> cancel_{false};
    std::atomic<bool> busy_{false};
    std::atomic<bool> cancelLoad_{false};
    bool loaded_ = false;
    bool projectorLoaded_ = false;
    bool remote_ = false, remoteSeesImages_ = false;
    RemoteConfig remoteConfig_;
    bool serving_ = false;
    QString serverUrl_;
    quint64 serverStarts_ = 0;
    std::weak_ptr<class OpenAiServer> serverHandle_;  // (its stop() is safe from any thread; owned by the lane)
    QString modelName_, modelPath_, projectorPath_;
    int contextSize_ = 0;
    int nextReply_ = 1;
    std::shared_ptr<const PromptRenderer> renderer_;
};

}  // namespace lumen::app
