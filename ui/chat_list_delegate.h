#pragma once
// The sidebar's rows: a chat's title and, while searching, the words around its best hit on a
// second, smaller and dimmer line (ChatListModel::SnippetRole); above the first row of a group,
// the group's heading (ChatListModel::GroupRole: Pinned, Today, Yesterday, ...); a small dot at
// the end of a chat with settings of its own (ChatListModel::OwnSettingsRole).

#include <QStyledItemDelegate>

namespace lumen::ui {

class ChatListDelegate : public QStyledItemDelegate {
    Q_OBJECT
public:
    using QStyledItemDelegate::QStyledItemDelegate;

    void paint(QPainter* painter, const QStyleOptionViewItem& option, const QModelIndex& index) const override;
    QSize sizeHint(const QStyleOptionViewItem& option, const QModelIndex& index) const override;

private:
    void paintRow(QPainter* painter, const QStyleOptionViewItem& option, const QModelIndex& index) const;
    void paintBadge(QPainter* painter, const QStyleOptionViewItem& option, const QModelIndex& index) const;
};

}  // namespace lumen::ui
