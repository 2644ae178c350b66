#pragma once
// The sidebar's rows: a chat's title and, while searching, the words around its best hit on a
// second, smaller and dimmer line (ChatListModel::SnippetRole).

#include <QStyledItemDelegate>

namespace lumen::ui {

class ChatListDelegate : public QStyledItemDelegate {
    Q_OBJECT
public:
    using QStyledItemDelegate::QStyledItemDelegate;

    void paint(QPainter* painter, const QStyleOptionViewItem& option, const QModelIndex& index) const override;
    QSize sizeHint(const QStyleOptionViewItem& option, const QModelIndex& index) const override;
};

}  // namespace lumen::ui
