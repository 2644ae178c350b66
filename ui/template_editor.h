#pragma once
// The prompt-template library: create, duplicate, rename, delete; edit a template's system
// prompt, its body with {{variables}} and its few-shot examples (input/output pairs, reorderable);
// a live preview of the exact text the loaded model would see for one message through it (after
// the model's chat template), with its token count.

#include <QDialog>

#include "app/assistant.h"
#include "app/library.h"  // (storage::FewShotExample)

class QLabel;
class QListWidget;
class QPlainTextEdit;
class QTableWidget;

namespace lumen::ui {

class TemplateEditor : public QDialog {
    Q_OBJECT
public:
    TemplateEditor(app::Library& library, app::Assistant& assistant, QWidget* parent = nullptr);

    // The preview's text and the conversation it renders (what a message "(your message)" sent
    // through the selected template becomes).
    QString previewText() const;
    nlohmann::ordered_json previewConversation() const;
    std::int64_t currentTemplate() const { return current_; }
    void selectTemplate(std::int64_t id);
    // Gives the selected example an image (a file; empty: none). What Set Image… does.
    bool setExampleImage(const QString& path);

    static constexpr const char* kSampleInput = "(your message)";

private:
    void reloadList();
    void load(std::int64_t id);
    void save();
    storage::FewShotExample exampleAt(int row) const;
    void updatePreview();
    void create();
    void duplicate();
    void rename();
    void remove();
    void addExample();
    void removeExample();
    void moveExample(int delta);

    app::Library& library_;
    app::Assistant& assistant_;
    std::int64_t current_ = 0;
    bool loading_ = false;
    QListWidget* list_;
    QPlainTextEdit *system_, *body_, *preview_;
    QTableWidget* examples_;
    QLabel* previewInfo_;
};

}  // namespace lumen::ui
