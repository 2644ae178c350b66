#include "ui/template_editor.h"

#include <QDialogButtonBox>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QInputDialog>
#include <QLabel>
#include <QListWidget>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>

#include "app/image_import.h"
#include "ui/widgets.h"
#include "app/prompt_builder.h"

namespace lumen::ui {
TemplateEditor::TemplateEditor(app::Library& library, app::Assistant& assistant, QWidget* parent)
    : QDialog(parent), library_(library), assistant_(assistant) {
    setObjectName(QStringLiteral("templateEditor"));
    setWindowTitle(tr("Prompt Templates"));
    resize(1000, 680);
    list_ = new QListWidget;
    list_->setObjectName(QStringLiteral("templateList"));
    auto* newButton = namedButton(tr("&New"), "newTemplate");
    auto* duplicateButton = namedButton(tr("D&uplicate"), "duplicateTemplate");
    auto* renameButton = namedButton(tr("&Rename…"), "renameTemplate");
    auto* deleteButton = namedButton(tr("&Delete"), "deleteTemplate");
    connect(newButton, &QPushButton::clicked, this, &TemplateEditor::create);
    connect(duplicateButton, &QPushButton::clicked, this, &TemplateEditor::duplicate);
    connect(renameButton, &QPushButton::clicked, this, &TemplateEditor::rename);
    connect(deleteButton, &QPushButton::clicked, this, &TemplateEditor::remove);
    auto* left = new QWidget;
    auto* leftLayout = new QVBoxLayout(left);
    leftLayout->addWidget(list_, 1);
    for (auto* b : {newButton, duplicateButton, renameButton, deleteButton}) leftLayout->addWidget(b);

    system_ = new QPlainTextEdit;
    system_->setObjectName(QStringLiteral("systemPrompt"));
    system_->setPlaceholderText(tr("System prompt (optional)"));
    body_ = new QPlainTextEdit;
    body_->setObjectName(QStringLiteral("templateBody"));
    body_->setPlaceholderText(tr("The message, with {{input}} where what you type goes and {{other}} variables asked for when used"));
    examples_ = new QTableWidget(0, 3);
    examples_->setObjectName(QStringLiteral("examples"));
    examples_->setHorizontalHeaderLabels({tr("Example input"), tr("Example output"), tr("Image")});
    examples_->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
    examples_->horizontalHeader()->setSectionResizeMode(2, QHeaderView::ResizeToContents);
    examples_->setIconSize(QSize(40, 40));
    auto* addButton = namedButton(tr("Add Example"), "addExample");
    auto* removeButton = namedButton(tr("Remove"), "removeExample");
    auto* upButton = namedButton(tr("Move Up"), "moveExampleUp");
    auto* downButton = namedButton(tr("Move Down"), "moveExampleDown");
    auto* imageButton = namedButton(tr("Set Image…"), "setExampleImage");
    auto* clearImageButton = namedButton(tr("No Image"), "clearExampleImage");
    connect(imageButton, &QPushButton::clicked, this, [this] {
        const QString path = QFileDialog::getOpenFileName(this, tr("Example Image"), {}, tr("Images (*.png *.jpg *.jpeg *.webp *.bmp *.tif *.tiff)"));
        if (!path.isEmpty()) setExampleImage(path);
    });
    connect(clearImageButton, &QPushButton::clicked, this, [this] { setExampleImage({}); });
    connect(addButton, &QPushButton::clicked, this, &TemplateEditor::addExample);
    connect(removeButton, &QPushButton::clicked, this, &TemplateEditor::removeExample);
    connect(upButton, &QPushButton::clicked, this, [this] { moveExample(-1); });
    connect(downButton, &QPushButton::clicked, this, [this] { moveExample(1); });
    auto* exampleButtons = new QHBoxLayout;
    for (auto* b : {addButton, removeButton, upButton, downButton, imageButton, clearImageButton}) exampleButtons->addWidget(b);
    exampleButtons->addStretch(1);
    preview_ = new QPlainTextEdit;
    preview_->setObjectName(QStringLiteral("preview"));
    preview_->setReadOnly(true);
    previewInfo_ = new QLabel;
    previewInfo_->setObjectName(QStringLiteral("previewInfo"));
    auto* editor = new QWidget;
    auto* editorLayout = new QVBoxLayout(editor);
    editorLayout->addWidget(new QLabel(tr("System prompt")));
    editorLayout->addWidget(system_, 1);
    editorLayout->addWidget(new QLabel(tr("Body")));
    editorLayout->addWidget(body_, 1);
    editorLayout->addWidget(new QLabel(tr("Few-shot examples (shown to the model as earlier turns)")));
    editorLayout->addWidget(examples_, 1);
    editorLayout->addLayout(exampleButtons);
    editorLayout->addWidget(previewInfo_);
    editorLayout->addWidget(preview_, 2);

    auto* splitter = new QSplitter;
    splitter->addWidget(left);
    splitter->addWidget(editor);
    splitter->setStretchFactor(1, 1);
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Close);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::accept);
    auto* layout = new QVBoxLayout(this);
    layout->addWidget(splitter, 1);
    layout->addWidget(buttons);

    // Every edit is saved and the preview follows it.
    connect(system_, &QPlainTextEdit::textChanged, this, [this] { save(), updatePreview(); });
    connect(body_, &QPlainTextEdit::textChanged, this, [this] { save(), updatePreview(); });
    connect(examples_, &QTableWidget::cellChanged, this, [this] { save(), updatePreview(); });
    connect(list_, &QListWidget::currentRowChanged, this, [this](int row) {
        load(row >= 0 ? list_->item(row)->data(Qt::UserRole).toLongLong() : 0);
    });
    reloadList();
    if (list_->count() > 0) list_->setCurrentRow(0);
    else load(0);
}

