#include "app/chat_engine.h"

#include <QElapsedTimer>
#include <QFileInfo>
#include <QMetaObject>
#include <stdexcept>

#include "app/logging.h"
#include "inference/core/backend.h"
#include "inference/core/compute_devices.h"
#include "inference/core/memory.h"
#include "inference/llm/chat_template.h"
#include "inference/llm/language_model.h"
#include "inference/llm/multimodal.h"
#include "inference/llm/reasoning.h"
#include "inference/llm/tokenizer.h"
#include "vision/embedding_cache.h"
#include "vision/image_decode.h"
#include "vision/mmproj.h"

namespace lumen::app {

struct ChatEngine::State {
    std::unique_ptr<inference::Backend> backend;
    std::unique_ptr<inference::Backend> gpu;
    std::shared_ptr<const inference::GgufFile> file;
    std::shared_ptr<inference::LanguageModel> model;
    std::shared_ptr<const inference::Tokenizer> tokenizer;
    std::shared_ptr<const PromptRenderer> renderer;
    std::unique_ptr<inference::LanguageSession> session;
    std::unique_ptr<inference::Generator> generator;
    std::unique_ptr<vision::Mmproj> mmproj;
    std::string mmprojKey;
    vision::EmbeddingCache imageRows;

    // Users before what they use: the generator, the session, the model, the backend last.
    void reset() {
        mmproj.reset();
        generator.reset();
        session.reset();
        renderer.reset();
        tokenizer.reset();
        model.reset();
        file.reset();
        gpu.reset();
        backend.reset();
    }
};

namespace {

// Throws (saying what it needs and what is free) when a CPU session of `context` tokens of
// `model` needs more than `available` bytes: weights are mapped, not copied, so what must fit
// is the whole estimate (the KV cache above all).
void requireFits(const inference::LanguageModel& model, std::int64_t context, inference::DType kvType, std::uint64_t snapshotBytes,
                 std::uint64_t available) {
    const auto need = model.estimateMemory(context, kvType, snapshotBytes);
    if (need.total() > available)
        throw std::runtime_error("it needs about " + inference::formatBytes(need.total()) + " (weights " + inference::formatBytes(need.weights) +
                                 ", KV cache " + inference::formatBytes(need.kvCache) + " for " + std::to_string(context) + " tokens) but only " +
                                 inference::formatBytes(available) + " is free; lower the context length in Settings");
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
    const std::int64_t context = std::min<std::int64_t>(contextSize > 0 ? contextSize : 4096, c.contextLength);
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
    // What is loaded now comes back if the new file turns out unreadable.
    const bool wasLoaded = loaded_, hadProjector = projectorLoaded_;
    auto previousRenderer = renderer_;
    loaded_ = false;
    projectorLoaded_ = false;
    renderer_.reset();
    cancelLoad_.store(false);
    QMetaObject::invokeMethod(worker_, [this, path, options, state = state_, wasLoaded, hadProjector, previousRenderer] {
        bool kept = static_cast<bool>(state->model);  // the old model is still in place
        // Between steps, a cancelled load drops what it has (the old model stays if still there).
        const auto cancelled = [&] {
            if (!cancelLoad_.load()) return false;
            if (!kept) state->reset();
            QMetaObject::invokeMethod(this, [this, kept, wasLoaded, hadProjector, previousRenderer] {
                if (kept) loaded_ = wasLoaded, projectorLoaded_ = hadProjector, renderer_ = previousRenderer;
                emit loadCancelled();
            });
            return true;
        };
        try {
            // The file is read and checked (format, family, vocabulary, template, memory) before
            // the loaded model is let go: a file that cannot run leaves the working one in place.
            auto file = std::make_shared<const inference::GgufFile>(inference::GgufFile::open(path.toStdString()));
            if (cancelled()) return;
            auto model = inference::LanguageModel::load(file);
            if (cancelled()) return;
            auto tokenizer = std::make_shared<const inference::Tokenizer>(inference::Tokenizer::fromGguf(*file));
            auto tpl = inference::ChatTemplate::fromGguf(*file);
            auto renderer = std::make_shared<const PromptRenderer>(tpl ? std::move(*tpl) : inference::ChatTemplate::builtin("chatml"), tokenizer);
            const auto& c = model->config();
            const std::int64_t context = std::min<std::int64_t>(options.contextSize > 0 ? options.contextSize : 4096, c.contextLength);
            // Q8_0 keys and values go in blocks of 32: heads of other sizes keep F16.
            const auto kvType = options.kvType == inference::DType::Q8_0 && c.headDim % 32 != 0 ? inference::DType::F16 : options.kvType;
            if (cancelled()) return;
            // On the CPU the whole estimate must fit in free memory, with what the loaded model
            // frees counted as free (the same check as lumen-cli's, whose weights are mapped).
            const bool mayUseGpu = options.gpuLayers != 0 && !inference::queryComputeDevices().gpus.empty();
            const auto snapshotBytes = static_cast<std::uint64_t>(std::max(0, options.snapshotMiB)) << 20;
            if (const auto available = inference::availableMemory(); !mayUseGpu && available) {
                const std::uint64_t freed = state->session ? state->model->estimateMemory(state->session->contextSize(), kvType, snapshotBytes).total() : 0;
                requireFits(*model, context, kvType, snapshotBytes, *available + freed);
            }
            state->reset();
            kept = false;
            state->file = std::move(file);
            state->model = std::move(model);
            state->tokenizer = std::move(tokenizer);
            state->renderer = std::move(renderer);
            state->backend = inference::makeCpuBackend({.threads = options.threads});
            // The last layers on the GPU when one is usable: as many as fit, or as asked.
            std::int64_t gpuLayers = 0;
            if (options.gpuLayers != 0) {
                try {
                    state->gpu = inference::makeCudaBackend();
                    const auto devices = inference::queryComputeDevices();
                    const std::uint64_t free = devices.gpus.empty() ? 0 : devices.gpus.front().freeMemory;
                    gpuLayers = options.gpuLayers < 0 ? state->model->gpuLayersFitting(free * 9 / 10, context, kvType)
                                                      : std::min<std::int64_t>(options.gpuLayers, c.nLayers);
                } catch (const std::exception& e) {
                    qCInfo(lcApp) << "computing on the CPU:" << e.what();
                    state->gpu.reset();
                }
            }
            if (gpuLayers == 0) state->gpu.reset();
            // The same check as lumen-cli's: weights are mapped, not copied, so on the CPU what
            // must fit in free memory is the whole estimate (the KV cache above all).
            if (const auto available = inference::availableMemory(); gpuLayers == 0 && available)
                requireFits(*state->model, context, kvType, snapshotBytes, *available);
            state->session = std::make_unique<inference::LanguageSession>(state->model, inference::LayerSplit{state->backend.get(), state->gpu.get(), gpuLayers}, context,
                                                                          kvType);
            state->session->setSnapshotLimit(snapshotBytes);
            state->generator = std::make_unique<inference::Generator>(*state->session, *state->tokenizer);
            std::int64_t params = 0;
            for (const auto& t : state->file->tensors()) params += t.elements;
            const QString where = gpuLayers == 0 ? tr("CPU") : gpuLayers == c.nLayers ? tr("GPU") : tr("GPU %1 of %2 layers").arg(gpuLayers).arg(c.nLayers);
            const QString name = QStringLiteral("%1 (%2, %3 layers, %4M parameters, %5)")
                                     .arg(QFileInfo(path).fileName(), QString::fromStdString(c.architecture))
                                     .arg(c.nLayers)
                                     .arg(static_cast<double>(params) / 1e6, 0, 'f', 1)
                                     .arg(where);
            QMetaObject::invokeMethod(this, [this, name, path, renderer = state->renderer] {
                renderer_ = renderer;
                loaded_ = true;
                modelName_ = name;
                modelPath_ = path;
                emit modelLoaded(name);
            });
        } catch (const std::exception& e) {
            if (!kept) state->reset();
            const QString message = kept ? tr("%1 could not be loaded: %2. %3 stays loaded.")
                                               .arg(QFileInfo(path).fileName(), QString::fromUtf8(e.what()), QFileInfo(QString::fromStdString(state->file->displayName())).fileName())
                                         : tr("%1 could not be loaded: %2").arg(QFileInfo(path).fileName(), QString::fromUtf8(e.what()));
            qCWarning(lcApp) << message;
            QMetaObject::invokeMethod(this, [this, message, kept, wasLoaded, hadProjector, previousRenderer] {
                loaded_ = kept && wasLoaded;
                if (kept) projectorLoaded_ = hadProjector, renderer_ = previousRenderer;
                emit loadFailed(message);
            });
        }
    });
}

void ChatEngine::loadImageProjector(const QString& path) {
    projectorLoaded_ = false;
    QMetaObject::invokeMethod(worker_, [this, path, state = state_] {
        try {
            if (!state->model) throw inference::FormatError("load a language model first");
            auto mmproj = vision::Mmproj::load(path.toStdString(), *state->backend);
            mmproj->checkFits(state->model->config().dim, state->file->displayName());
            state->mmproj = std::move(mmproj);
            state->mmprojKey = path.toStdString();
            // LLaVA's own turns for an LLM that brings no template.
            if (!inference::ChatTemplate::fromGguf(*state->file))
                state->renderer = std::make_shared<const PromptRenderer>(inference::ChatTemplate::builtin("llava"), state->tokenizer);
            const QString description = QString::fromStdString(state->mmproj->description());
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

int ChatEngine::startReply(const nlohmann::ordered_json& messages, const inference::GenerationParams& params, const std::map<std::string, QByteArray>& images,
                           bool think) {
    if (!loaded_ || busy_.load()) return 0;
    const int id = nextReply_++;
    busy_.store(true);
    cancel_.store(false);
    QMetaObject::invokeMethod(worker_, [this, id, messages, params, images, think, state = state_] {
        QVariantMap result;
        try {
            if (!state->generator) throw std::runtime_error("no model is loaded");
            const auto& vocab = state->tokenizer->vocabulary();
            // Images: their projected rows (cached by content) and placeholder ids, in message order;
            // without a projector they are left out.
            nlohmann::ordered_json conversation = nlohmann::ordered_json::array();
            std::vector<std::vector<inference::TokenId>> placeholders;
            std::vector<std::shared_ptr<const std::vector<float>>> keep;
            inference::EmbeddingRows rows;
            for (auto m : messages) {
                if (!state->mmproj) m.erase("images");
                if (m.contains("images"))
                    for (const auto& sha : m["images"]) {
                        const std::string key = sha.get<std::string>();
                        auto encoded = state->imageRows.find(state->mmprojKey, key);
                        if (!encoded) {
                            const QByteArray& bytes = images.at(key);
                            state->imageRows.insert(state->mmprojKey, key,
                                                    state->mmproj->encode(vision::decodeImage({reinterpret_cast<const std::uint8_t*>(bytes.constData()),
                                                                                               static_cast<std::size_t>(bytes.size())},
                                                                                              {.neededSide = vision::kLargestModelSide})));
                            encoded = state->imageRows.find(state->mmprojKey, key);
                        }
                        const std::int64_t width = state->mmproj->outputWidth(), n = static_cast<std::int64_t>(encoded->size()) / width;
                        placeholders.push_back(inference::imagePlaceholders(inference::imageRowsKey(state->mmprojKey, key), n));
                        for (std::int64_t r = 0; r < n; ++r) rows[placeholders.back()[static_cast<std::size_t>(r)]] = encoded->data() + r * width;
                        keep.push_back(encoded);
                    }
                conversation.push_back(std::move(m));
            }
            nlohmann::ordered_json extras = nlohmann::ordered_json::object();
            if (!think) extras["enable_thinking"] = false;
            const std::string prompt = state->renderer->render(conversation, extras, &cancel_);  // Stop also stops a long template
            emit promptRendered(id, QString::fromStdString(prompt));
            const std::string bos = vocab.bos ? vocab.tokens[static_cast<std::size_t>(*vocab.bos)] : std::string();
            const bool templateHasBos = !bos.empty() && prompt.rfind(bos, 0) == 0;
            const auto tokens = placeholders.empty() ? state->renderer->tokenize(prompt)
                                                     : inference::spliceImages(*state->tokenizer, prompt, placeholders, !templateHasBos);
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

void ChatEngine::stop() { cancel_.store(true); }

void ChatEngine::cancelLoad() { cancelLoad_.store(true); }

}  // namespace lumen::app
