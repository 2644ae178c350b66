#include "ui/composer.h"

#include <QBuffer>
#include <QImage>
#include <QKeyEvent>
#include <QMimeData>
#include <QTextBlock>
#include <QTextLayout>
#include <algorithm>

namespace lumen::ui {

Composer::Composer(QWidget* parent) : QPlainTextEdit(parent) {
    setObjectName(QStringLiteral("composer"));
    setPlaceholderText(tr("Message Lumen (Enter to send, Shift+Enter for a new line)"));
    setTabChangesFocus(true);
    setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Fixed);
    connect(document(), &QTextDocument::contentsChanged, this, [this] { updateGeometry(); });
}

namespace {
int heightFor(const QPlainTextEdit& edit, int lines) {
    const int frame = 2 * edit.frameWidth() + static_cast<int>(edit.document()->documentMargin() * 2) + edit.contentsMargins().top() +
                      edit.contentsMargins().bottom();
    return lines * edit.fontMetrics().lineSpacing() + frame;
}
}  // namespace

QSize Composer::sizeHint() const {
    // (wrapped lines count: the document's line count at the current width)
    int lines = 0;
    for (QTextBlock b = document()->begin(); b.isValid(); b = b.next()) lines += std::max(1, b.layout() ? b.layout()->lineCount() : 1);
    return {QPlainTextEdit::sizeHint().width(), heightFor(*this, std::clamp(lines, 2, 8))};
}

QSize Composer::minimumSizeHint() const { return {QPlainTextEdit::minimumSizeHint().width(), heightFor(*this, 2)}; }

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
