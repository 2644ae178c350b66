#pragma once
// The transcript of the current chat, rendered from a MessageListModel: each message with its
// images as thumbnails (click: full size) and, under each image, Describe · Classify · Ask.

#include <QStringList>
#include <QTextBrowser>
#include <QSet>
#include <QTimer>
#include <functional>

namespace lumen::app {
class MessageListModel;
}

namespace lumen::ui {

class TranscriptView : public QTextBrowser {
    Q_OBJECT
public:
    // thumbnail(sha256) gives the stored PNG thumbnail of an image (empty when there is none).
    using ThumbnailSource = std::function<QByteArray(const QString& sha256)>;
    explicit TranscriptView(app::MessageListModel& model, ThumbnailSource thumbnails = {}, QWidget* parent = nullptr);

    // The transcript as HTML (what the view shows), for tests and copying.
    QString renderHtml() const;

signals:
    // action: "open", "describe", "classify" or "ask".
    void imageAction(const QString& action, const QString& sha256);
    // The user asked to edit (and resend) one of their messages.
    void editRequested(qint64 messageId);

protected:
    QVariant loadResource(int type, const QUrl& name) override;
    void changeEvent(QEvent* event) override;

private:
    void refresh();
    QString renderMarkdown(const QString& text) const;
    // A reply's reasoning: one line ("Thought for 12 s", "Thinking…") that expands to the text.
    QString renderReasoning(qint64 messageId, const QString& reasoning, const QVariant& reasoningMs, bool writing) const;
    app::MessageListModel& model_;
    mutable QStringList codeBlocks_;
    QTimer refreshTimer_;  // the fenced code blocks shown, for their Copy links
    ThumbnailSource thumbnails_;
    QSet<qint64> expanded_;  // replies whose reasoning is shown
};

}  // namespace lumen::ui
