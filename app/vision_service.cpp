#include "app/vision_service.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QtConcurrent>

#include "app/logging.h"
#include "storage/sha256.h"
#include "inference/core/backend.h"
#include "vision/classifier.h"
#include "vision/clip_model.h"
#include "vision/dinov2_model.h"
#include "vision/image_decode.h"

namespace lumen::app {
namespace {

using Vector = std::vector<float>;

// What the worker needs, gathered on the caller's thread.
struct Job {
    std::shared_ptr<vision::ClipModel> clip;          // prompts (zero-shot, blended)
    std::shared_ptr<vision::ImageEncoder> features;   // image features: CLIP, or DINOv2 for few-shot
    std::string modelId;                              // the features' model, for the cache
    float scale = 100.0f;
    storage::LabelSet set;
    std::string query;                                 // SHA-256 of the image to classify
    std::map<std::string, QByteArray> imageBytes;      // images whose embedding is not cached
    std::map<std::string, Vector> imageEmbeddings;     // cached ones
    std::map<std::string, Vector> textEmbeddings;      // cached prompt embeddings
};

struct Outcome {
    std::vector<std::pair<std::string, float>> scores;
    std::map<std::string, Vector> newImages, newTexts;
    QString error;
};

std::string fill(const std::string& tpl, const std::string& label) {
    const auto at = tpl.find("{}");
    return at == std::string::npos ? tpl + " " + label : tpl.substr(0, at) + label + tpl.substr(at + 2);
}

Outcome run(Job job) {
    Outcome out;
    try {
        const auto image = [&](const std::string& sha) -> Vector {
            if (auto it = job.imageEmbeddings.find(sha); it != job.imageEmbeddings.end()) return it->second;
            const QByteArray& b = job.imageBytes.at(sha);
            Vector e = job.features->embedImage(vision::decodeImage({reinterpret_cast<const std::uint8_t*>(b.constData()), static_cast<std::size_t>(b.size())},
                                                                    {.neededSide = vision::kLargestModelSide}));
            out.newImages[sha] = e;
            job.imageEmbeddings[sha] = e;
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
                    if (auto it = job.textEmbeddings.find(prompt); it != job.textEmbeddings.end()) {
                        e = it->second;
                    } else {
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
        for (const auto& s : classifier->classify(image(job.query), 5)) out.scores.emplace_back(s.label, s.probability);
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

VisionService::VisionService(Library& library, QObject* parent) : QObject(parent), library_(library) {}

VisionService::~VisionService() { QThreadPool::globalInstance()->waitForDone(); }

void VisionService::loadClip(const QString& folder) { load(folder, false); }
void VisionService::loadDinov2(const QString& folder) { load(folder, true); }

void VisionService::load(const QString& folder, bool dinov2) {
    if (busy_) {
        emit failed(tr("Wait for the running classification or load to finish."));
        return;
    }
    busy_ = true;
    auto* watcher = new QFutureWatcher<QString>(this);
    auto backend = std::shared_ptr<inference::Backend>(inference::makeCpuBackend());
    auto result = std::make_shared<std::shared_ptr<vision::ImageEncoder>>();
    auto id = std::make_shared<std::string>();
    connect(watcher, &QFutureWatcher<QString>::finished, this, [this, watcher, backend, result, id, folder, dinov2] {
        watcher->deleteLater();
        busy_ = false;
        const QString error = watcher->result();
        if (!error.isEmpty()) {
            emit failed(error);
            return;
        }
        const QString description = QString::fromStdString((*result)->description());
        if (dinov2) {
            dinov2_ = *result;          // the old model goes first,
            dinov2Backend_ = backend;   // then its backend
            dinov2Path_ = folder;
            dinov2Id_ = *id;
            dinov2Description_ = description;
        } else {
            clip_ = std::static_pointer_cast<vision::ClipModel>(*result);
            backend_ = backend;
            clipPath_ = folder;
            clipId_ = *id;
            clipDescription_ = description;
        }
        try {
            library_.settings().set(dinov2 ? kDinov2PathKey : kClipPathKey, folder.toStdString());
        } catch (const storage::Error& e) {
            qCWarning(lcApp) << "remembering the model folder failed:" << e.what();
        }
        emit dinov2 ? dinov2Loaded(description) : clipLoaded(description);
    });
    watcher->setFuture(QtConcurrent::run([folder, backend, result, id, dinov2]() -> QString {
        try {
            *id = weightsId(folder);  // (read here, off the window's thread)
            if (dinov2) {
                auto model = vision::openImageEncoder(folder.toStdString(), *backend);
                if (!dynamic_cast<vision::Dinov2Model*>(model.get())) return tr("%1 is not a DINOv2 model").arg(folder);
                *result = std::shared_ptr<vision::ImageEncoder>(std::move(model));
            } else {
                auto model = vision::ClipModel::load(folder.toStdString(), *backend);
                if (!model->hasText()) return tr("%1 has no text encoder: zero-shot classification needs a full CLIP model").arg(folder);
                *result = std::shared_ptr<vision::ImageEncoder>(std::move(model));
            }
            return {};
        } catch (const std::exception& e) {
            return tr("%1 could not be loaded: %2").arg(QFileInfo(folder).fileName(), QString::fromUtf8(e.what()));
        }
    }));
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
        job.scale = useDinov2 ? 20.0f : clip_->logitScale();
        modelName = useDinov2 ? dinov2Description_ : clipDescription_;
        std::vector<std::string> shas{sha256};
        for (const auto& l : set->labels) shas.insert(shas.end(), l.exampleImages.begin(), l.exampleImages.end());
        for (const auto& sha : shas) {
            if (auto e = library_.embeddings().get(storage::EmbeddingKind::Image, sha, job.modelId)) {
                job.imageEmbeddings[sha] = *e;
            } else if (auto b = library_.images().bytes(sha)) {
                job.imageBytes[sha] = QByteArray(reinterpret_cast<const char*>(b->data()), static_cast<qsizetype>(b->size()));
            }
        }
        const auto& tpls = set->promptTemplates.empty() ? vision::defaultTemplates() : set->promptTemplates;
        for (const auto& l : set->labels)
            for (const auto& tpl : tpls)
                if (auto e = library_.embeddings().get(storage::EmbeddingKind::Text, fill(tpl, l.name), clipId_)) job.textEmbeddings[fill(tpl, l.name)] = *e;
    } catch (const storage::Error& e) {
        emit failed(QString::fromUtf8(e.what()));
        return false;
    }
    busy_ = true;
    // (the result refers to the image above it rather than posting it again: issue 24)
    const QString heading = tr("The image above, classified with “%1” (%2, %3):")
                                .arg(QString::fromStdString(job.set.name), QString::fromLatin1(storage::toString(job.set.mode).data()), modelName);
    const std::string modelId = job.modelId, textModelId = clipId_;
    auto* watcher = new QFutureWatcher<Outcome>(this);
    connect(watcher, &QFutureWatcher<Outcome>::finished, this, [this, watcher, chatId, sha256, heading, modelId, textModelId, modelName] {
        watcher->deleteLater();
        busy_ = false;
        const Outcome out = watcher->result();
        if (!out.error.isEmpty()) {
            emit failed(tr("Classification failed: %1").arg(out.error));
            return;
        }
        try {
            for (const auto& [sha, e] : out.newImages) library_.embeddings().put(storage::EmbeddingKind::Image, sha, modelId, e);
            for (const auto& [text, e] : out.newTexts) library_.embeddings().put(storage::EmbeddingKind::Text, text, textModelId, e);
            storage::NewMessage m;
            m.role = storage::Role::Assistant;
            m.content = formatScores(heading, out.scores).toStdString();
            m.metrics.model = modelName.toStdString();
            const std::int64_t id = library_.chats().addMessage(chatId, m);
            emit classified(chatId, id);
        } catch (const storage::Error& e) {
            emit failed(QString::fromUtf8(e.what()));
        }
    });
    watcher->setFuture(QtConcurrent::run(run, std::move(job)));
    return true;
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
