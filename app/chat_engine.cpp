#include "app/chat_engine.h"

#include <QFileInfo>
#include <QMetaObject>

#include "app/logging.h"
#include "inference/core/backend.h"
#include "inference/llm/chat_template.h"
#include "inference/llm/llama_model.h"
#include "inference/llm/tokenizer.h"

namespace lumen::app {

struct ChatEngine::State {
    std::unique_ptr<inference::Backend> backend;
    std::shared_ptr<const inference::GgufFile> file;
    std::shared_ptr<inference::LlamaModel> model;
    std::optional<inference::Tokenizer> tokenizer;
    std::optional<inference::ChatTemplate> chatTemplate;
    std::unique_ptr<inference::LlamaSession> session;
    std::unique_ptr<inference::Generator> generator;

    // Users before what they use: the generator, the session, the model, the backend last.
    void reset() {
        generator.reset();
        session.reset();
        chatTemplate.reset();
        tokenizer.reset();
        model.reset();
        file.reset();
        backend.reset();
    }
};

ChatEngine::ChatEngine(QObject* parent) : QObject(parent), worker_(new QObject), state_(std::make_shared<State>()) {
    thread_.setObjectName(QStringLiteral("lumen-engine"));
    worker_->moveToThread(&thread_);
    connect(&thread_, &QThread::finished, worker_, &QObject::deleteLater);
    thread_.start();
}

ChatEngine::~ChatEngine() {
    cancel_.store(true);
    // The worker drops the model on its own thread, then stops.
    QMetaObject::invokeMethod(worker_, [state = state_] { state->reset(); });
    thread_.quit();
    thread_.wait();
}

void ChatEngine::loadModel(const QString& path, const EngineOptions& options) {
    cancel_.store(true);  // a running reply ends first (queued calls run in order)
    loaded_ = false;
    QMetaObject::invokeMethod(worker_, [this, path, options, state = state_] {
        try {
            state->reset();
            state->file = std::make_shared<const inference::GgufFile>(inference::GgufFile::open(path.toStdString()));
            state->model = inference::LlamaModel::load(state->file);
            state->tokenizer.emplace(inference::Tokenizer::fromGguf(*state->file));
            state->chatTemplate = inference::ChatTemplate::fromGguf(*state->file);
            if (!state->chatTemplate) state->chatTemplate = inference::ChatTemplate::builtin("chatml");
            const auto& c = state->model->config();
            const std::int64_t context = std::min<std::int64_t>(options.contextSize > 0 ? options.contextSize : 4096, c.contextLength);
            state->backend = inference::makeCpuBackend({.threads = options.threads});
            state->session = std::make_unique<inference::LlamaSession>(state->model, *state->backend, context);
            state->generator = std::make_unique<inference::Generator>(*state->session, *state->tokenizer);
            std::int64_t params = 0;
            for (const auto& t : state->file->tensors()) params += t.elements;
            const QString name = QStringLiteral("%1 (%2, %3 layers, %4M parameters)")
                                     .arg(QFileInfo(path).fileName(), QString::fromStdString(c.architecture))
                                     .arg(c.nLayers)
                                     .arg(static_cast<double>(params) / 1e6, 0, 'f', 1);
            QMetaObject::invokeMethod(this, [this, name, path] {
                loaded_ = true;
                modelName_ = name;
                modelPath_ = path;
                emit modelLoaded(name);
            });
        } catch (const std::exception& e) {
            state->reset();
            const QString message = tr("%1 could not be loaded: %2").arg(QFileInfo(path).fileName(), QString::fromUtf8(e.what()));
            qCWarning(lcApp) << message;
            QMetaObject::invokeMethod(this, [this, message] {
                loaded_ = false;
                emit loadFailed(message);
            });
        }
    });
}

int ChatEngine::startReply(const nlohmann::ordered_json& messages, const inference::GenerationParams& params) {
    if (!loaded_ || busy_.load()) return 0;
    const int id = nextReply_++;
    busy_.store(true);
    cancel_.store(false);
    QMetaObject::invokeMethod(worker_, [this, id, messages, params, state = state_] {
        QVariantMap result;
        try {
            if (!state->generator) throw std::runtime_error("no model is loaded");
            const auto& vocab = state->tokenizer->vocabulary();
            const std::string prompt = state->chatTemplate->apply(messages, true, &vocab);
            const std::string bos = vocab.bos ? vocab.tokens[static_cast<std::size_t>(*vocab.bos)] : std::string();
            const bool templateHasBos = !bos.empty() && prompt.rfind(bos, 0) == 0;
            const auto tokens = state->tokenizer->encode(prompt, !templateHasBos, true);
            const auto r = state->generator->generate(tokens, params, [this, id](std::string_view piece) {
                emit replyPiece(id, QString::fromUtf8(piece.data(), static_cast<qsizetype>(piece.size())));
                return true;
            }, &cancel_);
            result["status"] = r.stopReason == inference::StopReason::Cancelled ? QStringLiteral("stopped") : QStringLiteral("complete");
            result["promptTokens"] = r.promptTokens;
            result["generatedTokens"] = static_cast<int>(r.tokens.size());
            result["ttftMs"] = r.ttftMs;
            result["tokensPerSecond"] = r.decodeTokensPerSecond;
            result["stopReason"] = QString::fromLatin1(inference::toString(r.stopReason).data());
        } catch (const std::exception& e) {
            result["status"] = QStringLiteral("error");
            result["error"] = QString::fromUtf8(e.what());
        }
        busy_.store(false);
        emit replyFinished(id, result);
    });
    return id;
}

void ChatEngine::stop() { cancel_.store(true); }

}  // namespace lumen::app
