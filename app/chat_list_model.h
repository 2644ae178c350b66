#pragma once
// The chat list: pinned chats first, then every chat, most recently updated first, in groups by
// date (Today, Yesterday, Previous 7 days, Previous 30 days, then by month), optionally filtered
// by a full-text search over titles and message text (search results are not grouped). Editing
// the display role renames the chat. A chat's pin is one of its own settings ("pinned"), so it
// goes with the chat and travels in its export.

#include <QAbstractListModel>
#include <QDate>
#include <QDateTime>
#include <vector>

#include "storage/chat_store.h"

namespace lumen::app {

class ChatListModel : public QAbstractListModel {
    Q_OBJECT
public:
    enum Role { IdRole = Qt::UserRole + 1, TitleRole, UpdatedAtRole, SnippetRole, PinnedRole, GroupRole, GroupStartRole, OwnSettingsRole };

    explicit ChatListModel(storage::ChatStore& store, QObject* parent = nullptr);

    int rowCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    bool setData(const QModelIndex& index, const QVariant& value, int role = Qt::EditRole) override;
    Qt::ItemFlags flags(const QModelIndex& index) const override;
    QHash<int, QByteArray> roleNames() const override;

    // Re-reads the chats from the store.
    void reload();
    // Empty shows every chat; otherwise only chats whose title or messages match.
    void setFilter(const QString& text);
    QString filter() const { return filter_; }

    std::int64_t chatId(int row) const;
    int rowOf(std::int64_t chatId) const;  // -1 when not shown

    // Creates a chat (shown first) and returns its id.
    std::int64_t createChat(const QString& title);
    bool renameChat(std::int64_t chatId, const QString& title);
    void deleteChat(std::int64_t chatId);
    void setPinned(std::int64_t chatId, bool pinned);
    bool isPinned(std::int64_t chatId) const;

    // The sidebar's heading for a chat last updated at `when`, seen on `today`.
    static QString dateGroup(const QDateTime& when, const QDate& today);

signals:
    // A store operation failed; the message is for the user.
    void errorOccurred(const QString& message);

private:
    struct Row {
        storage::Chat chat;
        QString snippet;
        bool pinned = false;
        bool ownSettings = false;  // sampling or a system prompt of its own: the sidebar shows a badge
        QString group;
        bool groupStart = false;  // the first row of its group: the delegate draws the heading above it
    };
    void regroup();
    storage::ChatStore& store_;
    std::vector<Row> rows_;
    QString filter_;
};

}  // namespace lumen::app
