#include "app/chat_engine.h"

#include <QElapsedTimer>
#include <QFileInfo>
#include <QMetaObject>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "app/llm_host.h"
#include "app/openai_server.h"
#include "app/logging.h"
#include "inference/core/compute_devices.h"
#include "inference/core/memory.h"
#include "inference/formats/format_error.h"
#include "inference/llm/reasoning.h"
#include "vision/embedding_cache.h"
#include "vision/mmproj.h"

namespace lumen::app {

struct ChatEngine::State {
    std::optional<LoadedLlm> llm;
    std::shared_ptr<const PromptRenderer> renderer;
    std::unique_ptr<inference::LanguageSession> session;
    std::unique_ptr<inference::Generator> generator;
    std::optional<Projector> projector;
    vision::EmbeddingCache imageRows;
    std::optional<RemoteClient> remote;  // replies from a server instead
    std::shared_ptr<OpenAiServer> server;  // serving the model to other programs
    std::thread serverThread;

    void stopServer() {
        if (!server) return;
        server->stop();
        if (serverThread.joinable()) serverThread.join();
        server.reset();
    }

    // Users before what they use: the server, the generator, the session, the model (and its backends) last.
    void reset() {
        stopServer();
        remote.reset();
        projector.reset();
        generator.reset();
        session.reset();
        renderer.reset();
        llm.reset();
    }
};

namespace {

// A placement error as the window says it: a memory shortfall points at the setting that helps.
QString loadError(const std::exception& e) {
    const auto* fit = dynamic_cast<const FitError*>(&e);
    return QString::fromUtf8(e.what()) +
           (fit && fit->kind() == FitError::Kind::Memory ? QObject::tr("; lower the context length in Settings") : QString());
}

// "0.27 million", "1.10 billion": a parameter count as people say it.
QString parameterCount(std::int64_t params) {
    const double n = static_cast<double>(params);
    if (n >= 1e9) return QObject::tr("%1 billion").arg(n / 1e9, 0, 'f', 2);
    if (n >= 1e6) return QObject::tr("%1 million").arg(n / 1e6, 0, 'f', n >= 1e8 ? 0 : 2);
    return QObject::tr("%1 thousand").arg(n / 1e3, 0, 'f', 1);
}

}  // namespace

ModelSummary summarizeModelFile(const QString& path, int contextSize) {
    // The file and the family's checks only (no tokenizer): this runs while the user waits.
    auto file = std::make_shared<const inference::GgufFile>(inference::GgufFile::open(path.toStdString()));
    const auto model = inference::LanguageModel::load(file);
    const auto& c = model->config();
    std::int64_t params = 0;
    std::map<std::string, std::int64_t> byType;
    for (const auto& t : file->tensors()) {
        params += t.elements;
        byType[std::string(inference::name(t.dtype))] += t.elements;
    }
    const auto dominant = std::max_element(byType.begin(), byType.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
    const std::int64_t context = contextFor(*model, contextSize);
    const auto need = model->estimateMemory(context);
    const auto available = inference::availableMemory();
    ModelSummary s;
    s.fits = !available || need.total() <= *available;
    s.text = QObject::tr("%1\n\nArchitecture: %2, %3 layers, %4 wide, %5 heads (%6 KV)\nParameters: %7, mostly %8 (%9 on disk)\n"
                         "Context: %10 tokens (trained for %11)\nMemory: about %12 (weights %13 mapped from the file, KV cache %14)%15")
                 .arg(QFileInfo(path).fileName(), QString::fromStdString(c.architecture))
                 .arg(c.nLayers)
                 .arg(c.dim)
                 .arg(c.nHeads)
                 .arg(c.nKvHeads)
                 .arg(parameterCount(params))
                 .arg(QString::fromStdString(dominant != byType.end() ? dominant->first : std::string("?")),
                      QString::fromStdString(inference::formatBytes(file->fileSize())))
                 .arg(context)
                 .arg(c.contextLength)
                 .arg(QString::fromStdString(inference::formatBytes(need.total())), QString::fromStdString(inference::formatBytes(need.weights)),
                      QString::fromStdString(inference::formatBytes(need.kvCache)),
                      available ? QObject::tr("; %1 free now").arg(QString::fromStdString(inference::formatBytes(*available))) : QString());
    return s;
}

ChatEngine::ChatEngine(JobRunner& jobs, QObject* parent) : QObject(parent), jobs_(jobs), state_(std::make_shared<State>()) {}

ChatEngine::~ChatEngine() {
    cancel_.store(true);
    cancelLoad_.store(true);
    stopServing();  // (the lane's reset joins it before the model it serves goes)
    // The lane drops the model, and no job of this engine runs on after it.
    jobs_.submit(Lane::Llm, {}, [state = state_](JobControl&) { state->reset(); });
    jobs_.wait(Lane::Llm);
}

void ChatEngine::loadModel(const QString& path, const EngineOptions& options) {
    cancel_.store(true);  // a running reply ends first (queued calls run in order)
    stopServing();
    // What is loaded now comes back if the new file turns out unreadable.
    const bool wasLoaded = loaded_, hadProjector = projectorLoaded_, wasRemote = remote_;
    auto previousRenderer = renderer_;
    loaded_ = false;
    projectorLoaded_ = false;
    remote_ = false;
    renderer_.reset();
    cancelLoad_.store(false);
    jobs_.submit(Lane::Llm, tr("Loading %1").arg(QFileInfo(path).fileName()),
                 [this, path, options, state = state_, wasLoaded, hadProjector, wasRemote, previousRenderer](JobControl&) {
        bool kept = state->llm.has_value() || state->remote.has_value();  // the old model is still in place
        // Between steps, a cancelled load drops what it has (the old model stays if still there).
        const auto cancelled = [&] {
            if (!cancelLoad_.load()) return false;
            if (!kept) state->reset();
            QMetaObject::invokeMethod(this, [this, kept, wasLoaded, hadProjector, wasRemote, previousRenderer] {
                if (kept) loaded_ = wasLoaded, projectorLoaded_ = hadProjector, remote_ = wasRemote, renderer_ = previousRenderer;
                emit loadCancelled();
            });
            return true;
        };
        try {
            // The file is read and checked (format, family, vocabulary, template, memory) before
            // the loaded model is let go: a file that cannot run leaves the working one in place.
            auto opened = openLlm(path.toStdString());
            if (cancelled()) return;
            auto renderer = std::make_shared<const PromptRenderer>(opened.templateOr("chatml"), opened.tokenizer);
            const LlmOptions llmOptions{.contextSize = options.contextSize,
                                        .threads = options.threads,
                                        .gpuLayers = options.gpuLayers,
                                        .kvType = options.kvType,
                                        .snapshotBytes = static_cast<std::uint64_t>(std::max(0, options.snapshotMiB)) << 20,
                                        .cpuPool = jobs_.cpuPool(options.threads),  // (the pool vision uses too)
                                        .strictGpuLayers = false};  // (a GPU gone or full: the CPU, with a note)
            // On the CPU the whole estimate must fit in free memory, with what the loaded model
            // frees counted as free (placeLlm checks again once it is gone).
            const bool mayUseGpu = options.gpuLayers != 0 && !inference::queryComputeDevices().gpus.empty();
            if (const auto available = inference::availableMemory(); !mayUseGpu && available) {
                const std::uint64_t freed = state->session ? state->llm->llm.model->estimateMemory(state->session->contextSize(), state->llm->kvType,
                                                                                                     state->llm->snapshotBytes).total()
                                                           : 0;
                const auto& model = *opened.model;
                requireFits(model, contextFor(model, llmOptions.contextSize), kvTypeFor(model, llmOptions.kvType), llmOptions.snapshotBytes,
                            *available + freed);
            }
            if (cancelled()) return;
            state->reset();
            kept = false;
            state->llm = loadLlm(std::move(opened), llmOptions);
            for (const auto& note : state->llm->placement.notes) {
                qCInfo(lcApp) << note.c_str();
                emit loadNote(QString::fromStdString(note));
            }
            state->renderer = std::move(renderer);
            state->session = state->llm->newSession();
            state->generator = std::make_unique<inference::Generator>(*state->session, *state->llm->llm.tokenizer);
            const QString name = QString::fromStdString(state->llm->summary());
            QMetaObject::invokeMethod(this, [this, name, path, renderer = state->renderer, context = static_cast<int>(state->session->contextSize())] {
                renderer_ = renderer;
                contextSize_ = context;
                loaded_ = true;
                remote_ = false;
                modelName_ = name;
                modelPath_ = path;
                emit modelLoaded(name);
            });
        } catch (const std::exception& e) {
            if (!kept) state->reset();
            const QString message = kept ? tr("%1 could not be loaded: %2. %3 stays loaded.")
                                               .arg(QFileInfo(path).fileName(), loadError(e),
                                                    state->llm ? QString::fromStdString(state->llm->llm.fileName) : state->remote->config().model)
                                         : tr("%1 could not be loaded: %2").arg(QFileInfo(path).fileName(), loadError(e));
            qCWarning(lcApp) << message;
            QMetaObject::invokeMethod(this, [this, message, kept, wasLoaded, hadProjector, wasRemote, previousRenderer] {
                loaded_ = kept && wasLoaded;
                if (kept) projectorLoaded_ = hadProjector, remote_ = wasRemote, renderer_ = previousRenderer;
                emit loadFailed(message);
            });
        }
    });
}

void ChatEngine::connectRemote(const RemoteConfig& config, bool seesImages) {
    cancel_.store(true);  // a running reply ends first
    stopServing();
    cancelLoad_.store(false);
    const QString where = config.baseUrl.toDisplayString(QUrl::RemoveUserInfo);
    jobs_.submit(Lane::Llm, tr("Connecting to %1").arg(where), [this, config, seesImages, where, state = state_](JobControl&) {
        try {
            RemoteClient client(config);
            const auto models = client.listModels(&cancelLoad_);
            RemoteConfig use = client.config();
            if (use.model.isEmpty()) {
                if (models.size() != 1)
                    throw RemoteError(tr("%1 has %n model(s); choose one", "", static_cast<int>(models.size())).arg(where).toStdString());
                use.model = models.front();
            } else if (std::find(models.begin(), models.end(), use.model) == models.end()) {
                throw RemoteError(tr("%1 has no model named %2 (it has: %3)").arg(where, use.model, QStringList(models.begin(), models.end()).join(QStringLiteral(", "))).toStdString());
            }
            state->reset();  // the local model (or the other server) goes
            state->remote.emplace(use);
            const QString name = tr("%1 at %2").arg(use.model, use.baseUrl.toDisplayString(QUrl::RemoveUserInfo));
            QMetaObject::invokeMethod(this, [this, use, name, seesImages] {
                renderer_.reset();
                contextSize_ = 0;
                projectorLoaded_ = false;
                loaded_ = true;
                remote_ = true;
                remoteSeesImages_ = seesImages;
                remoteConfig_ = use;
                modelName_ = name;
                modelPath_.clear();
                emit modelLoaded(name);
            });
        } catch (const std::exception& e) {
            const auto* remote = dynamic_cast<const RemoteError*>(&e);
            const QString message = remote && remote->cancelled() ? QString() : tr("Could not use the server: %1").arg(QString::fromUtf8(e.what()));
            QMetaObject::invokeMethod(this, [this, message] {
                if (message.isEmpty()) emit loadCancelled();
                else emit loadFailed(message);
            });
        }
    });
}

void ChatEngine::stopServing() {
    ++serverStarts_;  // (a start still on its way is void: the lane stops what it started)
    const bool wasServing = serving_;
    if (const auto server = serverHandle_.lock()) server->stop();  // (at once; joined and freed on the lane)
    serverHandle_.reset();
    serving_ = false;
    serverUrl_.clear();
    jobs_.submit(Lane::Llm, {}, [state = state_](JobControl&) { state->stopServer(); });
    if (wasServing) emit serverStopped();
}

void ChatEngine::stopServer() { stopServing(); }

void ChatEngine::startServer(const ServerSettings& settings) {
    stopServing();
    jobs_.submit(Lane::Llm, tr("Starting the local server"), [this, settings, state = state_, jobs = &jobs_, start = serverStarts_](JobControl&) {
        try {
            if (!state->llm) throw std::runtime_error(state->remote ? "the local server serves a model on this computer, not a server's"
                                                                    : "load a model first");
            state->stopServer();  // (one that was starting when this was asked: its port and memory are free again)
            // The server's requests get a context of their own: on the CPU its cache must fit in
            // free memory too (on the GPU, allocating it says so when it does not fit).
            const auto& model = *state->llm->llm.model;
            const auto need = model.estimateMemory(state->llm->contextSize, state->llm->kvType, state->llm->snapshotBytes).kvCache;
            if (const auto available = inference::availableMemory(); available && state->llm->placement.gpuLayers == 0 && need > *available)
                throw std::runtime_error("the server's own context needs " + inference::formatBytes(need) + " and " + inference::formatBytes(*available) +
                                         " is free: lower the context length in Settings");
            ServerOptions options;
            options.host = settings.host.toStdString();
            options.port = settings.port;
            options.apiKey = settings.apiKey.toStdString();
            options.log = [](const std::string& line) { qCInfo(lcApp) << "server:" << line.c_str(); };
            options.readTimeoutSeconds = 10;  // (stopping waits for the connections being read, and idle ones:
            options.keepAliveSeconds = 1;     //  the model's lane is held meanwhile)
            // Each request's work runs as a job on the LLM lane (the model is the chat's too); one
            // that has not started when the server stops is given up.
            options.onEngine = [jobs](const std::function<void()>& work, const std::atomic<bool>& stopping) {
                struct Call {
                    std::mutex mutex;
                    bool abandoned = false, started = false;
                    std::promise<void> done;
                    const std::function<void()>* work = nullptr;
                };
                auto call = std::make_shared<Call>();
                call->work = &work;
                auto future = call->done.get_future();
                jobs->submit(Lane::Llm, {}, [call](JobControl&) {
                    {
                        std::lock_guard lock(call->mutex);
                        if (call->abandoned) return;
                        call->started = true;
                    }
                    try {
                        (*call->work)();
                        call->done.set_value();
                    } catch (...) {
                        call->done.set_exception(std::current_exception());
                    }
                });
                while (future.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready) {
                    if (!stopping.load()) continue;
                    std::lock_guard lock(call->mutex);
                    if (!call->started) {
                        call->abandoned = true;
                        throw ApiError::shuttingDown();
                    }
                }
                future.get();
            };
            auto server = std::make_shared<OpenAiServer>(&*state->llm, state->projector ? &*state->projector : nullptr, nullptr, options);
            const int port = server->bind();
            state->server = server;
            state->serverThread = std::thread([server] { server->run(); });
            const QString host = settings.host.contains(QLatin1Char(':')) ? QStringLiteral("[%1]").arg(settings.host) : settings.host;
            const QString url = QStringLiteral("http://%1:%2/v1").arg(host).arg(port);
            // (the window's side holds it weakly: it is freed on the lane, before what it serves)
            QMetaObject::invokeMethod(this, [this, url, weak = std::weak_ptr<OpenAiServer>(server), start] {
                if (start != serverStarts_) {  // stopped or asked again meanwhile: the lane stops this one
                    if (const auto s = weak.lock()) s->stop();
                    return;
                }
                serverHandle_ = weak;
                serving_ = true;
                serverUrl_ = url;
                emit serverStarted(url);
            });
        } catch (const std::exception& e) {
            const QString message = tr("The local server could not start: %1").arg(QString::fromUtf8(e.what()));
            QMetaObject::invokeMethod(this, [this, message] { emit serverFailed(message); });
        }
    });
}

void ChatEngine::loadImageProjector(const QString& path) {
    stopServing();  // (it serves the projector it started with)
    projectorLoaded_ = false;
    jobs_.submit(Lane::Llm, tr("Loading %1").arg(QFileInfo(path).fileName()), [this, path, state = state_](JobControl&) {
        try {
            if (!state->llm) throw inference::FormatError("load a language model first");
            state->projector = openProjector(path.toStdString(), *state->llm);
            for (const auto& note : state->projector->notes) emit loadNote(QString::fromStdString(note));
            // LLaVA's own turns for an LLM that brings no template.
            if (!state->llm->llm.chatTemplate)
                state->renderer = std::make_shared<const PromptRenderer>(inference::ChatTemplate::builtin("llava"), state->llm->llm.tokenizer);
            const QString description = QString::fromStdString(state->projector->mmproj->description());
            QMetaObject::invokeMethod(this, [this, path, description, renderer = state->renderer] {
                renderer_ = renderer;
                projectorLoaded_ = true;
                projectorPath_ = path;
                emit imageProjectorLoaded(description);
            });
        } catch (const std::exception& e) {
            const QString message = tr("%1 could not be loaded: %2").arg(QFileInfo(path).fileName(), QString::fromUtf8(e.what()));
            QMetaObject::invokeMethod(this, [this, message] { emit imageProjectorFailed(message); });
        }
    });
}

int ChatEngine::startReply(const nlohmann::ordered_json& messages, const inference::GenerationParams& params, ImageSource images, bool think,
                           ContextPolicy policy) {
    if (!loaded_ || busy_.load()) return 0;
    const int id = nextReply_++;
    busy_.store(true);
    cancel_.store(false);
    jobs_.submit(Lane::Llm, {}, [this, id, messages, params, images = std::move(images), think, policy, state = state_](JobControl&) {
        QVariantMap result;
        if (state->remote) {
            remoteReply(*state->remote, id, messages, params, images, think, result);
            busy_.store(false);
            emit replyFinished(id, result);
            return;
        }
        try {
            if (!state->generator) throw std::runtime_error("no model is loaded");
            // The prompt: messages rendered, images as their rows' placeholders. A chat too long
            // for the context is fitted by the policy, and rendered again.
            const auto& tokenizer = *state->llm->llm.tokenizer;
            const std::int64_t context = state->session->contextSize();
            const std::int64_t reserve = std::max<std::int64_t>(1, std::min<std::int64_t>(params.maxTokens > 0 ? params.maxTokens : context, context / 4));
            nlohmann::ordered_json extras = nlohmann::ordered_json::object();
            if (!think) extras["enable_thinking"] = false;
            nlohmann::ordered_json working = messages;
            std::vector<ImageRows> keep;
            inference::EmbeddingRows rows;
            std::string prompt;
            std::vector<inference::TokenId> tokens;
            int leftOut = 0;
            while (true) {
                // Images: their projected rows (cached by projector and content) and placeholder
                // ids, in message order; without a projector they are left out.
                nlohmann::ordered_json conversation = nlohmann::ordered_json::array();
                std::vector<std::vector<inference::TokenId>> placeholders;
                keep.clear();
                rows.clear();
                for (auto m : working) {
                    m.erase("keep");
                    if (!state->projector) m.erase("images");
                    if (m.contains("images"))
                        for (const auto& sha : m["images"]) {
                            const std::string key = sha.get<std::string>();
                            // Read only when its rows are not cached (the projector's key and the sha name them).
                            QByteArray bytes;
                            if (!state->imageRows.find(state->projector->key, key)) {
                                bytes = images ? images(key) : QByteArray();
                                if (bytes.isEmpty()) throw std::runtime_error("an image of this chat is no longer in the library");
                            }
                            keep.push_back(projectImage(*state->projector, state->imageRows,
                                                        {reinterpret_cast<const std::uint8_t*>(bytes.constData()), static_cast<std::size_t>(bytes.size())}, key));
                            addRows(*state->projector, keep.back(), rows);
                            placeholders.push_back(keep.back().placeholders);
                        }
                    conversation.push_back(std::move(m));
                }
                prompt = state->renderer->render(conversation, extras, &cancel_);  // Stop also stops a long template
                tokens = promptTokens(tokenizer, prompt, placeholders);
                if (static_cast<std::int64_t>(tokens.size()) + reserve <= context) break;
                // Over the limit: down to a quarter below it, so that the next replies keep the
                // same beginning (and reuse its cache) instead of each dropping one more turn.
                const std::int64_t excess = static_cast<std::int64_t>(tokens.size()) + reserve - context + context / 4;
                const std::string need = std::to_string(tokens.size()) + " tokens, and the model's context holds " + std::to_string(context) + " with " +
                                         std::to_string(reserve) + " kept for the reply";
                if (policy == ContextPolicy::Refuse)
                    throw std::length_error("this chat is longer than the model's context (" + need +
                                            "): start a new chat, raise the context length, or let Lumen leave out the oldest turns (Settings)");
                // Whole turns go, oldest first, until about `excess` tokens are gone: a user
                // message with the replies after it, so the turns still alternate.
                std::int64_t gone = 0;
                int dropped = 0;
                for (std::size_t i = 0; i + 1 < working.size() && gone < excess;) {
                    const auto& m = working[i];
                    if (m.value("keep", false) || m.value("role", std::string()) == "system") {
                        ++i;
                        continue;
                    }
                    do {
                        const auto& d = working[i];
                        gone += static_cast<std::int64_t>(tokenizer.encode(d.value("content", std::string()), false, false).size()) + 8 +
                                (d.contains("images") && state->projector ? 256 * static_cast<std::int64_t>(d["images"].size()) : 0);
                        working.erase(working.begin() + static_cast<std::ptrdiff_t>(i));
                        ++dropped;
                    } while (i + 1 < working.size() && working[i].value("role", std::string()) != "user" && !working[i].value("keep", false) &&
                             working[i].value("role", std::string()) != "system");
                }
                if (dropped == 0)
                    throw std::length_error("the message is too long for the model's context: what must go with it (the system prompt, a "
                                            "template's examples and the message itself) takes " + need +
                                            "; shorten it, or raise the context length in Settings");
                leftOut += dropped;
            }
            emit promptRendered(id, QString::fromStdString(prompt));
            // A reasoning model's thinking goes apart from its answer; how long it took is measured
            // from the start to the first answer text.
            std::optional<inference::ReasoningSplitter> splitter;
            inference::GenerationParams run = params;
            if (const auto markers = inference::reasoningMarkers(state->renderer->chatTemplate().source())) {
                splitter.emplace(*markers, inference::promptOpensReasoning(prompt, *markers));
                run.renderSpecial = markers->harmony;  // (harmony's message markers are special tokens)
            }
            QElapsedTimer clock;
            clock.start();
            double reasoningMs = -1;
            const auto send = [&](const inference::ReasoningSplitter::Pieces& p) {
                if (!p.reasoning.empty()) emit replyReasoning(id, QString::fromUtf8(p.reasoning.data(), static_cast<qsizetype>(p.reasoning.size())));
                if (p.answer.empty()) return;
                if (reasoningMs < 0 && splitter && splitter->reasoned()) reasoningMs = static_cast<double>(clock.nsecsElapsed()) / 1e6;
                emit replyPiece(id, QString::fromUtf8(p.answer.data(), static_cast<qsizetype>(p.answer.size())));
            };
            const auto r = state->generator->generate(tokens, run, [&](std::string_view piece) {
                if (splitter) send(splitter->feed(piece));
                else send({{}, std::string(piece)});
                return true;
            }, &cancel_, {}, rows.empty() ? nullptr : &rows);
            if (splitter) send(splitter->finish());
            if (splitter && splitter->reasoned())
                result["reasoningMs"] = reasoningMs >= 0 ? reasoningMs : static_cast<double>(clock.nsecsElapsed()) / 1e6;
            result["status"] = r.stopReason == inference::StopReason::Cancelled ? QStringLiteral("stopped") : QStringLiteral("complete");
            result["promptTokens"] = r.promptTokens;
            result["generatedTokens"] = static_cast<int>(r.tokens.size());
            result["ttftMs"] = r.ttftMs;
            result["tokensPerSecond"] = r.decodeTokensPerSecond;
            result["stopReason"] = QString::fromLatin1(inference::toString(r.stopReason).data());
            result["contextSize"] = static_cast<qlonglong>(context);
            result["leftOut"] = leftOut;
        } catch (const std::exception& e) {
            // Stopped while the template rendered: a stopped reply, not an error.
            result["status"] = cancel_.load() ? QStringLiteral("stopped") : QStringLiteral("error");
            if (!cancel_.load()) result["error"] = QString::fromUtf8(e.what());
        }
        busy_.store(false);
        emit replyFinished(id, result);
    });
    return id;
}

// A reply from the server: the messages as OpenAI's API takes them (an image as an image_url
// part before the text, inline), streamed; what the server says goes into the result as a local
// reply's would.
void ChatEngine::remoteReply(const RemoteClient& client, int id, const nlohmann::ordered_json& messages, const inference::GenerationParams& params,
                             const ImageSource& images, bool think, QVariantMap& result) {
    try {
        nlohmann::ordered_json conversation = nlohmann::ordered_json::array();
        const auto textOf = [](const nlohmann::ordered_json& m, const char* key) {
            const auto it = m.find(key);
            return it != m.end() && it->is_string() ? it->get<std::string>() : std::string();
        };
        for (const auto& m : messages) {
            const std::string role = textOf(m, "role");
            nlohmann::ordered_json out{{"role", role.empty() ? std::string("user") : role}};
            const std::string text = textOf(m, "content");
            if (const auto list = m.find("images"); list != m.end() && list->is_array() && !list->empty()) {  // (the assistant sends images only to a model that sees)
                nlohmann::ordered_json parts = nlohmann::ordered_json::array();
                for (const auto& sha : *list) {
                    const QByteArray bytes = images && sha.is_string() ? images(sha.get<std::string>()) : QByteArray();
                    if (bytes.isEmpty()) throw RemoteError("an image of this chat is no longer in the library");
                    parts.push_back({{"type", "image_url"}, {"image_url", {{"url", imageDataUrl(bytes)}}}});
                }
                if (!text.empty()) parts.push_back({{"type", "text"}, {"text", text}});
                out["content"] = std::move(parts);
            } else {
                out["content"] = text;
            }
            conversation.push_back(std::move(out));
        }
        const auto& s = params.sampling;
        auto body = samplingFields(s.temperature, s.topP, s.topK, s.minP, s.repeatPenalty, s.frequencyPenalty, s.presencePenalty, s.seed, params.maxTokens,
                                   params.stopStrings);
        body["messages"] = std::move(conversation);
        if (!think) body["chat_template_kwargs"] = {{"enable_thinking", false}};
        const RemoteReply r = client.stream(std::move(body), true, [&](const std::string& reasoning, const std::string& answer) {
            if (!reasoning.empty()) emit replyReasoning(id, QString::fromStdString(reasoning));
            if (!answer.empty()) emit replyPiece(id, QString::fromStdString(answer));
        }, &cancel_);
        result["status"] = r.cancelled ? QStringLiteral("stopped") : QStringLiteral("complete");
        if (r.promptTokens >= 0) result["promptTokens"] = r.promptTokens;
        result["generatedTokens"] = r.completionTokens >= 0 ? r.completionTokens : 0;
        result["ttftMs"] = r.ttftMs;
        result["tokensPerSecond"] = r.tokensPerSecond;
        if (r.reasoningMs >= 0) result["reasoningMs"] = r.reasoningMs;
        const auto reason = r.cancelled ? inference::StopReason::Cancelled
                            : r.finishReason == "length" ? inference::StopReason::MaxTokens
                                                         : inference::StopReason::EndOfGeneration;
        result["stopReason"] = QString::fromLatin1(inference::toString(reason).data());
        result["leftOut"] = 0;
    } catch (const std::exception& e) {
        result["status"] = cancel_.load() ? QStringLiteral("stopped") : QStringLiteral("error");
        if (!cancel_.load()) result["error"] = QString::fromUtf8(e.what());
    }
}

void ChatEngine::stop() { cancel_.store(true); }

void ChatEngine::unloadModel() {
    cancel_.store(true);  // a running reply ends first (the lane runs jobs in order)
    stopServing();
    cancelLoad_.store(true);
    loaded_ = false;
    projectorLoaded_ = false;
    remote_ = false;
    renderer_.reset();
    contextSize_ = 0;
    modelName_.clear();
    modelPath_.clear();
    jobs_.submit(Lane::Llm, {}, [state = state_](JobControl&) { state->reset(); });
    emit modelUnloaded();
}

void ChatEngine::cancelLoad() { cancelLoad_.store(true); }

}  // namespace lumen::app
