#include "ui/label_set_editor.h"

#include <QComboBox>
#include <QDialogButtonBox>
#include <QDropEvent>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QInputDialog>
#include <QLabel>
#include <QListWidget>
#include <QMessageBox>
#include <QMimeData>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QVBoxLayout>

#include "app/image_import.h"
#include "ui/widgets.h"

namespace lumen::ui {
LabelSetEditor::LabelSetEditor(app::Library& library, QWidget* parent) : QDialog(parent), library_(library) {
    setObjectName(QStringLiteral("labelSetEditor"));
    setWindowTitle(tr("Label Sets"));
    resize(900, 600);
    sets_ = new QListWidget;
    sets_->setObjectName(QStringLiteral("labelSets"));
    auto* newSet = namedButton(tr("&New…"), "newLabelSet");
    auto* renameSet = namedButton(tr("&Rename…"), "renameLabelSet");
    auto* deleteSet = namedButton(tr("&Delete"), "deleteLabelSet");
    auto* left = new QVBoxLayout;
    left->addWidget(sets_, 1);
    for (auto* b : {newSet, renameSet, deleteSet}) left->addWidget(b);

    mode_ = new QComboBox;
    mode_->setObjectName(QStringLiteral("classifyMode"));
    mode_->addItem(tr("Zero-shot (from the labels' prompts)"), static_cast<int>(storage::ClassifyMode::ZeroShot));
    mode_->addItem(tr("Few-shot (from the example images)"), static_cast<int>(storage::ClassifyMode::FewShot));
    mode_->addItem(tr("Blended (prompts and examples)"), static_cast<int>(storage::ClassifyMode::Blended));
    templates_ = new QPlainTextEdit;
    templates_->setObjectName(QStringLiteral("promptTemplates"));
    templates_->setPlaceholderText(tr("One prompt per line, {} for the label (empty: a built-in set of ten, e.g. “a photo of a {}.”)"));
    templates_->setMaximumHeight(90);
    labels_ = new QListWidget;
    labels_->setObjectName(QStringLiteral("labels"));
    auto* addLabelButton = namedButton(tr("Add Label…"), "addLabel");
    auto* removeLabelButton = namedButton(tr("Remove Label"), "removeLabel");
    examples_ = new QListWidget;
    examples_->setObjectName(QStringLiteral("labelExamples"));
    examples_->setViewMode(QListView::IconMode);
    examples_->setIconSize(QSize(72, 72));
    examples_->setAcceptDrops(true);
    examples_->viewport()->setAcceptDrops(true);
    examples_->viewport()->installEventFilter(this);
    examples_->setToolTip(tr("Drop example images of the selected label here"));
    auto* addExamplesButton = namedButton(tr("Add Images…"), "addExamples");
    auto* removeExampleButton = namedButton(tr("Remove Image"), "removeExample");

    auto* labelButtons = new QHBoxLayout;
    labelButtons->addWidget(addLabelButton);
    labelButtons->addWidget(removeLabelButton);
    labelButtons->addStretch(1);
    auto* exampleButtons = new QHBoxLayout;
    exampleButtons->addWidget(addExamplesButton);
    exampleButtons->addWidget(removeExampleButton);
    exampleButtons->addStretch(1);
    auto* right = new QVBoxLayout;
    auto* form = new QFormLayout;
    form->addRow(tr("Mode:"), mode_);
    form->addRow(tr("Prompts:"), templates_);
    right->addLayout(form);
    right->addWidget(new QLabel(tr("Labels")));
    right->addWidget(labels_, 1);
    right->addLayout(labelButtons);
    right->addWidget(new QLabel(tr("Example images of the selected label")));
    right->addWidget(examples_, 2);
    right->addLayout(exampleButtons);
    auto* columns = new QHBoxLayout;
    columns->addLayout(left, 1);
    columns->addLayout(right, 3);
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Close);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::accept);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(columns, 1);
    layout->addWidget(buttons);

    const auto guarded = [this](auto&& f) { warnOnStorageError(this, tr("Label Sets"), f); };
    connect(newSet, &QPushButton::clicked, this, [this] {
        bool ok = false;
        const QString name = QInputDialog::getText(this, tr("New Label Set"), tr("Name:"), QLineEdit::Normal, {}, &ok).trimmed();
        if (ok && !name.isEmpty()) createSet(name);
    });
    connect(renameSet, &QPushButton::clicked, this, [this, guarded] {
        if (set_ == 0) return;
        bool ok = false;
        const QString name = QInputDialog::getText(this, tr("Rename Label Set"), tr("Name:"), QLineEdit::Normal, sets_->currentItem()->text(), &ok).trimmed();
        if (ok && !name.isEmpty()) guarded([&] { library_.labelSets().rename(set_, name.toStdString()); }), reloadSets();
    });
    connect(deleteSet, &QPushButton::clicked, this, [this, guarded] {
        if (set_ == 0 || QMessageBox::question(this, tr("Delete Label Set"), tr("Delete “%1”?").arg(sets_->currentItem()->text())) != QMessageBox::Yes) return;
        guarded([&] { library_.labelSets().remove(set_); });
        set_ = 0;
        reloadSets();
        loadSet(sets_->count() ? sets_->item(0)->data(Qt::UserRole).toLongLong() : 0);
    });
    connect(sets_, &QListWidget::currentRowChanged, this, [this](int row) {
        if (!loading_) loadSet(row >= 0 ? sets_->item(row)->data(Qt::UserRole).toLongLong() : 0);
    });
    connect(mode_, &QComboBox::activated, this, [this, guarded] {
        if (set_) guarded([&] { library_.labelSets().setMode(set_, static_cast<storage::ClassifyMode>(mode_->currentData().toInt())); });
    });
    connect(templates_, &QPlainTextEdit::textChanged, this, [this, guarded] {
        if (loading_ || set_ == 0) return;
        std::vector<std::string> lines;
        for (const QString& l : templates_->toPlainText().split(QLatin1Char('\n'), Qt::SkipEmptyParts))
            if (!l.trimmed().isEmpty()) lines.push_back(l.trimmed().toStdString());
        guarded([&] { library_.labelSets().setPromptTemplates(set_, lines); });
    });
    connect(addLabelButton, &QPushButton::clicked, this, [this] {
        bool ok = false;
        const QString name = QInputDialog::getText(this, tr("Add Label"), tr("Label:"), QLineEdit::Normal, {}, &ok).trimmed();
        if (ok && !name.isEmpty()) addLabel(name);
    });
    connect(removeLabelButton, &QPushButton::clicked, this, [this, guarded] {
        if (const std::int64_t label = currentLabel()) guarded([&] { library_.labelSets().removeLabel(label); }), loadSet(set_);
    });
    connect(labels_, &QListWidget::currentRowChanged, this, [this] {
        if (!loading_) loadExamples();
    });
    connect(examples_, &QListWidget::currentRowChanged, this, [this] { updateButtons(); });
    connect(addExamplesButton, &QPushButton::clicked, this, [this] {
        addExampleFiles(QFileDialog::getOpenFileNames(this, tr("Example Images"), {}, tr("Images (*.png *.jpg *.jpeg *.webp *.bmp *.tif *.tiff)")));
    });
    connect(removeExampleButton, &QPushButton::clicked, this, [this, guarded] {
        auto* item = examples_->currentItem();
        if (!item || currentLabel() == 0) return;
        guarded([&] { library_.labelSets().removeExample(currentLabel(), item->data(Qt::UserRole).toString().toStdString()); });
        loadExamples();
    });
    reloadSets();
    loadSet(sets_->count() ? sets_->item(0)->data(Qt::UserRole).toLongLong() : 0);
}

