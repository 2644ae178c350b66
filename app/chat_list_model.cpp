#include "app/chat_list_model.h"

#include <QDateTime>
#include <QLocale>
#include <algorithm>
#include <set>

namespace lumen::app {

ChatListModel::ChatListModel(storage::ChatStore& store, QObject* parent)
    : QAbstractListModel(parent), store_(store) {
    reload();
}

int ChatListModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : static_cast<int>(rows_.size());
}

QVariant ChatListModel::data(const QModelIndex& index, int role) const {
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid)) return {};
    const Row& row = rows_[static_cast<std::size_t>(index.row())];
    switch (role) {
        case Qt::DisplayRole:
        case Qt::EditRole:
        case TitleRole: return QString::fromStdString(row.chat.title);
        case Qt::ToolTipRole:
            if (!row.snippet.isEmpty()) return row.snippet;
            return row.ownSettings ? tr("%1 (settings of its own: Chat ▸ Settings for This Chat)").arg(QString::fromStdString(row.chat.title))
                                   : QString::fromStdString(row.chat.title);
        case IdRole: return QVariant::fromValue<qint64>(row.chat.id);
        case UpdatedAtRole: return QDateTime::fromMSecsSinceEpoch(row.chat.updatedAt);
        case SnippetRole: return row.snippet;
        case PinnedRole: return row.pinned;
        case OwnSettingsRole: return row.ownSettings;
        case GroupRole: return row.group;
        case GroupStartRole: return row.groupStart;
        default: return {};
    }
}

bool ChatListModel::setData(const QModelIndex& index, const QVariant& value, int role) {
    if (role != Qt::EditRole || !checkIndex(index, CheckIndexOption::IndexIsValid)) return false;
    return renameChat(rows_[static_cast<std::size_t>(index.row())].chat.id, value.toString());
}

Qt::ItemFlags ChatListModel::flags(const QModelIndex& index) const {
    if (!index.isValid()) return Qt::NoItemFlags;
    return QAbstractListModel::flags(index) | Qt::ItemIsEditable;
}

QHash<int, QByteArray> ChatListModel::roleNames() const {
    auto names = QAbstractListModel::roleNames();
    names[IdRole] = "chatId";
    names[TitleRole] = "title";
    names[UpdatedAtRole] = "updatedAt";
    names[SnippetRole] = "snippet";
    names[PinnedRole] = "pinned";
    names[GroupRole] = "group";
    return names;
}

void ChatListModel::reload() {
    std::vector<Row> rows;
    try {
        if (filter_.trimmed().isEmpty()) {
            for (auto& chat : store_.chats()) {
                const auto own = store_.settings(chat.id);
                const bool pinned = own.contains("pinned") && own.at("pinned") == "1";
                const bool ownSettings = std::any_of(own.begin(), own.end(), [](const auto& kv) {
                    return kv.first.starts_with("generation.") || kv.first == "system_prompt";
                });
                rows.push_back({std::move(chat), {}, pinned, ownSettings});
            }
            std::stable_partition(rows.begin(), rows.end(), [](const Row& r) { return r.pinned; });
        } else {
            // One row per matching chat, in the order of its best hit, with that hit's snippet.
            std::set<std::int64_t> seen;
            for (const auto& hit : store_.search(filter_.toStdString(), 200, {"", "", "…"})) {
                if (!seen.insert(hit.chatId).second) continue;
                if (auto chat = store_.chat(hit.chatId))
                    rows.push_back({std::move(*chat), QString::fromStdString(hit.snippet)});
            }
        }
    } catch (const storage::Error& e) {
        emit errorOccurred(QString::fromUtf8(e.what()));
    }
    beginResetModel();
    rows_ = std::move(rows);
    regroup();
    endResetModel();
}

QString ChatListModel::dateGroup(const QDateTime& when, const QDate& today) {
    const qint64 days = when.date().daysTo(today);
    if (days <= 0) return tr("Today");
    if (days == 1) return tr("Yesterday");
    if (days < 7) return tr("Previous 7 days");
    if (days < 30) return tr("Previous 30 days");
    return when.date().year() == today.year() ? QLocale().standaloneMonthName(when.date().month()) : QString::number(when.date().year());
}

