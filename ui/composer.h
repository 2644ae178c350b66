#pragma once
// Where the user writes: multi-line; Enter sends, Shift+Enter starts a new line.

#include <QPlainTextEdit>

namespace lumen::ui {

class Composer : public QPlainTextEdit {
    Q_OBJECT
public:
    explicit Composer(QWidget* parent = nullptr);

signals:
    void submitRequested();

protected:
    void keyPressEvent(QKeyEvent* event) override;
};

}  // namespace lumen::ui
