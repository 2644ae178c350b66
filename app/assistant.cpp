#include "app/assistant.h"

#include "app/logging.h"

namespace lumen::app {

Assistant::Assistant(Library& library, QObject* parent) : QObject(parent), library_(library), engine_(std::make_unique<ChatEngine>()) {
    loadSettings();
    connect(engine_.get(), &ChatEngine::replyPiece, this, [this](int id, const QString& piece) {
        if (id != replyId_ || !writer_) return;
        const std::string text = piece.toStdString();
        try {
            writer_->append(text);
        } catch (const storage::Error& e) {
            qCWarning(lcApp) << "storing a reply failed:" << e.what();
        }
        emit replyPiece(replyChat_, writer_->messageId(), piece);
    });
    connect(engine_.get(), &ChatEngine::replyFinished, this, &Assistant::finishReply);
    connect(engine_.get(), &ChatEngine::modelLoaded, this, [this](const QString& name) {
        try {
            library_.settings().set(kModelPathKey, engine_->modelPath().toStdString());
        } catch (const storage::Error& e) {
            qCWarning(lcApp) << "remembering the model failed:" << e.what();
        }
        emit modelLoaded(name);
    });
    connect(engine_.get(), &ChatEngine::loadFailed, this, &Assistant::errorOccurred);
}

Assistant::~Assistant() {
    if (writer_) {
        engine_->stop();
        try {
            writer_->finish(storage::MessageStatus::Stopped, {});
        } catch (const storage::Error&) {
            // The next start repairs replies left partial.
        }
    }
    engine_.reset();  // joins the engine's thread
}

QString Assistant::titleFromMessage(const QString& text, int maxLength) {
    QString line = text.trimmed().section(QLatin1Char('\n'), 0, 0).simplified();
    if (line.isEmpty()) return tr("New chat");
    if (line.size() > maxLength) {
        line.truncate(maxLength - 1);
        const int space = line.lastIndexOf(QLatin1Char(' '));
        if (space > maxLength / 2) line.truncate(space);
        line = line.trimmed() + QStringLiteral("…");
    }
    return line;
}

void Assistant::loadModel(const QString& path) { engine_->loadModel(path, engineOptions_); }

inference::GenerationParams Assistant::defaultParams() {
    inference::GenerationParams p;
    p.maxTokens = 1024;
    return p;
}

void Assistant::loadSettings() {
    params_ = defaultParams();
    const auto number = [this](const char* key, double fallback) {
        try {
            if (const auto v = library_.settings().get(key)) {
                bool ok = false;
                const double d = QString::fromStdString(*v).toDouble(&ok);
                if (ok) return d;
            }
        } catch (const storage::Error& e) {
            qCWarning(lcApp) << "reading a setting failed:" << e.what();
        }
        return fallback;
    };
    params_.sampling.temperature = static_cast<float>(number("generation.temperature", params_.sampling.temperature));
    params_.sampling.topK = static_cast<int>(number("generation.top_k", params_.sampling.topK));
    params_.sampling.topP = static_cast<float>(number("generation.top_p", params_.sampling.topP));
    params_.sampling.minP = static_cast<float>(number("generation.min_p", params_.sampling.minP));
    params_.sampling.repeatPenalty = static_cast<float>(number("generation.repeat_penalty", params_.sampling.repeatPenalty));
    params_.sampling.seed = static_cast<std::uint64_t>(number("generation.seed", 0));
    params_.maxTokens = static_cast<int>(number("generation.max_tokens", params_.maxTokens));
    engineOptions_.threads = static_cast<int>(number("engine.threads", 0));
    engineOptions_.contextSize = static_cast<int>(number("engine.context", 4096));
}

void Assistant::saveSettings(const inference::GenerationParams& params, const EngineOptions& engine) {
    params_ = params;
    engineOptions_ = engine;
    const auto put = [this](const char* key, double v) { library_.settings().set(key, QString::number(v, 'g', 10).toStdString()); };
    try {
        put("generation.temperature", params.sampling.temperature);
        put("generation.top_k", params.sampling.topK);
        put("generation.top_p", params.sampling.topP);
        put("generation.min_p", params.sampling.minP);
        put("generation.repeat_penalty", params.sampling.repeatPenalty);
        put("generation.seed", static_cast<double>(params.sampling.seed));
        put("generation.max_tokens", params.maxTokens);
        put("engine.threads", engine.threads);
        put("engine.context", engine.contextSize);
    } catch (const storage::Error& e) {
        emit errorOccurred(QString::fromUtf8(e.what()));
    }
}

std::int64_t Assistant::submitUserMessage(std::int64_t chatId, const QString& text, const std::vector<std::string>& images, std::int64_t templateId) {
    if (text.trimmed().isEmpty() && images.empty()) return 0;
    if (writer_) {
        emit errorOccurred(tr("A reply is still being written; stop it first."));
        return 0;
    }
    try {
        if (chatId == 0) {
            chatId = library_.chats().createChat((text.trimmed().isEmpty() ? tr("Image") : titleFromMessage(text)).toStdString()).id;
            emit chatCreated(chatId);
        }
        if (templateId >= 0) setChatTemplate(chatId, templateId);
        storage::NewMessage message;
        message.role = storage::Role::User;
        message.content = text.toStdString();
        message.images = images;
        const std::int64_t messageId = library_.chats().addMessage(chatId, message);
        emit messageStored(chatId, messageId);
        if (engine_->isLoaded()) startReply(chatId);
        return chatId;
    } catch (const storage::Error& e) {
        qCWarning(lcApp) << "storing a message failed:" << e.what();
        emit errorOccurred(QString::fromUtf8(e.what()));
        return 0;
    }
}

bool Assistant::regenerate(std::int64_t chatId) {
    if (writer_ || !engine_->isLoaded() || chatId == 0) return false;
    try {
        const auto messages = library_.chats().messages(chatId);
        auto lastUser = std::find_if(messages.rbegin(), messages.rend(), [](const storage::Message& m) { return m.role == storage::Role::User; });
        if (lastUser == messages.rend()) return false;
        const auto next = lastUser.base();  // the first message after the last user message
        if (next != messages.end()) library_.chats().truncateFrom(next->id);
        return startReply(chatId);
    } catch (const storage::Error& e) {
        emit errorOccurred(QString::fromUtf8(e.what()));
        return false;
    }
}

bool Assistant::startReply(std::int64_t chatId) {
    const nlohmann::ordered_json conversation = conversationFor(chatId);
    std::map<std::string, QByteArray> images;
    for (const auto& m : conversation)
        if (m.contains("images"))
            for (const auto& sha : m["images"])
                if (const auto bytes = library_.images().bytes(sha.get<std::string>()))
                    images[sha.get<std::string>()] = QByteArray(reinterpret_cast<const char*>(bytes->data()), static_cast<qsizetype>(bytes->size()));
    writer_ = std::make_unique<storage::StreamingMessageWriter>(library_.chats(), chatId, engine_->modelName().toStdString(),
                                                                std::chrono::milliseconds(250));
    replyChat_ = chatId;
    replyId_ = engine_->startReply(conversation, params_, images);
    if (replyId_ == 0) {
        writer_->finish(storage::MessageStatus::Error, {}, "the model is busy or not loaded");
        writer_.reset();
        return false;
    }
    emit replyStarted(chatId, writer_->messageId());
    return true;
}

void Assistant::stop() {
    if (writer_) engine_->stop();
}

void Assistant::finishReply(int replyId, const QVariantMap& result) {
    if (replyId != replyId_ || !writer_) return;
    storage::GenerationMetrics metrics;
    metrics.model = engine_->modelName().toStdString();
    if (result.contains("promptTokens")) metrics.promptTokens = result["promptTokens"].toLongLong();
    if (result.contains("generatedTokens")) metrics.generatedTokens = result["generatedTokens"].toLongLong();
    if (result.contains("ttftMs")) metrics.ttftMs = result["ttftMs"].toDouble();
    if (result.contains("tokensPerSecond")) metrics.tokensPerSecond = result["tokensPerSecond"].toDouble();
    const QString status = result["status"].toString();
    const std::int64_t chatId = replyChat_, messageId = writer_->messageId();
    try {
        if (status == QLatin1String("error")) {
            writer_->finish(storage::MessageStatus::Error, metrics, result["error"].toString().toStdString());
            emit errorOccurred(tr("The reply failed: %1").arg(result["error"].toString()));
        } else {
            writer_->finish(status == QLatin1String("stopped") ? storage::MessageStatus::Stopped : storage::MessageStatus::Complete, metrics);
        }
    } catch (const storage::Error& e) {
        emit errorOccurred(QString::fromUtf8(e.what()));
    }
    writer_.reset();
    replyChat_ = 0;
    emit replyFinished(chatId, messageId);
}

nlohmann::ordered_json Assistant::conversationFor(std::int64_t chatId) {
    nlohmann::ordered_json history = nlohmann::ordered_json::array();
    for (const auto& m : library_.chats().messages(chatId)) {
        if (m.status == storage::MessageStatus::Error) continue;
        nlohmann::ordered_json message{{"role", std::string(storage::toString(m.role))}, {"content", m.content}};
        if (!m.images.empty() && engine_->hasImageProjector()) message["images"] = m.images;
        history.push_back(message);
    }
    const std::int64_t templateId = chatTemplate(chatId);
    return buildConversation(templateId ? templateSpec(templateId) : std::nullopt, history);
}

std::int64_t Assistant::chatTemplate(std::int64_t chatId) {
    try {
        if (const auto v = library_.settings().get("chat." + std::to_string(chatId) + ".template")) {
            const std::int64_t id = QString::fromStdString(*v).toLongLong();
            if (id > 0 && library_.templates().get(id)) return id;
        }
    } catch (const storage::Error& e) {
        qCWarning(lcApp) << "reading the chat's template failed:" << e.what();
    }
    return 0;
}

void Assistant::setChatTemplate(std::int64_t chatId, std::int64_t templateId) {
    try {
        library_.settings().set("chat." + std::to_string(chatId) + ".template", std::to_string(templateId));
    } catch (const storage::Error& e) {
        emit errorOccurred(QString::fromUtf8(e.what()));
    }
}

std::optional<TemplateSpec> Assistant::templateSpec(std::int64_t templateId) {
    try {
        const auto t = library_.templates().get(templateId);
        if (!t) return std::nullopt;
        TemplateSpec spec{t->systemPrompt, t->body, {}};
        for (const auto& e : library_.templates().examples(templateId)) spec.examples.emplace_back(e.input, e.output);
        return spec;
    } catch (const storage::Error& e) {
        emit errorOccurred(QString::fromUtf8(e.what()));
        return std::nullopt;
    }
}

}  // namespace lumen::app
