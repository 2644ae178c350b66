#pragma once
// The application service behind a chat: takes what the user sends, stores it, and (once the
// engine is loaded) runs the reply. The UI and lumen-cli both talk to it.

#include <QObject>
#include <QString>

#include "app/library.h"

namespace lumen::app {

class Assistant : public QObject {
    Q_OBJECT
public:
    explicit Assistant(Library& library, QObject* parent = nullptr);

    // Stores the user's message in the chat (creating a chat titled after the message when
    // chatId is 0) and returns the chat id, or 0 when nothing was stored (empty text, error).
    std::int64_t submitUserMessage(std::int64_t chatId, const QString& text);

    // A chat title from the first line of a message: trimmed, at most `maxLength` characters.
    static QString titleFromMessage(const QString& text, int maxLength = 48);

signals:
    void chatCreated(qint64 chatId);
    void messageStored(qint64 chatId, qint64 messageId);
    void errorOccurred(const QString& message);

private:
    Library& library_;
};

}  // namespace lumen::app
