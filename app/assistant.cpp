#include "app/assistant.h"

#include "app/logging.h"

namespace lumen::app {

Assistant::Assistant(Library& library, QObject* parent) : QObject(parent), library_(library) {}

QString Assistant::titleFromMessage(const QString& text, int maxLength) {
    QString line = text.trimmed().section(QLatin1Char('\n'), 0, 0).simplified();
    if (line.isEmpty()) return tr("New chat");
    if (line.size() > maxLength) {
        line.truncate(maxLength - 1);
        const int space = line.lastIndexOf(QLatin1Char(' '));
        if (space > maxLength / 2) line.truncate(space);
        line = line.trimmed() + QStringLiteral("…");
    }
    return line;
}

std::int64_t Assistant::submitUserMessage(std::int64_t chatId, const QString& text) {
    if (text.trimmed().isEmpty()) return 0;
    try {
        if (chatId == 0) {
            chatId = library_.chats().createChat(titleFromMessage(text).toStdString()).id;
            emit chatCreated(chatId);
        }
        storage::NewMessage message;
        message.role = storage::Role::User;
        message.content = text.toStdString();
        const std::int64_t messageId = library_.chats().addMessage(chatId, message);
        emit messageStored(chatId, messageId);
        return chatId;
    } catch (const storage::Error& e) {
        qCWarning(lcApp) << "storing a message failed:" << e.what();
        emit errorOccurred(QString::fromUtf8(e.what()));
        return 0;
    }
}

}  // namespace lumen::app
