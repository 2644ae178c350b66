#include "ui/chat_list_delegate.h"

#include <QApplication>
#include <QPainter>
#include <algorithm>

#include "app/chat_list_model.h"

namespace lumen::ui {
namespace {

QString snippetOf(const QModelIndex& index) { return index.data(app::ChatListModel::SnippetRole).toString().simplified(); }

QFont smaller(QFont font) {
    font.setPointSizeF(font.pointSizeF() * 0.88);
    return font;
}

int headingHeight(const QStyleOptionViewItem& option, const QModelIndex& index) {
    return index.data(app::ChatListModel::GroupStartRole).toBool() ? QFontMetrics(smaller(option.font)).height() + 10 : 0;
}

}  // namespace

void ChatListDelegate::paint(QPainter* painter, const QStyleOptionViewItem& option, const QModelIndex& index) const {
    // A group's heading ("Pinned", "Today", "Yesterday", ...) above its first row, small and dim.
    if (const int heading = headingHeight(option, index); heading > 0) {
        painter->save();
        QFont font = smaller(option.font);
        font.setBold(true);
        painter->setFont(font);
        painter->setPen(option.palette.color(QPalette::Normal, QPalette::PlaceholderText));
        painter->drawText(option.rect.adjusted(6, 6, -4, 0).topLeft() + QPoint(0, QFontMetrics(font).ascent()), index.data(app::ChatListModel::GroupRole).toString());
        painter->restore();
        QStyleOptionViewItem below = option;
        below.rect.setTop(option.rect.top() + heading);
        return paintRow(painter, below, index);
    }
    paintRow(painter, option, index);
}

void ChatListDelegate::paintBadge(QPainter* painter, const QStyleOptionViewItem& option, const QModelIndex& index) const {
    // A chat with settings of its own (sampling, a system prompt): a small dot at the row's end.
    if (!index.data(app::ChatListModel::OwnSettingsRole).toBool()) return;
    const int d = std::max(6, option.fontMetrics.height() / 3);
    const QRect r(option.rect.right() - d - 6, option.rect.center().y() - d / 2, d, d);
    painter->save();
    painter->setRenderHint(QPainter::Antialiasing);
    painter->setPen(Qt::NoPen);
    painter->setBrush(option.palette.color(option.state & QStyle::State_Selected ? QPalette::HighlightedText : QPalette::Highlight));
    painter->drawEllipse(r);
    painter->restore();
}

void ChatListDelegate::paintRow(QPainter* painter, const QStyleOptionViewItem& option, const QModelIndex& index) const {
    const QString snippet = snippetOf(index);
    if (snippet.isEmpty()) {
        QStyledItemDelegate::paint(painter, option, index);
        return paintBadge(painter, option, index);
    }
    // The row's background, selection and focus as usual, with no text; then the two lines.
    QStyleOptionViewItem opt = option;
    initStyleOption(&opt, index);
    const QString title = opt.text;
    opt.text.clear();
    const QWidget* widget = opt.widget;
    QStyle* style = widget ? widget->style() : QApplication::style();
    style->drawControl(QStyle::CE_ItemViewItem, &opt, painter, widget);
    const QRect text = style->subElementRect(QStyle::SE_ItemViewItemText, &opt, widget).adjusted(2, 1, -2, -1);
    const bool selected = opt.state & QStyle::State_Selected;
    const QPalette::ColorGroup group = opt.state & QStyle::State_Enabled ? QPalette::Normal : QPalette::Disabled;
    painter->save();
    const QFontMetrics titleMetrics(opt.font);
    painter->setFont(opt.font);
    painter->setPen(opt.palette.color(group, selected ? QPalette::HighlightedText : QPalette::Text));
    painter->drawText(QRect(text.left(), text.top(), text.width(), titleMetrics.height()), Qt::AlignLeft | Qt::AlignVCenter,
                      titleMetrics.elidedText(title, Qt::ElideRight, text.width()));
    const QFont small = smaller(opt.font);
    const QFontMetrics smallMetrics(small);
    painter->setFont(small);
    painter->setPen(opt.palette.color(group, selected ? QPalette::HighlightedText : QPalette::PlaceholderText));
    painter->drawText(QRect(text.left(), text.top() + titleMetrics.height(), text.width(), smallMetrics.height()), Qt::AlignLeft | Qt::AlignVCenter,
                      smallMetrics.elidedText(snippet, Qt::ElideRight, text.width()));
    painter->restore();
}

QSize ChatListDelegate::sizeHint(const QStyleOptionViewItem& option, const QModelIndex& index) const {
    QSize size = QStyledItemDelegate::sizeHint(option, index);
    if (!snippetOf(index).isEmpty()) size.setHeight(size.height() + QFontMetrics(smaller(option.font)).height() + 2);
    size.setHeight(size.height() + headingHeight(option, index));
    return size;
}

}  // namespace lumen::ui
