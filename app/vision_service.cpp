#include "app/vision_service.h"

#include <QCoreApplication>
#include <QDir>
#include <QSignalBlocker>
#include <set>
#include <QFile>
#include <QFileInfo>

#include "app/logging.h"
#include "storage/sha256.h"
#include "inference/core/backend.h"
#include "inference/core/thread_pool.h"
#include "vision/classifier.h"
#include "vision/clip_model.h"
#include "vision/dinov2_model.h"
#include "vision/image_decode.h"

namespace lumen::app {

struct VisionService::Outcome {
    std::vector<std::pair<std::string, float>> scores;
    std::map<std::string, std::vector<float>> newImages, newTexts;
    QString error;
    bool cancelled = false;
};

namespace {

using Vector = std::vector<float>;
using Outcome = VisionService::Outcome;

// What a classification needs: the label set and models, gathered on the caller's thread; the
// images and cached embeddings are read in the job, through a connection of its own.
struct Job {
    std::shared_ptr<vision::ClipModel> clip;          // prompts (zero-shot, blended)
    std::shared_ptr<vision::ImageEncoder> features;   // image features: CLIP, or DINOv2 for few-shot
    std::string modelId;                              // the features' model, for the cache
    std::string textModelId;                          // CLIP's, for cached prompt embeddings
    float scale = 100.0f;
    storage::LabelSet set;
    std::string query;                                 // SHA-256 of the image to classify
    QString databasePath;
};

struct Cancelled {};  // thrown between images when the job is cancelled

std::string fill(const std::string& tpl, const std::string& label) {
    const auto at = tpl.find("{}");
    return at == std::string::npos ? tpl + " " + label : tpl.substr(0, at) + label + tpl.substr(at + 2);
}

Outcome run(Job job, const JobControl& control) {
    Outcome out;
    try {
        // Cached embeddings first (quick), so progress counts only the images to encode.
        LibraryReader reader(job.databasePath);
        // (the examples only where the mode uses them; each image once)
        std::set<std::string> shas{job.query};
        if (job.set.mode != storage::ClassifyMode::ZeroShot)
            for (const auto& l : job.set.labels) shas.insert(l.exampleImages.begin(), l.exampleImages.end());
        std::map<std::string, Vector> imageEmbeddings;
        std::size_t toEncode = 0;
        for (const auto& sha : shas) {
            if (auto e = reader.embedding(storage::EmbeddingKind::Image, sha, job.modelId)) imageEmbeddings[sha] = std::move(*e);
            else ++toEncode;
        }
        std::size_t encoded = 0;
        const auto image = [&](const std::string& sha) -> Vector {
            if (auto it = imageEmbeddings.find(sha); it != imageEmbeddings.end()) return it->second;
            if (control.cancelled()) throw Cancelled{};
            control.progress(static_cast<double>(encoded) / static_cast<double>(std::max<std::size_t>(toEncode, 1)),
                             QObject::tr("Encoding image %1 of %2").arg(encoded + 1).arg(toEncode));
            const auto b = reader.imageBytes(sha);
            if (!b) throw std::runtime_error("image " + sha.substr(0, 12) + " is no longer in the library");
            Vector e = job.features->embedImage(vision::decodeImage({reinterpret_cast<const std::uint8_t*>(b->constData()), static_cast<std::size_t>(b->size())},
                                                                    {.neededSide = vision::kLargestModelSide}));
            ++encoded;
            out.newImages[sha] = e;
            imageEmbeddings[sha] = e;
            return e;
        };
        std::vector<std::string> labels;
        for (const auto& l : job.set.labels) labels.push_back(l.name);
        const auto zeroShot = [&] {
            // Text embeddings from the cache, the rest computed (and handed back to be cached).
            std::vector<Vector> classes;
            const auto& tpls = job.set.promptTemplates.empty() ? vision::defaultTemplates() : job.set.promptTemplates;
            for (const auto& label : labels) {
                Vector sum;
                for (const auto& tpl : tpls) {
                    const std::string prompt = fill(tpl, label);
                    Vector e;
                    if (auto cached = reader.embedding(storage::EmbeddingKind::Text, prompt, job.textModelId)) {
                        e = std::move(*cached);
                    } else if (auto it = out.newTexts.find(prompt); it != out.newTexts.end()) {
                        e = it->second;
                    } else {
                        if (control.cancelled()) throw Cancelled{};
                        e = job.clip->embedText(prompt);
                        out.newTexts[prompt] = e;
                    }
                    vision::normalize(e);
                    if (sum.empty()) sum.assign(e.size(), 0.0f);
                    for (std::size_t i = 0; i < e.size(); ++i) sum[i] += e[i];
                }
                classes.push_back(sum);
            }
            return vision::Classifier::fromEmbeddings(labels, classes, job.clip->logitScale());
        };
        vision::Examples examples;
        examples.labels = labels;
        if (job.set.mode != storage::ClassifyMode::ZeroShot)
            for (std::size_t k = 0; k < job.set.labels.size(); ++k)
                for (const auto& sha : job.set.labels[k].exampleImages) {
                    examples.features.push_back(image(sha));
                    examples.classOf.push_back(static_cast<int>(k));
                }
        std::optional<vision::Classifier> classifier;
        switch (job.set.mode) {
            case storage::ClassifyMode::ZeroShot: classifier = zeroShot(); break;
            case storage::ClassifyMode::FewShot: classifier = vision::Classifier::prototypes(examples, job.scale); break;
            case storage::ClassifyMode::Blended: classifier = vision::Classifier::tipAdapter(zeroShot(), examples); break;
        }
        const Vector query = image(job.query);
        if (control.cancelled()) throw Cancelled{};
        for (const auto& s : classifier->classify(query, 5)) out.scores.emplace_back(s.label, s.probability);
    } catch (const Cancelled&) {
        out.cancelled = true;  // (what was encoded so far is still cached)
    } catch (const std::exception& e) {
        out.error = QString::fromUtf8(e.what());
    }
    return out;
}

}  // namespace

std::string weightsId(const QString& folder) {
    QDir dir(folder);
    const QStringList files = dir.entryList({QStringLiteral("*.safetensors")}, QDir::Files, QDir::Name);
    storage::Sha256 all;
    std::vector<std::uint8_t> buffer(std::size_t{1} << 20);
    for (const QString& name : files) {
        QFile f(dir.filePath(name));
        if (!f.open(QIODevice::ReadOnly)) throw std::runtime_error("cannot read " + dir.filePath(name).toStdString() + ": " + f.errorString().toStdString());
        all.update(name.toStdString() + '\0' + std::to_string(f.size()) + '\0');
        for (qint64 got; (got = f.read(reinterpret_cast<char*>(buffer.data()), static_cast<qint64>(buffer.size()))) > 0;)
            all.update(std::span<const std::uint8_t>(buffer.data(), static_cast<std::size_t>(got)));
    }
    return "sha256:" + all.finishHex();
}

VisionService::VisionService(Library& library, JobRunner& jobs, QObject* parent) : QObject(parent), library_(library), jobs_(jobs) {}

VisionService::~VisionService() {
    if (job_) jobs_.cancel(job_);
    jobs_.wait(Lane::Vision);  // no job of this service runs on after it
    // What the last job posted (the embeddings a stopped classification computed) is stored
    // now; silently, as the window that listens may be half gone.
    const QSignalBlocker quiet(this);
    QCoreApplication::sendPostedEvents(this, QEvent::MetaCall);
}

void VisionService::cancel() {
    if (job_) jobs_.cancel(job_);
}

void VisionService::loadClip(const QString& folder) { load(folder, false); }
void VisionService::loadDinov2(const QString& folder) { load(folder, true); }

void VisionService::load(const QString& folder, bool dinov2) {
    if (busy_) {
        emit failed(tr("Wait for the running classification or load to finish."));
        return;
    }
    busy_ = true;
    auto backend = std::shared_ptr<inference::Backend>(inference::makeCpuBackend({.pool = jobs_.cpuPool()}));
    const QString title = dinov2 ? tr("Loading the DINOv2 model") : tr("Loading the CLIP model");
    job_ = jobs_.submit(Lane::Vision, title, [this, folder, backend, dinov2](JobControl& control) {
        std::shared_ptr<vision::ImageEncoder> result;
        std::string id;
        QString error;
        try {
            if (control.cancelled()) {
                QMetaObject::invokeMethod(this, [this] {  // (stopped before it began: nothing to say)
                    busy_ = false;
                    job_ = 0;
                });
                return;
            }
            id = weightsId(folder);  // (read here, off the window's thread)
            if (dinov2) {
                auto model = vision::openImageEncoder(folder.toStdString(), *backend);
                if (!dynamic_cast<vision::Dinov2Model*>(model.get())) error = tr("%1 is not a DINOv2 model").arg(folder);
                else result = std::shared_ptr<vision::ImageEncoder>(std::move(model));
            } else {
                auto model = vision::ClipModel::load(folder.toStdString(), *backend);
                if (!model->hasText()) error = tr("%1 has no text encoder: zero-shot classification needs a full CLIP model").arg(folder);
                else result = std::shared_ptr<vision::ImageEncoder>(std::move(model));
            }
        } catch (const std::exception& e) {
            error = tr("%1 could not be loaded: %2").arg(QFileInfo(folder).fileName(), QString::fromUtf8(e.what()));
        }
        QMetaObject::invokeMethod(this, [this, backend, result, id, error, folder, dinov2] { finishLoad(folder, dinov2, backend, result, id, error); });
    });
}

void VisionService::finishLoad(const QString& folder, bool dinov2, const std::shared_ptr<inference::Backend>& backend,
                               const std::shared_ptr<vision::ImageEncoder>& result, const std::string& id, const QString& error) {
    busy_ = false;
    job_ = 0;
    if (!error.isEmpty()) {
        emit failed(error);
        return;
    }
    const QString description = QString::fromStdString(result->description());
    if (dinov2) {
        dinov2_ = result;          // the old model goes first,
        dinov2Backend_ = backend;  // then its backend
        dinov2Path_ = folder;
        dinov2Id_ = id;
        dinov2Description_ = description;
    } else {
        clip_ = std::static_pointer_cast<vision::ClipModel>(result);
        backend_ = backend;
        clipPath_ = folder;
        clipId_ = id;
        clipDescription_ = description;
    }
    try {
        library_.settings().set(dinov2 ? kDinov2PathKey : kClipPathKey, folder.toStdString());
    } catch (const storage::Error& e) {
        qCWarning(lcApp) << "remembering the model folder failed:" << e.what();
    }
    emit dinov2 ? dinov2Loaded(description) : clipLoaded(description);
}

bool VisionService::classify(std::int64_t chatId, const std::string& sha256, std::int64_t labelSetId) {
    if (busy_) {
        emit failed(tr("A classification is still running."));
        return false;
    }
    Job job;
    job.query = sha256;
    QString modelName;
    try {
        const auto set = library_.labelSets().get(labelSetId);
        if (!set || set->labels.empty()) {
            emit failed(tr("The label set has no labels."));
            return false;
        }
        job.set = *set;
        // Few-shot compares DINOv2 features when a DINOv2 model is loaded; the rest needs CLIP.
        const bool useDinov2 = set->mode == storage::ClassifyMode::FewShot && dinov2_;
        if (!useDinov2 && !clip_) {
            emit failed(tr("Classifying needs a CLIP model: File ▸ Open CLIP Folder… (few-shot label sets can use a DINOv2 folder instead)."));
            return false;
        }
        job.clip = clip_;
        job.features = useDinov2 ? dinov2_ : std::static_pointer_cast<vision::ImageEncoder>(clip_);
        job.modelId = useDinov2 ? dinov2Id_ : clipId_;
        job.textModelId = clipId_;
        job.scale = useDinov2 ? 20.0f : clip_->logitScale();
        job.databasePath = library_.path();
        modelName = useDinov2 ? dinov2Description_ : clipDescription_;
    } catch (const storage::Error& e) {
        emit failed(QString::fromUtf8(e.what()));
        return false;
    }
    busy_ = true;
    // (the result refers to the image above it rather than posting it again: issue 24)
    const QString heading = tr("The image above, classified with “%1” (%2, %3):")
                                .arg(QString::fromStdString(job.set.name), QString::fromLatin1(storage::toString(job.set.mode).data()), modelName);
    const std::string modelId = job.modelId, textModelId = clipId_;
    classifying_ = true;
    job_ = jobs_.submit(Lane::Vision, tr("Classifying with “%1”").arg(QString::fromStdString(job.set.name)),
                        [this, job = std::move(job), chatId, heading, modelId, textModelId, modelName](JobControl& control) mutable {
                            Outcome out = run(std::move(job), control);
                            QMetaObject::invokeMethod(this, [this, out = std::move(out), chatId, heading, modelId, textModelId, modelName] {
                                finishClassify(out, chatId, heading, modelId, textModelId, modelName);
                            });
                        });
    return true;
}

void VisionService::finishClassify(const Outcome& out, std::int64_t chatId, const QString& heading, const std::string& modelId,
                                   const std::string& textModelId, const QString& modelName) {
    busy_ = false;
    classifying_ = false;
    job_ = 0;
    try {
        // What was computed is cached even when the classification ended early.
        for (const auto& [sha, e] : out.newImages) library_.embeddings().put(storage::EmbeddingKind::Image, sha, modelId, e);
        for (const auto& [text, e] : out.newTexts) library_.embeddings().put(storage::EmbeddingKind::Text, text, textModelId, e);
        if (out.cancelled) {
            emit cancelled();
            return;
        }
        if (!out.error.isEmpty()) {
            emit failed(tr("Classification failed: %1").arg(out.error));
            return;
        }
        storage::NewMessage m;
        m.role = storage::Role::Assistant;
        m.content = formatScores(heading, out.scores).toStdString();
        m.metrics.model = modelName.toStdString();
        const std::int64_t id = library_.chats().addMessage(chatId, m);
        emit classified(chatId, id);
    } catch (const storage::Error& e) {
        emit failed(QString::fromUtf8(e.what()));
    }
}

QString VisionService::formatScores(const QString& heading, const std::vector<std::pair<std::string, float>>& scores) {
    QString text = heading;
    int width = 0;
    for (const auto& [label, p] : scores) width = std::max(width, static_cast<int>(QString::fromStdString(label).size()));
    for (const auto& [label, p] : scores) {
        const int filled = static_cast<int>(std::lround(p * 20.0f));
        text += QStringLiteral("\n%1  %2%3 %4%")
                    .arg(QString::fromStdString(label), -width)
                    .arg(QString(filled, QChar(0x2588)), QString(20 - filled, QChar(0x2591)))
                    .arg(static_cast<double>(p) * 100.0, 5, 'f', 1);
    }
    return text;
}

}  // namespace lumen::app