void LabelSetEditor::reloadSets() {
    loading_ = true;
    sets_->clear();
    warnOnStorageError(this, tr("Label Sets"), [&] {
        for (const auto& s : library_.labelSets().list()) {
            auto* item = new QListWidgetItem(tr("%1 (%n label(s))", "", s.labelCount).arg(QString::fromStdString(s.name)));
            item->setData(Qt::UserRole, static_cast<qlonglong>(s.id));
            sets_->addItem(item);
            if (s.id == set_) sets_->setCurrentItem(item);
        }
    });
    loading_ = false;
}

void LabelSetEditor::selectSet(std::int64_t id) {
    for (int row = 0; row < sets_->count(); ++row)
        if (sets_->item(row)->data(Qt::UserRole).toLongLong() == id) sets_->setCurrentRow(row);
    loadSet(id);
}

void LabelSetEditor::selectLabel(int row) { labels_->setCurrentRow(row); }

void LabelSetEditor::loadSet(std::int64_t id) {
    loading_ = true;
    set_ = id;
    const auto set = id ? library_.labelSets().get(id) : std::nullopt;
    const int selected = labels_->currentRow();
    labels_->clear();
    templates_->clear();
    if (set) {
        mode_->setCurrentIndex(mode_->findData(static_cast<int>(set->mode)));
        QStringList lines;
        for (const auto& t : set->promptTemplates) lines << QString::fromStdString(t);
        templates_->setPlainText(lines.join(QLatin1Char('\n')));
        for (const auto& l : set->labels) {
            auto* item = new QListWidgetItem(tr("%1 (%n example(s))", "", static_cast<int>(l.exampleImages.size())).arg(QString::fromStdString(l.name)));
            item->setData(Qt::UserRole, static_cast<qlonglong>(l.id));
            labels_->addItem(item);
        }
        labels_->setCurrentRow(std::clamp(selected, 0, labels_->count() - 1));
    }
    for (QWidget* w : std::initializer_list<QWidget*>{mode_, templates_, labels_, examples_}) w->setEnabled(set.has_value());
    loading_ = false;
    loadExamples();
}

