#pragma once
// The messages of one chat, in order.

#include <QAbstractListModel>
#include <vector>

#include "storage/chat_store.h"

namespace lumen::app {

class MessageListModel : public QAbstractListModel {
    Q_OBJECT
public:
    enum Role {
        IdRole = Qt::UserRole + 1,
        RoleNameRole,   // "user", "assistant", "system"
        ContentRole,
        StatusRole,     // "complete", "partial", "stopped", "error"
        FooterRole,     // "model · TTFT 120 ms · 35.2 tokens/s" for replies
        CreatedAtRole,
        ImagesRole,     // QStringList of SHA-256
        ReasoningRole,  // a reasoning reply's thinking ("" for others)
        ReasoningMsRole,  // how long it thought (double; invalid while thinking or for others)
    };

    explicit MessageListModel(storage::ChatStore& store, QObject* parent = nullptr);

    int rowCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QHash<int, QByteArray> roleNames() const override;

    // Shows the chat's messages (0: none).
    void setChat(std::int64_t chatId);
    std::int64_t chatId() const { return chatId_; }
    void reload();
    // Appends a message already stored in the current chat.
    void appendStored(std::int64_t messageId);
    // A streaming reply grew by `piece` (the store has it, or will at the next flush).
    void appendToMessage(std::int64_t messageId, const QString& piece);
    // The same for a piece of its reasoning.
    void appendReasoningToMessage(std::int64_t messageId, const QString& piece);
    // Re-reads one message from the store (a reply finished: status and metrics).
    void refreshMessage(std::int64_t messageId);
    const storage::Message* messageAt(int row) const;

signals:
    void errorOccurred(const QString& message);

private:
    void appendTo(std::int64_t messageId, std::string storage::Message::*field, int role, const QString& piece);

    storage::ChatStore& store_;
    std::int64_t chatId_ = 0;
    std::vector<storage::Message> messages_;
};

// The footer under a reply: model, time to first token, speed, and how it ended.
QString replyFooter(const storage::Message& message);

}  // namespace lumen::app
