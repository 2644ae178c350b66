#include "ui/composer.h"

#include <QKeyEvent>

namespace lumen::ui {

Composer::Composer(QWidget* parent) : QPlainTextEdit(parent) {
    setObjectName(QStringLiteral("composer"));
    setPlaceholderText(tr("Message Lumen (Enter to send, Shift+Enter for a new line)"));
    setTabChangesFocus(true);
}

void Composer::keyPressEvent(QKeyEvent* event) {
    const bool enter = event->key() == Qt::Key_Return || event->key() == Qt::Key_Enter;
    const auto modifiers = event->modifiers() & ~Qt::KeypadModifier;
    if (enter && modifiers == Qt::NoModifier) {
        event->accept();
        emit submitRequested();
        return;
    }
    if (enter && modifiers == Qt::ShiftModifier) {
        // A plain newline, not the paragraph separator Shift+Enter inserts by default.
        insertPlainText(QStringLiteral("\n"));
        event->accept();
        return;
    }
    QPlainTextEdit::keyPressEvent(event);
}

}  // namespace lumen::ui
