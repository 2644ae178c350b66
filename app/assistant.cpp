#include "app/assistant.h"

#include <QPointer>

#include <QCoreApplication>
#include <QDirIterator>
#include <QRegularExpression>
#include <QSignalBlocker>

#include <random>

#include "app/app_paths.h"
#include "app/logging.h"

namespace lumen::app {

Assistant::Assistant(Library& library, JobRunner& jobs, QObject* parent)
    : QObject(parent), library_(library), engine_(std::make_unique<ChatEngine>(jobs)), jobs_(jobs) {
    loadSettings();
    connect(engine_.get(), &ChatEngine::replyPiece, this, [this](int id, const QString& piece) {
        if (id != replyId_ || !writer_) return;
        const std::string text = piece.toStdString();
        storeReply([&] { writer_->append(text); });
        emit replyPiece(replyChat_, writer_->messageId(), piece);
    });
    connect(engine_.get(), &ChatEngine::replyReasoning, this, [this](int id, const QString& piece) {
        if (id != replyId_ || !writer_) return;
        storeReply([&] { writer_->appendReasoning(piece.toStdString()); });
        emit replyReasoning(replyChat_, writer_->messageId(), piece);
    });
    retryTimer_ = new QTimer(this);
    retryTimer_->setInterval(5000);
    connect(retryTimer_, &QTimer::timeout, this, &Assistant::retryUnsaved);
    connect(engine_.get(), &ChatEngine::replyFinished, this, &Assistant::finishReply);
    connect(engine_.get(), &ChatEngine::modelLoaded, this, [this](const QString& name) {
        if (engine_->isRemote()) {  // the server is what the next start uses
            const RemoteConfig& c = engine_->remoteConfig();
            try {
                const nlohmann::json remote{{"url", c.baseUrl.toString(QUrl::RemoveUserInfo).toStdString()},
                                            {"model", c.model.toStdString()},
                                            {"images", engine_->hasImageProjector()}};
                library_.settings().set(kRemoteKey, remote.dump());
                library_.settings().remove(kModelPathKey);
            } catch (const storage::Error& e) {
                qCWarning(lcApp) << "remembering the server failed:" << e.what();
            }
            // The key the user gave for this address (not one read from the keychain, which may
            // have failed to read: that never removes what is kept).
            if (keyToRemember_ && keyToRemember_->first == c.baseUrl) {
                keepSecret(apiKeyName(c.baseUrl), keyToRemember_->second, tr("The API key"));
                keyToRemember_.reset();
            }
            emit modelLoaded(name);
            return;
        }
        try {
            library_.settings().remove(kRemoteKey);
            library_.settings().set(kModelPathKey, engine_->modelPath().toStdString());
            QStringList recent = recentModels();
            recent.removeAll(engine_->modelPath());
            recent.prepend(engine_->modelPath());
            nlohmann::json list = nlohmann::json::array();
            for (const QString& p : recent.mid(0, kRecentModels)) list.push_back(p.toStdString());
            library_.settings().set(kRecentModelsKey, list.dump());
        } catch (const storage::Error& e) {
            qCWarning(lcApp) << "remembering the model failed:" << e.what();
        }
        emit modelLoaded(name);
    });
    connect(engine_.get(), &ChatEngine::loadFailed, this, &Assistant::errorOccurred);
    // The local server follows the model: started when one loads here (and again with its projector).
    connect(engine_.get(), &ChatEngine::modelLoaded, this, &Assistant::applyServerChoice);
    connect(engine_.get(), &ChatEngine::imageProjectorLoaded, this, &Assistant::applyServerChoice);
    // (a load or connection that failed or was cancelled stopped it too, and the model stays)
    connect(engine_.get(), &ChatEngine::loadFailed, this, &Assistant::applyServerChoice);
    connect(engine_.get(), &ChatEngine::loadCancelled, this, &Assistant::applyServerChoice);
    connect(engine_.get(), &ChatEngine::imageProjectorFailed, this, &Assistant::applyServerChoice);
    connect(engine_.get(), &ChatEngine::serverFailed, this, &Assistant::errorOccurred);
    // The Hub's token, when one was kept (no keychain prompt for anyone else).
    try {
        if (library_.settings().get(kHubTokenKeptKey).value_or("") == "1")
            secrets_.read(QStringLiteral("hub-token"), [this](const QString& token) {
                if (hubToken_.isEmpty()) hubToken_ = token;
            });
    } catch (const storage::Error& e) {
        qCWarning(lcApp) << "reading the Hub settings failed:" << e.what();
    }
    // (the keychain is asked only when the server is on: no unlock prompt for anyone else)
    if (serverChoice().enabled) {
        secrets_.read(QStringLiteral("server-api-key"), [this](const QString& key) {
            serverKey_ = key;
            serverKeyRead_ = true;
            applyServerChoice();
        });
    } else {
        serverKeyRead_ = true;
    }
}

Assistant::~Assistant() {
    closingModel_ = engine_->modelName().toStdString();
    if (writer_) {
        // A reply under way stops, and its result (with its speed figures) is posted here as the
        // engine's thread ends: taken at once, it is stored as a stopped reply always is.
        // (silently: the window that listens may be half gone)
        engine_->stop();
        engine_.reset();  // joins the engine's thread
        const QSignalBlocker quiet(this);
        QCoreApplication::sendPostedEvents(this, QEvent::MetaCall);
    }
    if (writer_) {  // (no result came)
        try {
            writer_->finish(storage::MessageStatus::Stopped, {});
        } catch (const storage::Error&) {
            // The next start repairs replies left partial.
        }
    }
    retryUnsaved();  // a last try for replies a full disk held back
    for (const Unsaved& u : unsaved_)
        qCWarning(lcStorage) << "a reply could not be saved before closing:" << u.writer->text().size() << "bytes of text lost";
    engine_.reset();  // joins the engine's thread
}

void Assistant::storeReply(const std::function<void()>& write) {
    try {
        write();
        if (writeFailing_ && !writer_->hasUnsaved()) {
            writeFailing_ = false;
            emit replySaving(replyChat_, writer_->messageId(), true, tr("The reply is saved again."));
        }
    } catch (const storage::Error& e) {
        if (writeFailing_) return;  // told once; the writer retries each second
        writeFailing_ = true;
        qCWarning(lcStorage) << "storing a reply failed:" << e.what();
        emit replySaving(replyChat_, writer_->messageId(), false,
                         tr("The reply cannot be saved (%1). It is kept in memory and saving is retried; free some disk space.")
                             .arg(QString::fromUtf8(e.what())));
    }
}

void Assistant::retryUnsaved() {
    for (auto it = unsaved_.begin(); it != unsaved_.end();) {
        try {
            it->writer->finish(it->status, it->metrics, it->error);
            emit replySaving(it->chatId, it->writer->messageId(), true, tr("The reply is saved."));
            emit messageStored(it->chatId, it->writer->messageId());
            it = unsaved_.erase(it);
        } catch (const storage::Error&) {
            ++it;
        }
    }
    if (unsaved_.empty()) retryTimer_->stop();
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

void Assistant::unloadModel() {
    stop();
    engine_->unloadModel();
    try {
        library_.settings().remove(kModelPathKey);
        library_.settings().remove(kRemoteKey);
    } catch (const storage::Error& e) {
        qCWarning(lcApp) << "forgetting the model failed:" << e.what();
    }
}

QString Assistant::hubEndpointSetting() {
    try {
        return QString::fromStdString(library_.settings().get(kHubEndpointKey).value_or(""));
    } catch (const storage::Error&) {
        return {};
    }
}

HubConfig Assistant::hubConfigNow() { return hubConfig(hubEndpointSetting(), hubToken_); }

void Assistant::setHub(const QString& endpoint, const QString& token) {
    try {
        if (endpoint.trimmed().isEmpty()) library_.settings().remove(kHubEndpointKey);
        else library_.settings().set(kHubEndpointKey, endpoint.trimmed().toStdString());
        library_.settings().set(kHubTokenKeptKey, token.isEmpty() ? "0" : "1");
    } catch (const storage::Error& e) {
        emit errorOccurred(tr("The Hub settings could not be saved: %1").arg(QString::fromUtf8(e.what())));
    }
    if (token == hubToken_) return;
    hubToken_ = token;
    keepSecret(QStringLiteral("hub-token"), token, tr("The Hub token"));
}

void Assistant::keepSecret(const QString& name, const QString& value, const QString& what) {
    if (value.isEmpty()) {
        secrets_.remove(name);
        return;
    }
    secrets_.write(name, value, [this, what](bool kept, const QString& note) {
        if (!kept) emit notice(0, tr("%1 is not in a keychain: %2").arg(what, note));
    });
}

Assistant::ServerChoice Assistant::serverChoice() {
    ServerChoice c;
    try {
        if (const auto text = library_.settings().get(kServerKey)) {
            const auto j = nlohmann::json::parse(*text, nullptr, false);
            if (j.is_object()) {
                if (j.contains("enabled") && j["enabled"].is_boolean()) c.enabled = j["enabled"].get<bool>();
                if (j.contains("port") && j["port"].is_number_integer() && j["port"].get<int>() >= 0 && j["port"].get<int>() <= 65535) c.port = j["port"].get<int>();
                if (j.contains("everyone") && j["everyone"].is_boolean()) c.everyone = j["everyone"].get<bool>();
            }
        }
    } catch (const storage::Error& e) {
        qCWarning(lcApp) << "reading the server settings failed:" << e.what();
    }
    return c;
}

void Assistant::setServerChoice(const ServerChoice& choice, const QString& apiKey) {
    try {
        library_.settings().set(kServerKey, nlohmann::json{{"enabled", choice.enabled}, {"port", choice.port}, {"everyone", choice.everyone}}.dump());
    } catch (const storage::Error& e) {
        emit errorOccurred(tr("The server settings could not be saved: %1").arg(QString::fromUtf8(e.what())));
    }
    if (apiKey != serverKey_) {
        serverKey_ = apiKey;
        keepSecret(QStringLiteral("server-api-key"), apiKey, tr("The server's API key"));
    }
    serverKeyRead_ = true;
    engine_->stopServer();  // (started again as now chosen)
    applyServerChoice();
}

void Assistant::applyServerChoice() {
    const ServerChoice c = serverChoice();
    if (!c.enabled || !serverKeyRead_ || !engine_->isLoaded() || engine_->isRemote() || engine_->isServing()) return;
    if (c.everyone && serverKey_.isEmpty()) {
        emit errorOccurred(tr("The local server is not started: letting other computers in needs an API key (Settings)."));
        return;
    }
    ChatEngine::ServerSettings s;
    s.host = c.everyone ? QStringLiteral("0.0.0.0") : QStringLiteral("127.0.0.1");
    s.port = c.port;
    s.apiKey = serverKey_;
    engine_->startServer(s);
}

QString Assistant::apiKeyName(const QUrl& baseUrl) { return QStringLiteral("api-key:") + baseUrl.toString(QUrl::RemoveUserInfo); }

void Assistant::connectRemote(const RemoteConfig& config, bool seesImages, bool rememberKey) {
    stop();
    if (rememberKey) {
        if (const auto url = normalizeBaseUrl(config.baseUrl.toString())) keyToRemember_.emplace(*url, config.apiKey);
    }
    engine_->connectRemote(config, seesImages);
}

std::optional<Assistant::RemoteChoice> Assistant::rememberedRemote() {
    try {
        const auto text = library_.settings().get(kRemoteKey);
        if (!text) return std::nullopt;
        const auto j = nlohmann::json::parse(*text, nullptr, false);
        if (!j.is_object() || !j.contains("url") || !j["url"].is_string()) return std::nullopt;
        const auto url = normalizeBaseUrl(QString::fromStdString(j["url"].get<std::string>()));
        if (!url) return std::nullopt;
        RemoteChoice choice;
        choice.config.baseUrl = *url;
        if (j.contains("model") && j["model"].is_string()) choice.config.model = QString::fromStdString(j["model"].get<std::string>());
        choice.seesImages = j.contains("images") && j["images"].is_boolean() && j["images"].get<bool>();
        return choice;
    } catch (const storage::Error& e) {
        qCWarning(lcApp) << "reading the remembered server failed:" << e.what();
        return std::nullopt;
    }
}

void Assistant::rememberedApiKey(const QUrl& baseUrl, std::function<void(const QString&)> done) { secrets_.read(apiKeyName(baseUrl), std::move(done)); }

void Assistant::listRemoteModels(const RemoteConfig& config, std::function<void(const QStringList&, const QString&)> done) {
    QPointer<Assistant> self(this);
    jobs_.submit(Lane::Downloads, tr("Asking %1 for its models").arg(config.baseUrl.toDisplayString(QUrl::RemoveUserInfo)),
                 [self, config, done = std::move(done)](JobControl& job) {
                     QStringList models;
                     QString error;
                     try {
                         for (const QString& m : RemoteClient(config).listModels(job.cancelFlag())) models << m;
                     } catch (const std::exception& e) {
                         error = QString::fromUtf8(e.what());
                     }
                     // (whether the assistant is still there is asked on the window's thread, where it goes)
                     QMetaObject::invokeMethod(QCoreApplication::instance(), [self, models, error, done] {
                         if (self) done(models, error);
                     });
                 });
}

QStringList Assistant::downloadedModels() {
    QStringList found;
    const QString folder = modelsFolderBeside(library_.path());
    QDirIterator it(folder, {QStringLiteral("*.gguf")}, QDir::Files, QDirIterator::Subdirectories);
    QList<QFileInfo> files;
    static const QRegularExpression laterPart(QStringLiteral("-000(0[2-9]|[1-9]\\d)-of-\\d{5}\\.gguf$"));
    while (it.hasNext()) {
        const QFileInfo f(it.next());
        if (f.fileName().contains(QLatin1String("mmproj"), Qt::CaseInsensitive) || laterPart.match(f.fileName()).hasMatch()) continue;
        files << f;
    }
    std::sort(files.begin(), files.end(), [](const QFileInfo& a, const QFileInfo& b) { return a.lastModified() > b.lastModified(); });
    for (const QFileInfo& f : files) found << f.absoluteFilePath();
    return found;
}

QStringList Assistant::recentModels() {
    QStringList paths;
    try {
        if (const auto v = library_.settings().get(kRecentModelsKey)) {
            const auto list = nlohmann::json::parse(*v, nullptr, false);
            if (list.is_array())
                for (const auto& p : list)
                    if (p.is_string() && paths.size() < kRecentModels) paths << QString::fromStdString(p.get<std::string>());
        }
    } catch (const storage::Error& e) {
        qCWarning(lcApp) << "reading the recent models failed:" << e.what();
    }
    return paths;
}

inference::GenerationParams Assistant::defaultParams() {
    inference::GenerationParams p;
    p.maxTokens = 1024;
    p.sampling.seed = kFreshSeed;
    return p;
}

inference::GenerationParams Assistant::readParams(std::int64_t chatId, inference::GenerationParams p) {
    // (general settings under "generation.<name>", a chat's own in its chat settings)
    const auto number = [&](const char* name, double fallback) {
        try {
            const std::string key = std::string("generation.") + name;
            if (const auto v = chatId ? library_.chats().setting(chatId, key) : library_.settings().get(key)) {
                bool ok = false;
                const double d = QString::fromStdString(*v).toDouble(&ok);
                if (ok) return d;
            }
        } catch (const storage::Error& e) {
            qCWarning(lcApp) << "reading a setting failed:" << e.what();
        }
        return fallback;
    };
    p.sampling.temperature = static_cast<float>(number("temperature", p.sampling.temperature));
    p.sampling.topK = static_cast<int>(number("top_k", p.sampling.topK));
    p.sampling.topP = static_cast<float>(number("top_p", p.sampling.topP));
    p.sampling.minP = static_cast<float>(number("min_p", p.sampling.minP));
    p.sampling.repeatPenalty = static_cast<float>(number("repeat_penalty", p.sampling.repeatPenalty));
    const double seed = number("seed", p.sampling.seed == kFreshSeed ? -1.0 : static_cast<double>(p.sampling.seed));
    p.sampling.seed = seed < 0 ? kFreshSeed : static_cast<std::uint64_t>(seed);
    p.maxTokens = static_cast<int>(number("max_tokens", p.maxTokens));
    return p;
}

void Assistant::writeParams(std::int64_t chatId, const inference::GenerationParams& p) {
    const auto put = [&](const char* name, double v) {
        const std::string key = std::string("generation.") + name, value = QString::number(v, 'g', 10).toStdString();
        if (chatId) library_.chats().setSetting(chatId, key, value);
        else library_.settings().set(key, value);
    };
    put("temperature", p.sampling.temperature);
    put("top_k", p.sampling.topK);
    put("top_p", p.sampling.topP);
    put("min_p", p.sampling.minP);
    put("repeat_penalty", p.sampling.repeatPenalty);
    put("seed", p.sampling.seed == kFreshSeed ? -1.0 : static_cast<double>(p.sampling.seed));
    put("max_tokens", p.maxTokens);
}

void Assistant::loadSettings() {
    params_ = readParams(0, defaultParams());
    const auto engine = [this](const char* key, int fallback) {
        try {
            if (const auto v = library_.settings().get(key)) return QString::fromStdString(*v).toInt();
        } catch (const storage::Error&) {
        }
        return fallback;
    };
    engineOptions_.threads = engine("engine.threads", 0);
    engineOptions_.contextSize = engine("engine.context", 4096);
    engineOptions_.gpuLayers = engine("engine.gpu_layers", -1);
    engineOptions_.kvType = kvTypeOfBits(engine("engine.kv_cache_bits", 16));
    engineOptions_.snapshotMiB = std::max(0, engine("engine.snapshot_mib", EngineOptions{}.snapshotMiB));
    engineOptions_.contextPolicy = engine("chat.context_policy", 0) == 1 ? ContextPolicy::Refuse : ContextPolicy::LeaveOutOldest;
}

inference::GenerationParams Assistant::paramsFor(std::int64_t chatId) {
    return chatId ? readParams(chatId, params_) : params_;
}

bool Assistant::chatHasOwnParams(std::int64_t chatId) {
    try {
        return library_.chats().setting(chatId, "generation.temperature").has_value();
    } catch (const storage::Error&) {
        return false;
    }
}

void Assistant::saveChatParams(std::int64_t chatId, const inference::GenerationParams& params) {
    try {
        writeParams(chatId, params);
    } catch (const storage::Error& e) {
        emit errorOccurred(QString::fromUtf8(e.what()));
    }
}

void Assistant::clearChatParams(std::int64_t chatId) {
    try {
        for (const char* key : {"temperature", "top_k", "top_p", "min_p", "repeat_penalty", "seed", "max_tokens"})
            library_.chats().removeSetting(chatId, std::string("generation.") + key);
    } catch (const storage::Error& e) {
        emit errorOccurred(QString::fromUtf8(e.what()));
    }
}

void Assistant::saveSettings(const inference::GenerationParams& params, const EngineOptions& engine) {
    params_ = params;
    engineOptions_ = engine;
    try {
        writeParams(0, params);
        library_.settings().set("engine.threads", std::to_string(engine.threads));
        library_.settings().set("engine.context", std::to_string(engine.contextSize));
        library_.settings().set("engine.gpu_layers", std::to_string(engine.gpuLayers));
        library_.settings().set("engine.kv_cache_bits", std::to_string(kvBitsOf(engine.kvType)));
        library_.settings().set("engine.snapshot_mib", std::to_string(engine.snapshotMiB));
        library_.settings().set("chat.context_policy", std::to_string(static_cast<int>(engine.contextPolicy)));
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
        const QString title = text.trimmed().isEmpty() ? tr("Image") : titleFromMessage(text);
        if (chatId == 0) {
            chatId = library_.chats().createChat(title.toStdString()).id;
            emit chatCreated(chatId);
        } else if (const auto chat = library_.chats().chat(chatId);
                   chat && (chat->title.empty() || QString::fromStdString(chat->title) == tr("New chat")) && library_.chats().messages(chatId).empty()) {
            // A chat made empty (New Chat, Ctrl+N) is named after its first message, as one made
            // by sending is; a name the user gave it stays.
            library_.chats().renameChat(chatId, title.toStdString());
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
    // Images are read on the engine's lane, through a connection of its own, when their rows are not cached.
    auto reader = std::make_shared<LibraryReader>(library_.path());
    ChatEngine::ImageSource images = [reader](const std::string& sha) { return reader->imageBytes(sha).value_or(QByteArray()); };
    writeFailing_ = false;
    writer_ = std::make_unique<storage::StreamingMessageWriter>(library_.chats(), chatId, engine_->modelName().toStdString(),
                                                                std::chrono::milliseconds(250));
    replyChat_ = chatId;
    inference::GenerationParams params = paramsFor(chatId);
    if (params.sampling.seed == kFreshSeed) params.sampling.seed = std::random_device{}();  // (Regenerate: another reply)
    replyId_ = engine_->startReply(conversation, params, std::move(images), chatThinks(chatId), engineOptions_.contextPolicy);
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
    metrics.model = engine_ ? engine_->modelName().toStdString() : closingModel_;
    if (result.contains("promptTokens")) metrics.promptTokens = result["promptTokens"].toLongLong();
    if (result.contains("generatedTokens")) metrics.generatedTokens = result["generatedTokens"].toLongLong();
    if (result.contains("ttftMs")) metrics.ttftMs = result["ttftMs"].toDouble();
    if (result.contains("tokensPerSecond")) metrics.tokensPerSecond = result["tokensPerSecond"].toDouble();
    if (result.contains("reasoningMs")) metrics.reasoningMs = result["reasoningMs"].toDouble();
    const QString status = result["status"].toString();
    const std::int64_t chatId = replyChat_, messageId = writer_->messageId();
    // What the context did to this reply, said where the user looks.
    const int context = result.value("contextSize").toInt();
    if (const int leftOut = result.value("leftOut").toInt(); leftOut > 0)
        emit notice(chatId, tr("%n earlier message(s) were left out to fit the model's context of %1 tokens.", "", leftOut).arg(context));
    if (result.value("stopReason").toString() == QLatin1String("context full"))
        emit notice(chatId, tr("The reply reached the end of the model's context (%1 tokens) and was cut there. Start a new chat, or raise the "
                               "context length in Settings.")
                                .arg(context));
    const bool failed = status == QLatin1String("error");
    const auto final = failed ? storage::MessageStatus::Error : status == QLatin1String("stopped") ? storage::MessageStatus::Stopped : storage::MessageStatus::Complete;
    const std::optional<std::string> error = failed ? std::optional(result["error"].toString().toStdString()) : std::nullopt;
    if (failed) emit errorOccurred(tr("The reply failed: %1").arg(result["error"].toString()));
    try {
        writer_->finish(final, metrics, error);
        if (writeFailing_) emit replySaving(chatId, messageId, true, tr("The reply is saved."));
    } catch (const storage::Error& e) {
        // A full disk: the text stays in memory and is retried every few seconds.
        if (!writeFailing_)
            emit replySaving(chatId, messageId, false,
                             tr("The reply cannot be saved (%1). It is kept in memory and saving is retried; free some disk space.")
                                 .arg(QString::fromUtf8(e.what())));
        unsaved_.push_back({std::move(writer_), chatId, final, metrics, error});
        retryTimer_->start();
    }
    writeFailing_ = false;
    writer_.reset();
    replyChat_ = 0;
    emit replyFinished(chatId, messageId);
}

nlohmann::ordered_json Assistant::conversationFor(std::int64_t chatId) {
    nlohmann::ordered_json history = nlohmann::ordered_json::array();
    for (const auto& m : library_.chats().messages(chatId)) {
        if (m.status == storage::MessageStatus::Error) continue;
        nlohmann::ordered_json message{{"role", std::string(storage::toString(m.role))}, {"content", m.content}};
        // A reply's reasoning goes beside it: most templates drop it from earlier turns.
        if (!m.reasoning.empty()) message["reasoning_content"] = m.reasoning;
        if (!m.images.empty() && engine_->hasImageProjector()) message["images"] = m.images;
        history.push_back(message);
    }
    const std::int64_t templateId = chatTemplate(chatId);
    auto conversation = buildConversation(templateId ? templateSpec(templateId) : std::nullopt, history);
    // The chat's (or the default) system prompt, unless the template brought its own.
    const bool hasSystem = !conversation.empty() && conversation.front().value("role", std::string()) == "system";
    if (const QString system = systemPrompt(chatId); !hasSystem && !system.trimmed().isEmpty())
        conversation.insert(conversation.begin(), nlohmann::ordered_json{{"role", "system"}, {"content", system.toStdString()}});
    return conversation;
}

QString Assistant::ownSystemPrompt(std::int64_t chatId) {
    try {
        return chatId > 0 ? QString::fromStdString(library_.chats().setting(chatId, "system_prompt").value_or("")) : QString();
    } catch (const storage::Error& e) {
        qCWarning(lcApp) << "reading the chat's system prompt failed:" << e.what();
        return {};
    }
}

QString Assistant::systemPrompt(std::int64_t chatId) {
    try {
        if (const QString own = ownSystemPrompt(chatId); !own.isEmpty()) return own;
        return QString::fromStdString(library_.settings().get(kSystemPromptKey).value_or(""));
    } catch (const storage::Error& e) {
        qCWarning(lcApp) << "reading the system prompt failed:" << e.what();
        return {};
    }
}

void Assistant::setSystemPrompt(std::int64_t chatId, const QString& text) {
    try {
        const std::string value = text.trimmed().isEmpty() ? std::string() : text.toStdString();
        if (chatId == 0) library_.settings().set(kSystemPromptKey, value);
        else if (value.empty()) library_.chats().removeSetting(chatId, "system_prompt");
        else library_.chats().setSetting(chatId, "system_prompt", value);
    } catch (const storage::Error& e) {
        emit errorOccurred(QString::fromUtf8(e.what()));
    }
}

Assistant::ContextUse Assistant::contextUse(std::int64_t chatId) {
    ContextUse use;
    use.limit = engine_->isLoaded() ? engine_->contextSize() : 0;
    try {
        const auto messages = chatId > 0 ? library_.chats().messages(chatId) : std::vector<storage::Message>{};
        for (auto m = messages.rbegin(); m != messages.rend(); ++m)
            if (m->role == storage::Role::Assistant && m->metrics.promptTokens) {
                use.used = *m->metrics.promptTokens + m->metrics.generatedTokens.value_or(0);
                break;
            }
    } catch (const storage::Error& e) {
        qCWarning(lcApp) << "reading the chat for its context use failed:" << e.what();
    }
    return use;
}

std::int64_t Assistant::chatTemplate(std::int64_t chatId) {
    try {
        if (const auto v = chatId > 0 ? library_.chats().setting(chatId, "template") : std::nullopt) {
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
        if (chatId > 0) library_.chats().setSetting(chatId, "template", std::to_string(templateId));
    } catch (const storage::Error& e) {
        emit errorOccurred(QString::fromUtf8(e.what()));
    }
}

bool Assistant::chatThinks(std::int64_t chatId) {
    try {
        if (const auto v = chatId > 0 ? library_.chats().setting(chatId, "think") : std::nullopt) return *v != "0";
    } catch (const storage::Error& e) {
        qCWarning(lcApp) << "reading the chat's think switch failed:" << e.what();
    }
    return true;
}

void Assistant::setChatThinks(std::int64_t chatId, bool think) {
    try {
        if (chatId > 0) library_.chats().setSetting(chatId, "think", think ? "1" : "0");
    } catch (const storage::Error& e) {
        emit errorOccurred(QString::fromUtf8(e.what()));
    }
}

std::optional<TemplateSpec> Assistant::templateSpec(std::int64_t templateId) {
    try {
        const auto t = library_.templates().get(templateId);
        if (!t) return std::nullopt;
        TemplateSpec spec{t->systemPrompt, t->body, {}};
        for (const auto& e : library_.templates().examples(templateId))
            spec.examples.push_back({e.input, e.output, engine_->hasImageProjector() ? e.imageSha256 : std::nullopt});
        return spec;
    } catch (const storage::Error& e) {
        emit errorOccurred(QString::fromUtf8(e.what()));
        return std::nullopt;
    }
}

}  // namespace lumen::app
