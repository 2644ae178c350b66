#include "app/hub_browser.h"

#include <QCoreApplication>
#include <QPointer>
#include <QThread>

#include "inference/core/memory.h"

namespace lumen::app {
namespace {

// Runs `work` on a thread of its own; `deliver` then runs on the receiver's thread if it is still there.
template <class Result>
QThread* runAsync(QObject* receiver, std::function<Result()> work, std::function<void(const Result&, const QString&)> deliver) {
    QPointer<QObject> target(receiver);
    QThread* thread = QThread::create([target, work = std::move(work), deliver = std::move(deliver)] {
        Result result{};
        QString error;
        try {
            result = work();
        } catch (const std::exception& e) {
            error = QString::fromUtf8(e.what());
        }
        QMetaObject::invokeMethod(QCoreApplication::instance(), [target, deliver, result, error] {
            if (target) deliver(result, error);
        });
    });
    QObject::connect(thread, &QThread::finished, thread, &QObject::deleteLater);
    thread->start();
    return thread;
}

}  // namespace

QThread* searchHubAsync(QObject* receiver, const HubConfig& config, const QString& words, std::shared_ptr<std::atomic<bool>> cancel,
                        std::function<void(const std::vector<HubModel>&, const QString&)> done) {
    return runAsync<std::vector<HubModel>>(receiver, [config, words, cancel] { return HubClient(config).searchModels(words, 30, cancel.get()); },
                                           std::move(done));
}

QThread* listHubModelsAsync(QObject* receiver, const HubConfig& config, const QString& repo, std::shared_ptr<std::atomic<bool>> cancel,
                            std::function<void(const std::vector<HubModelFile>&, const QString&)> done) {
    return runAsync<std::vector<HubModelFile>>(receiver, [config, repo, cancel] {
        const auto files = HubClient(config).listFiles(repo, cancel.get());
        std::vector<HubModelFile> models;
        for (const auto& f : files) {
            if (!f.path.endsWith(QLatin1String(".gguf"), Qt::CaseInsensitive)) continue;
            const auto parts = modelParts(files, f.path);
            if (parts.empty() || parts.front().path != f.path) continue;  // (later parts go with the first)
            HubModelFile m{f.path, 0, static_cast<int>(parts.size())};
            for (const auto& p : parts) m.size = p.size < 0 || m.size < 0 ? -1 : m.size + p.size;
            models.push_back(m);
        }
        return models;
    }, std::move(done));
}

Fit fitOf(qint64 bytes) {
    const auto free = inference::availableMemory();
    if (!free || bytes < 0) return Fit::Unknown;
    // A context of a few thousand tokens and the work buffers: about a fifth more, and 512 MiB.
    const auto need = static_cast<std::uint64_t>(bytes) + static_cast<std::uint64_t>(bytes) / 5 + (std::uint64_t{512} << 20);
    if (need <= *free) return Fit::Fits;
    return static_cast<std::uint64_t>(bytes) <= *free ? Fit::Tight : Fit::TooBig;
}

QString describeFit(Fit fit) {
    switch (fit) {
        case Fit::Fits: return QObject::tr("fits");
        case Fit::Tight: return QObject::tr("tight: close other programs");
        case Fit::TooBig: return QObject::tr("too big for this computer's free memory");
        case Fit::Unknown: return {};
    }
    return {};
}

}  // namespace lumen::app
