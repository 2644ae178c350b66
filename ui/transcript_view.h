#pragma once
// The transcript of the current chat, rendered from a MessageListModel.

#include <QTextBrowser>

namespace lumen::app {
class MessageListModel;
}

namespace lumen::ui {

class TranscriptView : public QTextBrowser {
    Q_OBJECT
public:
    explicit TranscriptView(app::MessageListModel& model, QWidget* parent = nullptr);

    // The transcript as HTML (what the view shows), for tests and copying.
    QString renderHtml() const;

private:
    void refresh();
    app::MessageListModel& model_;
};

}  // namespace lumen::ui
