#pragma once
// The transcript of the current chat, rendered from a MessageListModel: each message with its
// images as thumbnails (click: full size) and, under each image, Describe · Classify · Ask.

#include <QStringList>
#include <QTextBrowser>
#include <QSet>
#include <QTimer>
#include <QToolButton>
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
    // While a reply is being written the last reply offers no Regenerate.
    void setReplying(bool replying);
    // The view shows the end of the transcript (within a few pixels): a growing reply is followed.
    bool isAtEnd() const;

signals:
    // action: "open", "describe", "classify" or "ask".
    void imageAction(const QString& action, const QString& sha256);
    // The user asked to edit (and resend) one of their messages.
    void editRequested(qint64 messageId);
    // The user asked for the last reply again.
    void regenerateRequested(qint64 messageId);

protected:
    QVariant loadResource(int type, const QUrl& name) override;
    void changeEvent(QEvent* event) override;
    void resizeEvent(QResizeEvent* event) override;

private:
    enum class Scroll { ToEnd, Hold };  // Hold: stays where the reader is unless at the end
    static constexpr int kEndSlack = 8;
    void refresh(Scroll scroll);
    void placeJumpButton();
    QString renderMarkdown(const QString& text) const;
    // A reply's reasoning: one line ("Thought for 12 s", "Thinking…") that expands to the text.
    QString renderReasoning(qint64 messageId, const QString& reasoning, const QVariant& reasoningMs, bool writing) const;
    app::MessageListModel& model_;
    mutable QStringList codeBlocks_;  // the fenced code blocks shown, for their Copy links
    QTimer refreshTimer_;
    ThumbnailSource thumbnails_;
    QSet<qint64> expanded_;  // replies whose reasoning is shown
    bool replying_ = false;
    bool followEnd_ = true;  // the view keeps to the end as it grows (the reader has not scrolled up)
    bool rendering_ = false;  // setHtml is resetting the scroll bar
    QToolButton* jumpButton_ = nullptr;  // "↓ Latest", while the reader is above the end
};

}  // namespace lumen::ui
