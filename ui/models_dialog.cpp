#include "ui/models_dialog.h"

#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QLocale>
#include <QPointer>
#include <QPushButton>
#include <QSplitter>
#include <QTreeWidget>
#include <QVBoxLayout>

#include "app/hub_browser.h"

namespace lumen::ui {
ModelsDialog::ModelsDialog(app::DownloadQueue& queue, std::function<app::HubConfig()> hub, std::function<void(const QString&)> open, QWidget* parent)
    : QDialog(parent), queue_(queue), hub_(std::move(hub)), open_(std::move(open)) {
    setObjectName(QStringLiteral("modelsDialog"));
    setWindowTitle(tr("Download Models"));
    query_ = new QLineEdit;
    query_->setObjectName(QStringLiteral("hubQuery"));
    query_->setPlaceholderText(tr("Search Hugging Face for GGUF models (qwen3 4b, llama 3.2, gemma 3…)"));
    auto* searchButton = new QPushButton(tr("&Search"));
    searchButton->setObjectName(QStringLiteral("hubSearchButton"));
    results_ = new QListWidget;
    results_->setObjectName(QStringLiteral("hubResults"));
    files_ = new QTreeWidget;
    files_->setObjectName(QStringLiteral("hubFiles"));
    files_->setHeaderLabels({tr("Model file"), tr("Size"), tr("On this computer")});
    files_->setRootIsDecorated(false);
    files_->header()->setSectionResizeMode(0, QHeaderView::Stretch);
    downloadButton_ = new QPushButton(tr("&Download"));
    downloadButton_->setObjectName(QStringLiteral("hubDownloadButton"));
    downloads_ = new QTreeWidget;
    downloads_->setObjectName(QStringLiteral("downloads"));
    downloads_->setHeaderLabels({tr("Download"), tr("Progress"), tr("State")});
    downloads_->setRootIsDecorated(false);
    downloads_->header()->setSectionResizeMode(1, QHeaderView::Stretch);
    pauseButton_ = new QPushButton(tr("&Pause"));
    pauseButton_->setObjectName(QStringLiteral("pauseDownloadButton"));
    cancelButton_ = new QPushButton(tr("&Cancel Download"));
    cancelButton_->setObjectName(QStringLiteral("cancelDownloadButton"));
    openButton_ = new QPushButton(tr("&Open in Chat"));
    openButton_->setObjectName(QStringLiteral("openDownloadButton"));
    status_ = new QLabel;
    status_->setObjectName(QStringLiteral("hubStatus"));
    status_->setWordWrap(true);

    auto* searchRow = new QHBoxLayout;
    searchRow->addWidget(query_, 1);
    searchRow->addWidget(searchButton);
    auto* split = new QSplitter;
    split->addWidget(results_);
    auto* right = new QWidget;
    auto* rightLayout = new QVBoxLayout(right);
    rightLayout->setContentsMargins(0, 0, 0, 0);
    rightLayout->addWidget(files_, 1);
    rightLayout->addWidget(downloadButton_, 0, Qt::AlignRight);
    split->addWidget(right);
    split->setStretchFactor(1, 2);
    auto* downloadRow = new QHBoxLayout;
    downloadRow->addStretch(1);
    downloadRow->addWidget(pauseButton_);
    downloadRow->addWidget(cancelButton_);
    downloadRow->addWidget(openButton_);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(searchRow);
    layout->addWidget(split, 3);
    layout->addWidget(status_);
    layout->addWidget(new QLabel(tr("Downloads (kept in the models folder; a paused or interrupted one goes on from where it stopped):")));
    layout->addWidget(downloads_, 2);
    layout->addLayout(downloadRow);
    resize(860, 620);

    connect(searchButton, &QPushButton::clicked, this, [this] { search(query_->text()); });
    connect(query_, &QLineEdit::returnPressed, this, [this] { search(query_->text()); });
    connect(results_, &QListWidget::currentItemChanged, this, [this](QListWidgetItem* item) {
        if (item) showRepository(item->data(Qt::UserRole).toString());
    });
    connect(files_, &QTreeWidget::currentItemChanged, this, &ModelsDialog::updateButtons);
    connect(downloads_, &QTreeWidget::currentItemChanged, this, &ModelsDialog::updateButtons);
    connect(downloadButton_, &QPushButton::clicked, this, [this] {
        if (const QTreeWidgetItem* f = files_->currentItem()) downloads_->setCurrentItem(nullptr), queue_.add(repo_, f->data(0, Qt::UserRole).toString());
    });
    connect(files_, &QTreeWidget::itemDoubleClicked, downloadButton_, &QPushButton::click);
    connect(pauseButton_, &QPushButton::clicked, this, [this] {
        const auto* d = queue_.item(selectedDownload());
        if (!d) return;
        if (d->state == app::DownloadQueue::State::Paused || d->state == app::DownloadQueue::State::Failed) queue_.resume(d->id);
        else queue_.pause(d->id);
    });
    connect(cancelButton_, &QPushButton::clicked, this, [this] { queue_.cancel(selectedDownload()); });
    connect(openButton_, &QPushButton::clicked, this, [this] {
        if (const auto* d = queue_.item(selectedDownload()); d && d->state == app::DownloadQueue::State::Done && open_) open_(d->path);
    });
    connect(&queue_, &app::DownloadQueue::changed, this, &ModelsDialog::refreshDownload);
    connect(&queue_, &app::DownloadQueue::removed, this, [this](int id) {
        for (int i = 0; i < downloads_->topLevelItemCount(); ++i)
            if (downloads_->topLevelItem(i)->data(0, Qt::UserRole).toInt() == id) delete downloads_->takeTopLevelItem(i);
        updateButtons();
    });
    connect(&queue_, &app::DownloadQueue::failed, this, [this](int, const QString& message) { status_->setText(message); });
    for (const auto& item : queue_.items()) refreshDownload(item.id);
    updateButtons();
}

ModelsDialog::~ModelsDialog() {
    cancel_->store(true);
    for (const QPointer<QThread>& thread : threads_)
        if (thread) thread->wait();
}

void ModelsDialog::search(const QString& words) {
    if (words.trimmed().isEmpty()) return;
    query_->setText(words);
    status_->setText(tr("Searching…"));
    results_->clear();
    files_->clear();
    repo_.clear();
    const int request = ++searches_;
    threads_.removeAll(nullptr);
    threads_ << app::searchHubAsync(this, hub_(), words, cancel_, [this, request](const std::vector<app::HubModel>& found, const QString& error) {
        if (request != searches_) return;  // (a later search is what counts)
        results_->clear();
        if (!error.isEmpty()) {
            status_->setText(error);
            return;
        }
        const QLocale locale;
        for (const auto& m : found) {
            auto* item = new QListWidgetItem(tr("%1\n%2 downloads%3").arg(m.id, locale.toString(m.downloads), m.gated ? tr(" · gated: needs an access token") : QString()));
            item->setData(Qt::UserRole, m.id);
            results_->addItem(item);
        }
        status_->setText(found.empty() ? tr("Nothing found.") : tr("%n repositor(ies): choose one to see its models.", "", static_cast<int>(found.size())));
    });
}

void ModelsDialog::showRepository(const QString& repo) {
    repo_ = repo;
    files_->clear();
    status_->setText(tr("Reading %1…").arg(repo));
    const int request = ++listings_;
    threads_.removeAll(nullptr);
    threads_ << app::listHubModelsAsync(this, hub_(), repo, cancel_, [this, request, repo](const std::vector<app::HubModelFile>& models, const QString& error) {
        if (request != listings_) return;  // (another was chosen meanwhile)
        files_->clear();
        if (!error.isEmpty()) {
            status_->setText(error);
            return;
        }
        for (const auto& m : models) {
            const app::Fit fit = app::fitOf(m.size);
            auto* item = new QTreeWidgetItem({m.parts > 1 ? tr("%1 (%2 parts)").arg(m.file).arg(m.parts) : m.file,
                                              m.size >= 0 ? app::formatSize(m.size) : tr("?"), app::describeFit(fit)});
            item->setData(0, Qt::UserRole, m.file);
            item->setData(2, Qt::UserRole, static_cast<int>(fit));
            if (fit == app::Fit::TooBig) item->setForeground(2, palette().color(QPalette::Disabled, QPalette::Text));
            files_->addTopLevelItem(item);
        }
        files_->resizeColumnToContents(1);
        status_->setText(models.empty() ? tr("%1 holds no GGUF model.").arg(repo) : tr("%1: %n model file(s).", "", static_cast<int>(models.size())).arg(repo));
        updateButtons();
    });
}

void ModelsDialog::refreshDownload(int id) {
    const auto* d = queue_.item(id);
    if (!d) return;
    QTreeWidgetItem* row = nullptr;
    for (int i = 0; i < downloads_->topLevelItemCount() && !row; ++i)
        if (downloads_->topLevelItem(i)->data(0, Qt::UserRole).toInt() == id) row = downloads_->topLevelItem(i);
    if (!row) {
        row = new QTreeWidgetItem({QStringLiteral("%1 · %2").arg(d->repo, d->file)});
        row->setData(0, Qt::UserRole, id);
        downloads_->addTopLevelItem(row);
    }
    const auto& p = d->progress;
    QString progress;
    if (d->state == app::DownloadQueue::State::Done) {
        progress = d->path;
    } else if (d->state == app::DownloadQueue::State::Failed) {
        progress = d->error;
    } else if (p.total > 0) {
        progress = tr("%1% · %2 of %3").arg(qRound(100.0 * static_cast<double>(p.done) / static_cast<double>(p.total))).arg(app::formatSize(p.done), app::formatSize(p.total));
        if (d->state == app::DownloadQueue::State::Downloading && p.bytesPerSecond > 0)
            progress += tr(" · %1/s · %2 left").arg(app::formatSize(static_cast<qint64>(p.bytesPerSecond)), app::formatDuration(static_cast<double>(p.total - p.done) / p.bytesPerSecond));
        if (d->parts > 1) progress += tr(" · part %1 of %2").arg(d->part + 1).arg(d->parts);
    }
    row->setText(1, progress);
    row->setText(2, app::toString(d->state));
    updateButtons();
}

int ModelsDialog::selectedDownload() const {
    const QTreeWidgetItem* row = downloads_->currentItem();
    if (!row && downloads_->topLevelItemCount() == 1) row = downloads_->topLevelItem(0);
    return row ? row->data(0, Qt::UserRole).toInt() : 0;
}

void ModelsDialog::updateButtons() {
    downloadButton_->setEnabled(files_->currentItem() != nullptr);
    const auto* d = queue_.item(selectedDownload());
    using State = app::DownloadQueue::State;
    pauseButton_->setEnabled(d && d->state != State::Done);
    pauseButton_->setText(d && (d->state == State::Paused || d->state == State::Failed) ? tr("&Resume") : tr("&Pause"));
    cancelButton_->setEnabled(d && d->state != State::Done);
    openButton_->setEnabled(d && d->state == State::Done);
}

}  // namespace lumen::ui