void TemplateEditor::reloadList() {
    const QSignalBlocker block(list_);
    list_->clear();
    warnOnStorageError(this, tr("Templates"), [&] {
        for (const auto& t : library_.templates().list()) {
            auto* item = new QListWidgetItem(QString::fromStdString(t.name));
            item->setData(Qt::UserRole, static_cast<qlonglong>(t.id));
            list_->addItem(item);
            if (t.id == current_) list_->setCurrentItem(item);
        }
    });
}

void TemplateEditor::selectTemplate(std::int64_t id) {
    for (int row = 0; row < list_->count(); ++row)
        if (list_->item(row)->data(Qt::UserRole).toLongLong() == id) list_->setCurrentRow(row);
}

void TemplateEditor::load(std::int64_t id) {
    loading_ = true;
    current_ = id;
    const auto t = id ? library_.templates().get(id) : std::nullopt;
    system_->setPlainText(t ? QString::fromStdString(t->systemPrompt) : QString());
    body_->setPlainText(t ? QString::fromStdString(t->body) : QString());
    examples_->setRowCount(0);
    if (t)
        for (const auto& e : library_.templates().examples(id)) {
            const int row = examples_->rowCount();
            examples_->insertRow(row);
            auto* input = new QTableWidgetItem(QString::fromStdString(e.input));
            input->setData(Qt::UserRole, static_cast<qlonglong>(e.id));
            examples_->setItem(row, 0, input);
            examples_->setItem(row, 1, new QTableWidgetItem(QString::fromStdString(e.output)));
            auto* image = new QTableWidgetItem;
            image->setFlags(Qt::ItemIsSelectable | Qt::ItemIsEnabled);
            if (e.imageSha256) {
                image->setData(Qt::UserRole, QString::fromStdString(*e.imageSha256));
                QPixmap thumb;
                if (const auto bytes = library_.images().thumbnail(*e.imageSha256)) thumb.loadFromData(bytes->data(), static_cast<uint>(bytes->size()));
                image->setIcon(QIcon(thumb));
            }
            examples_->setItem(row, 2, image);
        }
    for (QWidget* w : std::initializer_list<QWidget*>{system_, body_, examples_}) w->setEnabled(t.has_value());
    loading_ = false;
    updatePreview();
}

