#pragma once
// File ▸ Download Models…: find GGUF models on the Hugging Face Hub (or HF_ENDPOINT's mirror),
// see a repository's models with their size and whether they fit this computer, download them
// (a queue with progress, speed and time left; pause, resume, cancel; resumed after a restart),
// and open one when it is there. What is downloaded is what the model picker offers.

#include <QDialog>
#include <QPointer>
#include <QThread>
#include <atomic>
#include <memory>

#include "app/download_queue.h"

class QLabel;
class QLineEdit;
class QListWidget;
class QPushButton;
class QTreeWidget;

namespace lumen::ui {

class ModelsDialog : public QDialog {
    Q_OBJECT
public:
    // `open(path)` loads a downloaded model in the window.
    // `hub()` gives the Hub's address and token as they are now (Settings).
    ModelsDialog(app::DownloadQueue& queue, std::function<app::HubConfig()> hub, std::function<void(const QString& path)> open, QWidget* parent = nullptr);
    ~ModelsDialog() override;

    // Searches the Hub for `words` (what the Search button does).
    void search(const QString& words);

private:
    void showRepository(const QString& repo);
    void refreshDownload(int id);
    void updateButtons();
    int selectedDownload() const;

    app::DownloadQueue& queue_;
    std::function<app::HubConfig()> hub_;
    std::function<void(const QString&)> open_;
    QLineEdit* query_;
    QListWidget* results_;
    QTreeWidget *files_, *downloads_;
    QPushButton *downloadButton_, *pauseButton_, *cancelButton_, *openButton_;
    QLabel* status_;
    QString repo_;  // the repository whose files are shown
    int searches_ = 0, listings_ = 0;  // (an answer to an earlier request is dropped)
    // The Hub requests under way: told to stop, and waited for, when the dialog goes.
    std::shared_ptr<std::atomic<bool>> cancel_ = std::make_shared<std::atomic<bool>>(false);
    QList<QPointer<QThread>> threads_;
};

}  // namespace lumen::ui
