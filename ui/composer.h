#pragma once
// Where the user writes: multi-line; Enter sends, Shift+Enter starts a new line. Image files
// dropped on it and images pasted into it are handed on (imagesDropped), not inserted as text.
// It is as tall as what is written, from two lines to eight (then it scrolls), so the transcript
// keeps the room in a small window.

#include <QPlainTextEdit>

namespace lumen::ui {

class Composer : public QPlainTextEdit {
    Q_OBJECT
public:
    explicit Composer(QWidget* parent = nullptr);
    QSize sizeHint() const override;
    QSize minimumSizeHint() const override;

signals:
    void submitRequested();
    // Each entry: a file path (dropped or pasted files) or, for image data, the encoded bytes
    // with an empty path.
    void imagesDropped(const QStringList& paths, const QList<QByteArray>& data);

protected:
    void keyPressEvent(QKeyEvent* event) override;
    bool canInsertFromMimeData(const QMimeData* source) const override;
    void insertFromMimeData(const QMimeData* source) override;
};

}  // namespace lumen::ui
