#pragma once
// Label sets for Classify: labels, the prompt templates that turn a label into text for CLIP
// ("a photo of a {}."), example images per label (dropped on the examples list or added from
// files), and the mode: zero-shot (prompts), few-shot (examples) or blended (both).

#include <QDialog>

#include "app/library.h"

class QComboBox;
class QListWidget;
class QPlainTextEdit;

namespace lumen::ui {

class LabelSetEditor : public QDialog {
    Q_OBJECT
public:
    explicit LabelSetEditor(app::Library& library, QWidget* parent = nullptr);

    // What the buttons do after asking for a name (tests call these directly).
    std::int64_t createSet(const QString& name);
    std::int64_t addLabel(const QString& name);
    // Imports image files as examples of the selected label; returns how many were added.
    int addExampleFiles(const QStringList& paths);
    void selectSet(std::int64_t id);
    void selectLabel(int row);
    std::int64_t currentSet() const { return set_; }

protected:
    bool eventFilter(QObject* watched, QEvent* event) override;

private:
    void reloadSets();
    void loadSet(std::int64_t id);
    void loadExamples();
    // Each button enabled only when it has something to act on (a set, a label, an image).
    void updateButtons();
    std::int64_t currentLabel() const;

    app::Library& library_;
    std::int64_t set_ = 0;
    bool loading_ = false;
    QListWidget *sets_, *labels_, *examples_;
    QComboBox* mode_;
    QPlainTextEdit* templates_;
};

}  // namespace lumen::ui
