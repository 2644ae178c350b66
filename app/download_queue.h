#pragma once
// The app's model downloads: a queue on the job runner's downloads lane (one at a time, in the
// order asked), each with its progress (bytes, speed, time left), pause (what arrived stays in
// the part file), resume (from there, also after a restart), cancel (the part file goes) and
// the model's path once it is whole and checked. The Hub's address and token are read when a
// download starts (Settings, HF_ENDPOINT, HF_TOKEN).

#include <QObject>
#include <QString>
#include <functional>
#include <map>
#include <vector>

#include "app/downloader.h"
#include "app/job_runner.h"

namespace lumen::app {

class DownloadQueue : public QObject {
    Q_OBJECT
public:
    enum class State { Queued, Downloading, Paused, Done, Failed };
    struct Item {
        int id = 0;
        QString repo, file;  // "owner/name", "model-Q4_K_M.gguf" (a multi-part model's first part)
        State state = State::Queued;
        int part = 0, parts = 1;
        DownloadProgress progress;  // of the part under way
        QString error;  // a Failed item's reason
        QString path;   // a Done item's file (what to open)
        int generation = 0;  // the job now doing it (what an earlier, paused one says is ignored)
    };

    // Models go to `modelsFolder`/<owner>/<name>/; `config` gives the Hub's address and token.
    DownloadQueue(JobRunner& jobs, QString modelsFolder, std::function<HubConfig()> config, QObject* parent = nullptr);
    // Pauses what runs (kept for a later resume) and waits for the lane.
    ~DownloadQueue() override;

    // Queues a download (the same repository and file again: the item already there). Its id.
    int add(const QString& repo, const QString& file);
    void pause(int id);
    void resume(int id);  // a paused or failed one, queued again
    // Stops it and deletes what arrived; the item goes from the list.
    void cancel(int id);
    const std::vector<Item>& items() const { return items_; }
    const Item* item(int id) const;

signals:
    void changed(int id);  // state or progress (progress at most a few times a second)
    void removed(int id);
    void finished(int id, const QString& path);  // whole and checked
    void failed(int id, const QString& message);

private:
    Item* find(int id);
    void start(Item& item);

    JobRunner& jobs_;
    QString folder_;
    std::function<HubConfig()> config_;
    std::vector<Item> items_;
    std::map<int, JobRunner::JobId> jobs_by_item_;
    int nextId_ = 1;
};

QString toString(DownloadQueue::State state);

}  // namespace lumen::app
