#pragma once
// Image classification for the desktop app: a CLIP folder loaded once, and Classify on a stored
// image with a label set (zero-shot from its labels and prompt templates, few-shot from its
// example images, or both blended). The model runs on a worker thread; the database is read and
// written on the caller's thread only: embeddings already cached there are passed in, new ones
// come back and are stored. The result is posted to the chat as a reply with the image, each
// label with a bar and its probability.

#include <QFutureWatcher>
#include <QObject>
#include <QString>
#include <memory>

#include "app/library.h"

namespace lumen::inference {
class Backend;
}
namespace lumen::vision {
class ClipModel;
}

namespace lumen::app {

class VisionService : public QObject {
    Q_OBJECT
public:
    explicit VisionService(Library& library, QObject* parent = nullptr);
    ~VisionService() override;

    // Loads a CLIP folder on a worker thread: clipLoaded or failed. Remembered for the next start.
    void loadClip(const QString& folder);
    bool isLoaded() const { return static_cast<bool>(clip_); }
    bool isBusy() const { return busy_; }

    // Classifies image `sha256` with a label set and posts the result in the chat. False (with
    // `failed` emitted) when it cannot start.
    bool classify(std::int64_t chatId, const std::string& sha256, std::int64_t labelSetId);

    // The reply text for scores (label, probability), most probable first: "label  ████░░ 92.1%".
    static QString formatScores(const QString& heading, const std::vector<std::pair<std::string, float>>& scores);

    static constexpr const char* kClipPathKey = "model.clip.path";

signals:
    void clipLoaded(const QString& description);
    void failed(const QString& message);
    void classified(qint64 chatId, qint64 messageId);

private:
    Library& library_;
    std::shared_ptr<inference::Backend> backend_;  // the loaded model's (it goes after the model)
    std::shared_ptr<vision::ClipModel> clip_;
    QString clipPath_, clipDescription_;
    bool busy_ = false;
};

}  // namespace lumen::app