// Example row `row` of the table as the stored example (its image as the row holds it).
storage::FewShotExample TemplateEditor::exampleAt(int row) const {
    storage::FewShotExample e;
    e.id = examples_->item(row, 0)->data(Qt::UserRole).toLongLong();
    e.templateId = current_;
    e.position = row;
    e.input = examples_->item(row, 0)->text().toStdString();
    e.output = examples_->item(row, 1) ? examples_->item(row, 1)->text().toStdString() : std::string();
    if (const auto* image = examples_->item(row, 2); image && !image->data(Qt::UserRole).toString().isEmpty())
        e.imageSha256 = image->data(Qt::UserRole).toString().toStdString();
    return e;
}

void TemplateEditor::save() {
    if (loading_ || current_ == 0) return;
    warnOnStorageError(this, tr("Templates"), [&] {
        auto t = library_.templates().get(current_);
        if (!t) return;
        t->systemPrompt = system_->toPlainText().toStdString();
        t->body = body_->toPlainText().toStdString();
        library_.templates().update(*t);
        for (int row = 0; row < examples_->rowCount(); ++row) library_.templates().updateExample(exampleAt(row));
    });
}

nlohmann::ordered_json TemplateEditor::previewConversation() const {
    app::TemplateSpec spec{system_->toPlainText().toStdString(), body_->toPlainText().toStdString(), {}};
    for (int row = 0; row < examples_->rowCount(); ++row) {
        app::FewShotTurn turn{examples_->item(row, 0)->text().toStdString(), examples_->item(row, 1) ? examples_->item(row, 1)->text().toStdString() : std::string(), {}};
        // An example's image shows in the preview as the image marker when a projector is loaded.
        if (const auto* image = examples_->item(row, 2); image && !image->data(Qt::UserRole).toString().isEmpty() && assistant_.engine().hasImageProjector())
            turn.image = image->data(Qt::UserRole).toString().toStdString();
        spec.examples.push_back(std::move(turn));
    }
    const std::string body = spec.body.empty() ? std::string("{{input}}") : spec.body;
    const std::string message = app::fillVariables(body, {{"input", kSampleInput}});
    return app::buildConversation(spec, nlohmann::ordered_json::array({{{"role", "user"}, {"content", message}}}));
}

QString TemplateEditor::previewText() const { return preview_->toPlainText(); }

void TemplateEditor::updatePreview() {
    if (loading_) return;
    if (current_ == 0) {
        preview_->clear();
        previewInfo_->setText(tr("Create a template to see what the model will be given."));
        return;
    }
    const auto renderer = assistant_.engine().renderer();
    const nlohmann::ordered_json conversation = previewConversation();
    try {
        if (renderer) {
            const std::string prompt = renderer->render(conversation);
            preview_->setPlainText(QString::fromStdString(prompt));
            // Warned when it leaves too little of the context for the reply (what the engine
            // keeps: a quarter, or the reply's token limit if less): a chat through this template
            // would lose its own messages, or not fit at all.
            const int tokens = static_cast<int>(renderer->tokenize(prompt).size()), context = assistant_.engine().contextSize();
            const int reserve = std::max(1, std::min(assistant_.generationParams().maxTokens, context / 4));
            QString info = tr("Preview through %1's chat template: %n token(s)", "", tokens).arg(assistant_.engine().modelName());
            const bool tooLong = context > 0 && tokens + reserve > context;
            if (tooLong)
                info += tr(" — too long for the model's context of %1 tokens (%2 are kept for the reply): shorten the examples or raise "
                           "the context length in Settings")
                            .arg(context)
                            .arg(reserve);
            previewInfo_->setText(info);
            previewInfo_->setProperty("tooLong", tooLong);
            previewInfo_->setStyleSheet(tooLong ? QStringLiteral("color: palette(highlight); font-weight: bold;") : QString());
        } else {
            preview_->setPlainText(QString::fromStdString(inference::ChatTemplate::builtin("chatml").apply(conversation, true)));
            previewInfo_->setText(tr("No model loaded: shown with the ChatML template; open a model for its own template and a token count."));
        }
    } catch (const std::exception& e) {
        preview_->setPlainText(QString());
        previewInfo_->setText(tr("The chat template failed: %1").arg(QString::fromUtf8(e.what())));
    }
}

