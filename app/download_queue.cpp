#include "app/download_queue.h"

#include <QCoreApplication>
#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <algorithm>
#include <QMetaObject>
#include <QPointer>
#include <QRegularExpression>

namespace lumen::app {

QString toString(DownloadQueue::State state) {
    switch (state) {
        case DownloadQueue::State::Queued: return QObject::tr("waiting");
        case DownloadQueue::State::Downloading: return QObject::tr("downloading");
        case DownloadQueue::State::Paused: return QObject::tr("paused");
        case DownloadQueue::State::Done: return QObject::tr("done");
        case DownloadQueue::State::Failed: return QObject::tr("failed");
    }
    return {};
}

DownloadQueue::DownloadQueue(JobRunner& jobs, QString modelsFolder, std::function<HubConfig()> config, QObject* parent)
    : QObject(parent), jobs_(jobs), folder_(std::move(modelsFolder)), config_(std::move(config)) {}

DownloadQueue::~DownloadQueue() {
    for (const auto& [item, job] : jobs_by_item_) jobs_.cancel(job);
    jobs_.wait(Lane::Downloads);
}

DownloadQueue::Item* DownloadQueue::find(int id) {
    for (auto& i : items_)
        if (i.id == id) return &i;
    return nullptr;
}

const DownloadQueue::Item* DownloadQueue::item(int id) const { return const_cast<DownloadQueue*>(this)->find(id); }

int DownloadQueue::add(const QString& repo, const QString& file) {
    for (auto& i : items_)
        if (i.repo == repo && i.file == file) {
            if (i.state == State::Paused || i.state == State::Failed) resume(i.id);
            return i.id;
        }
    Item item;
    item.id = nextId_++;
    item.repo = repo;
    item.file = file;
    items_.push_back(item);
    start(items_.back());
    return item.id;
}

void DownloadQueue::start(Item& item) {
    item.state = State::Queued;
    item.error.clear();
    const int id = item.id, generation = ++item.generation;
    const QString repo = item.repo, file = item.file, folder = QDir(folder_).filePath(repo);
    const HubConfig config = config_ ? config_() : hubConfig();
    QPointer<DownloadQueue> self(this);
    // What the lane says goes to this object's thread (where it lives), checked there.
    const auto post = [self](std::function<void(DownloadQueue&)> update) {
        QMetaObject::invokeMethod(QCoreApplication::instance(), [self, update] {
            if (DownloadQueue* queue = self.data()) update(*queue);
        });
    };
    // (only what this job's generation says counts: a paused job's last words come after a resume)
    const auto current = [id, generation](DownloadQueue& q) -> Item* {
        Item* i = q.find(id);
        return i && i->generation == generation ? i : nullptr;
    };
    const auto job = jobs_.submit(Lane::Downloads, tr("Downloading %1").arg(file), [id, repo, file, folder, config, post, current](JobControl& control) {
        post([id, current](DownloadQueue& q) {
            if (Item* i = current(q); i && i->state == State::Queued) {
                i->state = State::Downloading;
                emit q.changed(id);
            }
        });
        QElapsedTimer since;
        since.start();
        try {
            const QString path = downloadModel(HubClient(config), repo, file, folder,
                                               [&](int part, int parts, const DownloadProgress& p) {
                                                   if (since.elapsed() < 200 && p.done != p.total) return;  // (a few times a second)
                                                   since.restart();
                                                   control.progress(p.total > 0 ? static_cast<double>(p.done) / static_cast<double>(p.total) : -1.0);
                                                   post([id, part, parts, p, current](DownloadQueue& q) {
                                                       if (Item* i = current(q); i && i->state == State::Downloading) {
                                                           i->part = part, i->parts = parts, i->progress = p;
                                                           emit q.changed(id);
                                                       }
                                                   });
                                               },
                                               {}, control.cancelFlag());
            post([id, path, current](DownloadQueue& q) {
                if (Item* i = current(q)) {
                    q.jobs_by_item_.erase(id);
                    i->state = State::Done;
                    i->path = path;
                    i->progress.done = i->progress.total;
                    emit q.changed(id);
                    emit q.finished(id, path);
                }
            });
        } catch (const std::exception& e) {
            const auto* download = dynamic_cast<const DownloadError*>(&e);
            const QString message = QString::fromUtf8(e.what());
            const bool stopped = download && download->cancelled();
            post([id, message, stopped, current](DownloadQueue& q) {
                Item* i = current(q);
                if (!i) return;
                q.jobs_by_item_.erase(id);
                i->state = stopped ? State::Paused : State::Failed;  // (a cancel is a pause; cancel() removed the item)
                if (!stopped) i->error = message;
                emit q.changed(id);
                if (!stopped) emit q.failed(id, message);
            });
        }
    });
    jobs_by_item_[id] = job;
    emit changed(id);
}

void DownloadQueue::pause(int id) {
    Item* i = find(id);
    if (!i || (i->state != State::Queued && i->state != State::Downloading)) return;
    if (const auto it = jobs_by_item_.find(id); it != jobs_by_item_.end()) {
        jobs_.cancel(it->second);
        jobs_by_item_.erase(it);
    }
    ++i->generation;  // (what the stopped job still says is not this item's any more)
    i->state = State::Paused;
    emit changed(id);
}

void DownloadQueue::resume(int id) {
    Item* i = find(id);
    if (!i || (i->state != State::Paused && i->state != State::Failed)) return;
    start(*i);  // (after the paused job on the same lane: they never write the part file together)
}

void DownloadQueue::cancel(int id) {
    Item* i = find(id);
    if (!i) return;
    if (const auto it = jobs_by_item_.find(id); it != jobs_by_item_.end()) jobs_.cancel(it->second);
    // What arrived goes, once the lane has let go of it (a job after the download's): this
    // model's own files, named exactly (every part of a multi-part one, whole or not).
    if (i->state != State::Done) {
        const QString target = QDir(QDir(folder_).filePath(i->repo)).filePath(i->file);
        jobs_.submit(Lane::Downloads, {}, [target](JobControl&) {
            static const QRegularExpression multi(QStringLiteral("^(.*)-00001-of-(\\d{5})\\.gguf$"));
            if (const auto m = multi.match(target); m.hasMatch()) {
                const int count = m.captured(2).toInt();
                for (int k = 1; k <= count; ++k) {
                    const QString part = QStringLiteral("%1-%2-of-%3.gguf").arg(m.captured(1)).arg(k, 5, 10, QLatin1Char('0')).arg(m.captured(2));
                    QFile::remove(part + QStringLiteral(".part"));
                    QFile::remove(part);
                }
            } else {
                QFile::remove(target + QStringLiteral(".part"));
            }
        });
    }
    items_.erase(std::remove_if(items_.begin(), items_.end(), [id](const Item& x) { return x.id == id; }), items_.end());
    emit removed(id);
}

}  // namespace lumen::app
