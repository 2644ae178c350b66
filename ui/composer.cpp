#include "ui/composer.h"

#include <QBuffer>
#include <QImage>
#include <QKeyEvent>
#include <QMimeData>

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

bool Composer::canInsertFromMimeData(const QMimeData* source) const {
    return source->hasImage() || source->hasUrls() || QPlainTextEdit::canInsertFromMimeData(source);
}

void Composer::insertFromMimeData(const QMimeData* source) {
    QStringList paths;
    QList<QByteArray> bytes;
    for (const QUrl& url : source->urls())
        if (url.isLocalFile()) paths << url.toLocalFile();
    if (paths.isEmpty() && source->hasImage()) {
        // A pasted bitmap: stored as PNG.
        QByteArray png;
        QBuffer buffer(&png);
        buffer.open(QIODevice::WriteOnly);
        qvariant_cast<QImage>(source->imageData()).save(&buffer, "PNG");
        if (!png.isEmpty()) bytes << png;
    }
    if (!paths.isEmpty() || !bytes.isEmpty()) {
        emit imagesDropped(paths, bytes);
        return;
    }
    QPlainTextEdit::insertFromMimeData(source);
}

}  // namespace lumen::ui
