#pragma once
// The application service behind a chat: takes what the user sends, stores it, and runs the
// reply on the chat engine, streaming it into the store and to the UI. The UI and lumen-cli both
// talk to it.

#include <QObject>
#include <QString>
#include <QTimer>
#include <functional>
#include <memory>
#include <vector>

#include "app/chat_engine.h"
#include "app/prompt_builder.h"
#include "app/library.h"
#include "app/downloader.h"
#include "app/secrets.h"
#include "storage/streaming_writer.h"

namespace lumen::app {

class Assistant : public QObject {
    Q_OBJECT
public:
    // `jobs` (whose LLM lane the engine runs on) must outlive the assistant.
    Assistant(Library& library, JobRunner& jobs, QObject* parent = nullptr);
    // A reply still running is stopped and kept, marked stopped.
    ~Assistant() override;

    // Stores the user's message in the chat (creating a chat titled after the message when
    // chatId is 0) and returns the chat id, or 0 when nothing was stored (empty text, error).
    // With a model loaded, the reply starts.
    // `images`: SHA-256s already in the image store, attached to the message.
    // `templateId` >= 0 sets the chat's prompt template first (0: none; -1 keeps the chat's).
    std::int64_t submitUserMessage(std::int64_t chatId, const QString& text, const std::vector<std::string>& images = {},
                                   std::int64_t templateId = -1);
    // Replaces the chat's last reply with a new one (the messages after the last user message
    // are removed). False when there is nothing to regenerate or a reply is running.
    bool regenerate(std::int64_t chatId);
    // Stops the running reply; it is kept, marked stopped.
    void stop();
    bool isReplying() const { return writer_ != nullptr; }
    std::int64_t replyingChat() const { return replyChat_; }

    ChatEngine& engine() { return *engine_; }
    // Loads an LLM GGUF on the engine's thread and remembers it for the next start and in the
    // recent models.
    void loadModel(const QString& path);
    // Lets the model go (the next start opens none).
    void unloadModel();

    // Replies from an OpenAI-compatible server (ChatEngine::connectRemote). Once connected the
    // server is remembered (its address, model and whether it sees images in the settings) and
    // used at the next start in place of a local model. `rememberKey`: the key given is what
    // the keychain keeps for that address (an empty one removes it); false when the key came
    // from the keychain.
    void connectRemote(const RemoteConfig& config, bool seesImages, bool rememberKey = true);
    struct RemoteChoice {
        RemoteConfig config;  // (without the key: rememberedApiKey reads it)
        bool seesImages = false;
    };
    // The server used last, when the last model was one.
    std::optional<RemoteChoice> rememberedRemote();
    // The API key kept for a server's address (`done` gets "" when there is none).
    void rememberedApiKey(const QUrl& baseUrl, std::function<void(const QString&)> done);
    // The models a server offers, asked off the window's thread: `done(models, error)` on this
    // object's thread.
    void listRemoteModels(const RemoteConfig& config, std::function<void(const QStringList& models, const QString& error)> done);
    SecretStore& secrets() { return secrets_; }

    // The local server (Settings): the loaded model served to other programs through the OpenAI
    // API whenever one on this computer is loaded (ChatEngine::startServer). `everyone`: on all
    // addresses, which needs the API key (kept in the keychain); else the loopback only.
    struct ServerChoice {
        bool enabled = false;
        int port = 8080;  // 0: any free port
        bool everyone = false;
    };
    ServerChoice serverChoice();
    // Stores the choice (and the key, "" for none) and starts, restarts or stops the server.
    void setServerChoice(const ServerChoice& choice, const QString& apiKey);
    QString serverApiKey() const { return serverKey_; }

    // The Hugging Face Hub (Settings): its address (empty: huggingface.co) and an access token
    // for gated models, kept in the system keychain (read at the start only when one was kept).
    // HF_ENDPOINT and HF_TOKEN override both, as huggingface_hub does.
    HubConfig hubConfigNow();
    QString hubEndpointSetting();
    QString hubToken() const { return hubToken_; }
    void setHub(const QString& endpoint, const QString& token);
    static constexpr const char* kHubEndpointKey = "hub.endpoint";
    static constexpr const char* kHubTokenKeptKey = "hub.token_kept";
    static constexpr const char* kServerKey = "server.local";  // {"enabled", "port", "everyone"}
    static constexpr const char* kRemoteKey = "model.remote";  // {"url", "model", "images"}
    // The models loaded lately, the newest first (at most kRecentModels; files since gone too).
    QStringList recentModels();
    // The language models downloaded into the models folder beside the library (lumen-cli pull,
    // the app's downloads): GGUFs other than image projectors and later parts, newest first.
    QStringList downloadedModels();
    static constexpr int kRecentModels = 8;
    static constexpr const char* kRecentModelsKey = "model.llm.recent";
    inference::GenerationParams& generationParams() { return params_; }
    const EngineOptions& engineOptions() const { return engineOptions_; }
    // Stores sampling and engine settings (they survive restarts) and uses them from now on.
    void saveSettings(const inference::GenerationParams& params, const EngineOptions& engine);
    static inference::GenerationParams defaultParams();
    // The sampling seed that means "a new one for each reply" (the default, so Regenerate gives
    // another reply); any other seed is used as it is (stored as -1 in the settings).
    static constexpr std::uint64_t kFreshSeed = ~std::uint64_t{0};
    // A chat's own sampling settings over the general ones (what its replies use).
    inference::GenerationParams paramsFor(std::int64_t chatId);
    void saveChatParams(std::int64_t chatId, const inference::GenerationParams& params);
    void clearChatParams(std::int64_t chatId);  // back to the general settings
    bool chatHasOwnParams(std::int64_t chatId);

