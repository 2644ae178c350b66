#include "app/message_list_model.h"

#include <QDateTime>
#include <QStringList>

namespace lumen::app {

QString replyFooter(const storage::Message& m) {
    if (m.role != storage::Role::Assistant) return {};
    QStringList parts;
    if (m.metrics.model) parts << QString::fromStdString(*m.metrics.model);
    if (m.metrics.ttftMs) parts << QStringLiteral("TTFT %1 ms").arg(*m.metrics.ttftMs, 0, 'f', 0);
    if (m.metrics.tokensPerSecond) parts << QStringLiteral("%1 tokens/s").arg(*m.metrics.tokensPerSecond, 0, 'f', 1);
    switch (m.status) {
        case storage::MessageStatus::Partial: parts << QStringLiteral("writing…"); break;
        case storage::MessageStatus::Stopped: parts << QStringLiteral("stopped"); break;
        case storage::MessageStatus::Error:
            parts << QStringLiteral("error: %1").arg(QString::fromStdString(m.error.value_or("unknown")));
            break;
        case storage::MessageStatus::Complete: break;
    }
    return parts.join(QStringLiteral(" · "));
}

MessageListModel::MessageListModel(storage::ChatStore& store, QObject* parent)
    : QAbstractListModel(parent), store_(store) {}

int MessageListModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : static_cast<int>(messages_.size());
}

QVariant MessageListModel::data(const QModelIndex& index, int role) const {
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid)) return {};
    const storage::Message& m = messages_[static_cast<std::size_t>(index.row())];
    switch (role) {
        case Qt::DisplayRole:
        case ContentRole: return QString::fromStdString(m.content);
        case IdRole: return QVariant::fromValue<qint64>(m.id);
        case RoleNameRole: return QString::fromUtf8(storage::toString(m.role).data());
        case StatusRole: return QString::fromUtf8(storage::toString(m.status).data());
        case FooterRole: return replyFooter(m);
        case CreatedAtRole: return QDateTime::fromMSecsSinceEpoch(m.createdAt);
        case ReasoningRole: return QString::fromStdString(m.reasoning);
        case ReasoningMsRole: return m.metrics.reasoningMs ? QVariant(*m.metrics.reasoningMs) : QVariant();
        case ImagesRole: {
            QStringList images;
            for (const auto& sha : m.images) images << QString::fromStdString(sha);
            return images;
        }
        default: return {};
    }
}

QHash<int, QByteArray> MessageListModel::roleNames() const {
    auto names = QAbstractListModel::roleNames();
    names[IdRole] = "messageId";
    names[RoleNameRole] = "role";
    names[ContentRole] = "content";
    names[StatusRole] = "status";
    names[FooterRole] = "footer";
    names[CreatedAtRole] = "createdAt";
    names[ImagesRole] = "images";
    names[ReasoningRole] = "reasoning";
    names[ReasoningMsRole] = "reasoningMs";
    return names;
}

void MessageListModel::setChat(std::int64_t chatId) {
    chatId_ = chatId;
    reload();
}

void MessageListModel::reload() {
    std::vector<storage::Message> messages;
    if (chatId_ != 0) {
        try {
            messages = store_.messages(chatId_);
        } catch (const storage::Error& e) {
            emit errorOccurred(QString::fromUtf8(e.what()));
        }
    }
    beginResetModel();
    messages_ = std::move(messages);
    endResetModel();
}

void MessageListModel::appendStored(std::int64_t messageId) {
    std::optional<storage::Message> m;
    try {
        m = store_.message(messageId);
    } catch (const storage::Error& e) {
        emit errorOccurred(QString::fromUtf8(e.what()));
        return;
    }
    if (!m || m->chatId != chatId_) return;
    const int row = rowCount();
    beginInsertRows({}, row, row);
    messages_.push_back(std::move(*m));
    endInsertRows();
}

const storage::Message* MessageListModel::messageAt(int row) const {
    if (row < 0 || row >= rowCount()) return nullptr;
    return &messages_[static_cast<std::size_t>(row)];
}

void MessageListModel::appendTo(std::int64_t messageId, std::string storage::Message::*field, int role, const QString& piece) {
    for (std::size_t row = 0; row < messages_.size(); ++row)
        if (messages_[row].id == messageId) {
            messages_[row].*field += piece.toStdString();
            const QModelIndex i = index(static_cast<int>(row));
            emit dataChanged(i, i, {role});
            return;
        }
}

void MessageListModel::appendToMessage(std::int64_t messageId, const QString& piece) {
    appendTo(messageId, &storage::Message::content, ContentRole, piece);
}

void MessageListModel::appendReasoningToMessage(std::int64_t messageId, const QString& piece) {
    appendTo(messageId, &storage::Message::reasoning, ReasoningRole, piece);
}

void MessageListModel::refreshMessage(std::int64_t messageId) {
    for (std::size_t row = 0; row < messages_.size(); ++row)
        if (messages_[row].id == messageId) {
            try {
                if (auto m = store_.message(messageId)) messages_[row] = std::move(*m);
            } catch (const storage::Error& e) {
                emit errorOccurred(QString::fromUtf8(e.what()));
                return;
            }
            const QModelIndex i = index(static_cast<int>(row));
            emit dataChanged(i, i);
            return;
        }
}

}  // namespace lumen::app
