#pragma once
// The Hub seen from the window: searching and listing a repository off the window's thread (a
// thread each, so that neither waits behind a download), the answers delivered on the thread of
// `receiver` while it exists; and whether a model file of a given size fits this machine.

#include <QObject>
#include <QString>

class QThread;
#include <atomic>
#include <functional>
#include <memory>
#include <vector>

#include "app/downloader.h"

namespace lumen::app {

// Each returns its thread (which deletes itself when done): a caller that goes first sets
// `cancel` and waits for it, so that nothing runs on after it (or after the application).
QThread* searchHubAsync(QObject* receiver, const HubConfig& config, const QString& words, std::shared_ptr<std::atomic<bool>> cancel,
                        std::function<void(const std::vector<HubModel>& found, const QString& error)> done);
// The repository's GGUF models (a multi-part model once, its size the parts' sum).
struct HubModelFile {
    QString file;  // the first part's path
    qint64 size = -1;
    int parts = 1;
};
QThread* listHubModelsAsync(QObject* receiver, const HubConfig& config, const QString& repo, std::shared_ptr<std::atomic<bool>> cancel,
                            std::function<void(const std::vector<HubModelFile>& files, const QString& error)> done);

// How a model file of `bytes` fits the memory free now: weights are mapped from the file, and
// a context and the work around it need more on top.
enum class Fit { Fits, Tight, TooBig, Unknown };
Fit fitOf(qint64 bytes);
QString describeFit(Fit fit);  // "fits", "tight", "too big for this computer", ""

}  // namespace lumen::app