std::int64_t LabelSetEditor::currentLabel() const {
    const auto* item = labels_->currentItem();
    return item ? item->data(Qt::UserRole).toLongLong() : 0;
}

void LabelSetEditor::updateButtons() {
    const bool set = set_ != 0, label = set && currentLabel() != 0;
    const auto enable = [this](const char* name, bool on) {
        if (auto* b = findChild<QPushButton*>(QString::fromLatin1(name))) b->setEnabled(on);
    };
    enable("renameLabelSet", set);
    enable("deleteLabelSet", set);
    enable("addLabel", set);
    enable("removeLabel", label);
    enable("addExamples", label);
    enable("removeExample", label && examples_->currentItem());
}

void LabelSetEditor::loadExamples() {
    examples_->clear();
    const std::int64_t label = currentLabel();
    updateButtons();
    if (label == 0 || set_ == 0) return;
    warnOnStorageError(this, tr("Label Sets"), [&] {
        const auto set = library_.labelSets().get(set_);
        for (const auto& l : set->labels)
            if (l.id == label)
                for (const auto& sha : l.exampleImages) {
                    QPixmap thumb;
                    if (const auto bytes = library_.images().thumbnail(sha)) thumb.loadFromData(bytes->data(), static_cast<uint>(bytes->size()));
                    auto* item = new QListWidgetItem(QIcon(thumb), {});
                    item->setData(Qt::UserRole, QString::fromStdString(sha));
                    examples_->addItem(item);
                }
    });
    updateButtons();
}

std::int64_t LabelSetEditor::createSet(const QString& name) {
    if (!warnOnStorageError(this, tr("Label Sets"), [&] {
        set_ = library_.labelSets().create(name.toStdString(), storage::ClassifyMode::ZeroShot, {}, {});
    }))
        return 0;
    reloadSets();
    loadSet(set_);
    return set_;
}

std::int64_t LabelSetEditor::addLabel(const QString& name) {
    if (set_ == 0) return 0;
    std::int64_t id = 0;
    if (!warnOnStorageError(this, tr("Label Sets"), [&] {
        id = library_.labelSets().addLabel(set_, name.toStdString());
    }))
        return 0;
    loadSet(set_);
    labels_->setCurrentRow(labels_->count() - 1);
    reloadSets();
    return id;
}

int LabelSetEditor::addExampleFiles(const QStringList& paths) {
    const std::int64_t label = currentLabel();
    if (label == 0) return 0;
    int added = 0;
    QStringList problems;
    for (const QString& p : paths) {
        const app::ImportedImage image = app::importImageFile(library_, p);
        if (!image.error.isEmpty()) {
            problems << image.error;
            continue;
        }
        try {
            library_.labelSets().addExample(label, image.sha256);
            ++added;
        } catch (const storage::Error& e) {
            problems << QString::fromUtf8(e.what());
        }
    }
    const int row = labels_->currentRow();
    loadSet(set_);
    labels_->setCurrentRow(row);
    if (!problems.isEmpty() && isVisible()) {
        // Said without stopping the user (a drop of many files may hold a few that are not images).
        auto* box = new QMessageBox(QMessageBox::Warning, tr("Label Sets"), tr("Some files were not added:\n%1").arg(problems.join(QLatin1Char('\n'))),
                                    QMessageBox::Ok, this);
        box->setObjectName(QStringLiteral("examplesRefused"));
        box->setAttribute(Qt::WA_DeleteOnClose);
        box->open();
    }
    return added;
}

bool LabelSetEditor::eventFilter(QObject* watched, QEvent* event) {
    if (watched == examples_->viewport() && (event->type() == QEvent::DragEnter || event->type() == QEvent::DragMove)) {
        auto* drag = static_cast<QDragMoveEvent*>(event);
        if (drag->mimeData()->hasUrls() && currentLabel() != 0) {
            drag->acceptProposedAction();
            return true;
        }
    }
    if (watched == examples_->viewport() && event->type() == QEvent::Drop) {
        auto* drop = static_cast<QDropEvent*>(event);
        QStringList paths;
        for (const QUrl& url : drop->mimeData()->urls())
            if (url.isLocalFile()) paths << url.toLocalFile();
        addExampleFiles(paths);
        drop->acceptProposedAction();
        return true;
    }
    return QDialog::eventFilter(watched, event);
}

}  // namespace lumen::ui