void TemplateEditor::create() {
    bool ok = false;
    const QString name = QInputDialog::getText(this, tr("New Template"), tr("Name:"), QLineEdit::Normal, {}, &ok).trimmed();
    if (!ok || name.isEmpty()) return;
    warnOnStorageError(this, tr("Templates"), [&] {
        storage::PromptTemplate t;
        t.name = name.toStdString();
        t.body = "{{input}}";
        current_ = library_.templates().create(t);
        reloadList();
        load(current_);
    });
}

void TemplateEditor::duplicate() {
    if (current_ == 0) return;
    warnOnStorageError(this, tr("Templates"), [&] {
        const auto t = library_.templates().get(current_);
        current_ = library_.templates().duplicate(current_, (QString::fromStdString(t->name) + tr(" (copy)")).toStdString());
        reloadList();
        load(current_);
    });
}

void TemplateEditor::rename() {
    if (current_ == 0) return;
    bool ok = false;
    const QString name = QInputDialog::getText(this, tr("Rename Template"), tr("Name:"), QLineEdit::Normal, list_->currentItem()->text(), &ok).trimmed();
    if (!ok || name.isEmpty()) return;
    warnOnStorageError(this, tr("Templates"), [&] {
        library_.templates().rename(current_, name.toStdString());
        reloadList();
    });
}

void TemplateEditor::remove() {
    if (current_ == 0) return;
    if (QMessageBox::question(this, tr("Delete Template"), tr("Delete “%1” and its examples?").arg(list_->currentItem()->text())) != QMessageBox::Yes) return;
    warnOnStorageError(this, tr("Templates"), [&] {
        library_.templates().remove(current_);
        current_ = 0;
        reloadList();
        if (list_->count() > 0) list_->setCurrentRow(0);
        else load(0);
    });
}

void TemplateEditor::addExample() {
    if (current_ == 0) return;
    warnOnStorageError(this, tr("Templates"), [&] {
        library_.templates().addExample(current_, "", "");
        load(current_);
        examples_->setCurrentCell(examples_->rowCount() - 1, 0);
    });
}

void TemplateEditor::removeExample() {
    const int row = examples_->currentRow();
    if (current_ == 0 || row < 0) return;
    warnOnStorageError(this, tr("Templates"), [&] {
        library_.templates().removeExample(examples_->item(row, 0)->data(Qt::UserRole).toLongLong());
        load(current_);
    });
}

void TemplateEditor::moveExample(int delta) {
    const int row = examples_->currentRow();
    if (current_ == 0 || row < 0 || row + delta < 0 || row + delta >= examples_->rowCount()) return;
    warnOnStorageError(this, tr("Templates"), [&] {
        library_.templates().moveExample(examples_->item(row, 0)->data(Qt::UserRole).toLongLong(), row + delta);
        load(current_);
        examples_->setCurrentCell(row + delta, 0);
    });
}

bool TemplateEditor::setExampleImage(const QString& path) {
    const int row = examples_->currentRow();
    if (current_ == 0 || row < 0) return false;
    std::optional<std::string> sha;
    if (!path.isEmpty()) {
        const app::ImportedImage image = app::importImageFile(library_, path);
        if (!image.error.isEmpty()) {
            QMessageBox::warning(this, tr("Templates"), image.error);
            return false;
        }
        sha = image.sha256;
    }
    if (!warnOnStorageError(this, tr("Templates"), [&] {
        storage::FewShotExample e = exampleAt(row);
        e.imageSha256 = sha;
        library_.templates().updateExample(e);
    }))
        return false;
    load(current_);
    examples_->setCurrentCell(row, 0);
    return true;
}

}  // namespace lumen::ui