void ChatListModel::regroup() {
    const QDate today = QDate::currentDate();
    for (std::size_t i = 0; i < rows_.size(); ++i) {
        Row& r = rows_[i];
        r.group = !filter_.trimmed().isEmpty() ? QString() : r.pinned ? tr("Pinned") : dateGroup(QDateTime::fromMSecsSinceEpoch(r.chat.updatedAt), today);
        r.groupStart = !r.group.isEmpty() && (i == 0 || rows_[i - 1].group != r.group);
    }
}

void ChatListModel::setPinned(std::int64_t chatId, bool pinned) {
    try {
        if (pinned) store_.setSetting(chatId, "pinned", "1");
        else store_.removeSetting(chatId, "pinned");
    } catch (const storage::Error& e) {
        emit errorOccurred(QString::fromUtf8(e.what()));
        return;
    }
    reload();
}

bool ChatListModel::isPinned(std::int64_t chatId) const {
    const int row = rowOf(chatId);
    return row >= 0 && rows_[static_cast<std::size_t>(row)].pinned;
}

void ChatListModel::setFilter(const QString& text) {
    if (text == filter_) return;
    filter_ = text;
    reload();
}

std::int64_t ChatListModel::chatId(int row) const {
    if (row < 0 || row >= rowCount()) return 0;
    return rows_[static_cast<std::size_t>(row)].chat.id;
}

int ChatListModel::rowOf(std::int64_t chatId) const {
    for (std::size_t i = 0; i < rows_.size(); ++i)
        if (rows_[i].chat.id == chatId) return static_cast<int>(i);
    return -1;
}

std::int64_t ChatListModel::createChat(const QString& title) {
    try {
        const storage::Chat chat = store_.createChat(title.toStdString());
        if (!filter_.isEmpty()) {
            filter_.clear();
            reload();
            return chat.id;
        }
        // First after the pinned chats; the headings are worked out again.
        const auto at = std::find_if(rows_.begin(), rows_.end(), [](const Row& r) { return !r.pinned; }) - rows_.begin();
        beginInsertRows({}, static_cast<int>(at), static_cast<int>(at));
        rows_.insert(rows_.begin() + at, Row{chat, {}});
        endInsertRows();
        regroup();
        if (!rows_.empty()) emit dataChanged(index(0), index(rowCount() - 1), {GroupRole, GroupStartRole});
        return chat.id;
    } catch (const storage::Error& e) {
        emit errorOccurred(QString::fromUtf8(e.what()));
        return 0;
    }
}

bool ChatListModel::renameChat(std::int64_t chatId, const QString& title) {
    const QString trimmed = title.trimmed();
    if (trimmed.isEmpty()) return false;
    try {
        store_.renameChat(chatId, trimmed.toStdString());
    } catch (const storage::Error& e) {
        emit errorOccurred(QString::fromUtf8(e.what()));
        return false;
    }
    const int row = rowOf(chatId);
    if (row >= 0) {
        rows_[static_cast<std::size_t>(row)].chat.title = trimmed.toStdString();
        const QModelIndex i = index(row);
        emit dataChanged(i, i, {Qt::DisplayRole, Qt::EditRole, TitleRole});
    }
    return true;
}

void ChatListModel::deleteChat(std::int64_t chatId) {
    try {
        store_.deleteChat(chatId);
    } catch (const storage::Error& e) {
        emit errorOccurred(QString::fromUtf8(e.what()));
        return;
    }
    const int row = rowOf(chatId);
    if (row < 0) return;
    beginRemoveRows({}, row, row);
    rows_.erase(rows_.begin() + row);
    endRemoveRows();
    regroup();
    if (!rows_.empty()) emit dataChanged(index(0), index(rowCount() - 1), {GroupRole, GroupStartRole});
}

}  // namespace lumen::app
