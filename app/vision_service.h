#pragma once
// Image classification for the desktop app: a CLIP folder loaded once, and Classify on a stored
// image with a label set (zero-shot from its labels and prompt templates, few-shot from its
// example images, or both blended). Loads and classifications are jobs on the runner's vision
// lane, with progress and cancellation: a job reads images and cached embeddings through a
// read-only connection of its own; new embeddings come back and are stored on the caller's
// thread, as is the result. The result is posted to the chat as a reply with the image, each
// label with a bar and its probability.

#include <QObject>
#include <QString>
#include <memory>
#include <string>

#include "app/job_runner.h"
#include "app/library.h"

namespace lumen::inference {
class Backend;
}
namespace lumen::vision {
class ClipModel;
class ImageEncoder;
}

namespace lumen::app {

// What the embedding cache keys a model folder's vectors by: "sha256:" and the hex SHA-256 over
// its weight files (*.safetensors, by name: each name, size and content). Replaced weights get
// a new id, so their vectors are computed afresh; the same weights anywhere share theirs.
// Throws std::runtime_error when a file cannot be read.
std::string weightsId(const QString& folder);

class VisionService : public QObject {
    Q_OBJECT
public:
    // `jobs` (whose vision lane runs the models) must outlive the service.
    VisionService(Library& library, JobRunner& jobs, QObject* parent = nullptr);
    ~VisionService() override;

    // Loads a CLIP folder on a worker thread: clipLoaded or failed. Remembered for the next start.
    void loadClip(const QString& folder);
    // A DINOv2 folder: few-shot label sets then compare DINOv2 features of the examples.
    void loadDinov2(const QString& folder);
    bool isLoaded() const { return static_cast<bool>(clip_); }
    bool hasDinov2() const { return static_cast<bool>(dinov2_); }
    bool isBusy() const { return busy_; }
    // A classification runs (which cancel() stops; a load runs to its end).
    bool isClassifying() const { return classifying_; }

    // Classifies image `sha256` with a label set and posts the result in the chat. False (with
    // `failed` emitted) when it cannot start.
    bool classify(std::int64_t chatId, const std::string& sha256, std::int64_t labelSetId);
    // Ends the running classification early (cancelled(); the embeddings it computed are kept);
    // a load not yet started is dropped.
    void cancel();

    struct Outcome;  // a classification's result (vision_service.cpp)

    // The reply text for scores (label, probability), most probable first: "label  ████░░ 92.1%".
    static QString formatScores(const QString& heading, const std::vector<std::pair<std::string, float>>& scores);

    static constexpr const char* kClipPathKey = "model.clip.path";
    static constexpr const char* kDinov2PathKey = "model.dinov2.path";

signals:
    void clipLoaded(const QString& description);
    void dinov2Loaded(const QString& description);
    void failed(const QString& message);
    void classified(qint64 chatId, qint64 messageId);
    void cancelled();

private:
    void finishLoad(const QString& folder, bool dinov2, const std::shared_ptr<inference::Backend>& backend,
                    const std::shared_ptr<vision::ImageEncoder>& result, const std::string& id, const QString& error);
    void finishClassify(const Outcome& out, std::int64_t chatId, const QString& heading, const std::string& modelId,
                        const std::string& textModelId, const QString& modelName);

    Library& library_;
    JobRunner& jobs_;
    JobRunner::JobId job_ = 0;  // the load or classification running
    std::shared_ptr<inference::Backend> backend_;  // the loaded model's (it goes after the model)
    void load(const QString& folder, bool dinov2);

    std::shared_ptr<vision::ClipModel> clip_;
    std::shared_ptr<vision::ImageEncoder> dinov2_;
    std::shared_ptr<inference::Backend> dinov2Backend_;
    QString clipPath_, clipDescription_, dinov2Path_, dinov2Description_;
    std::string clipId_, dinov2Id_;  // the embedding cache's keys (weightsId)
    bool busy_ = false;
    bool classifying_ = false;
};

}  // namespace lumen::app