    // The prompt template a chat uses (0: none): its system prompt and few-shot examples go before
    // the chat's messages at every reply.
    std::int64_t chatTemplate(std::int64_t chatId);
    void setChatTemplate(std::int64_t chatId, std::int64_t templateId);
    std::optional<TemplateSpec> templateSpec(std::int64_t templateId);
    // Whether a reasoning model thinks before answering in this chat (on unless switched off):
    // templates that read enable_thinking (Qwen3) get it.
    bool chatThinks(std::int64_t chatId);
    void setChatThinks(std::int64_t chatId, bool think);
    // The system prompt a chat's replies get when its template brings none: the chat's own when it
    // has one, else the general default (Settings); empty for none. chatId 0: the default itself.
    QString systemPrompt(std::int64_t chatId);
    QString ownSystemPrompt(std::int64_t chatId);  // the chat's own only (empty: none)
    // Sets the default (chatId 0) or a chat's own; a chat's empty text means "use the default".
    void setSystemPrompt(std::int64_t chatId, const QString& text);
    static constexpr const char* kSystemPromptKey = "chat.system_prompt";

    // The conversation a reply in the chat would get (template parts first).
    nlohmann::ordered_json conversationFor(std::int64_t chatId);
    // How much of the model's context the chat takes: its last reply's prompt and generated
    // tokens, against the loaded model's context. used 0 when no reply tells; limit 0 without a model.
    struct ContextUse {
        std::int64_t used = 0, limit = 0;
    };
    ContextUse contextUse(std::int64_t chatId);

    // A chat title from the first line of a message: trimmed, at most `maxLength` characters.
    static QString titleFromMessage(const QString& text, int maxLength = 48);

    static constexpr const char* kModelPathKey = "model.llm.path";

signals:
    void chatCreated(qint64 chatId);
    void messageStored(qint64 chatId, qint64 messageId);
    void errorOccurred(const QString& message);
    void replyStarted(qint64 chatId, qint64 messageId);
    void replyPiece(qint64 chatId, qint64 messageId, const QString& piece);
    // A piece of a reasoning model's thinking, stored apart from the answer.
    void replyReasoning(qint64 chatId, qint64 messageId, const QString& piece);
    void replyFinished(qint64 chatId, qint64 messageId);
    void modelLoaded(const QString& name);
    // A reply could not be saved (a full disk): once when it starts failing, and again when
    // the text kept in memory is saved after all (saved true).
    void replySaving(qint64 chatId, qint64 messageId, bool saved, const QString& message);
    // Something the user should know about a reply that is not an error: earlier messages left
    // out to fit the context, a reply cut at the context's end.
    void notice(qint64 chatId, const QString& message);

private:
    static QString apiKeyName(const QUrl& baseUrl);
    // Keeps `value` in the keychain under `name` (an empty one removes it); `what` names it in
    // the notice when it can be kept only in memory.
    void keepSecret(const QString& name, const QString& value, const QString& what);
    SecretStore secrets_;
    void applyServerChoice();  // starts the server as chosen when a local model is loaded
    QString serverKey_;
    QString hubToken_;
    bool serverKeyRead_ = false;  // (read from the keychain at the start)
    // The key to keep for an address once a server there answers (set by connectRemote).
    std::optional<std::pair<QUrl, QString>> keyToRemember_;
    bool startReply(std::int64_t chatId);
    void finishReply(int replyId, const QVariantMap& result);

    Library& library_;
    std::unique_ptr<ChatEngine> engine_;
    JobRunner& jobs_;
    void loadSettings();
    // Reads sampling settings stored under `prefix` ("generation." or "chat.7.generation.") over `base`.
    // The general generation settings (chatId 0) or a chat's own, over `base`.
    inference::GenerationParams readParams(std::int64_t chatId, inference::GenerationParams base);
    void writeParams(std::int64_t chatId, const inference::GenerationParams& params);
    inference::GenerationParams params_;
    EngineOptions engineOptions_;
    std::unique_ptr<storage::StreamingMessageWriter> writer_;
    std::string closingModel_;  // the model's name while the Assistant goes (a stopped reply's metrics)
    std::int64_t replyChat_ = 0;
    int replyId_ = 0;
    bool writeFailing_ = false;  // the current reply's writes fail; the user has been told once
    // Writes through the reply's writer (append, reasoning, finish): the first failure is
    // announced, a success after failures too.
    void storeReply(const std::function<void()>& write);
    // Replies whose last write failed, kept with their final status until a retry stores them.
    struct Unsaved {
        std::unique_ptr<storage::StreamingMessageWriter> writer;
        std::int64_t chatId;
        storage::MessageStatus status;
        storage::GenerationMetrics metrics;
        std::optional<std::string> error;
    };
    std::vector<Unsaved> unsaved_;
    QTimer* retryTimer_ = nullptr;
    void retryUnsaved();
};

}  // namespace lumen::app
