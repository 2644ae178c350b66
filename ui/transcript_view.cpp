#include "ui/transcript_view.h"

#include <QDateTime>
#include <QScrollBar>

#include "app/message_list_model.h"

namespace lumen::ui {
namespace {

QString roleHeading(const QString& role) {
    if (role == QLatin1String("assistant")) return QObject::tr("Lumen");
    if (role == QLatin1String("system")) return QObject::tr("System");
    return QObject::tr("You");
}

QString escapeMultiline(const QString& text) {
    QString html = text.toHtmlEscaped();
    html.replace(QLatin1Char('\n'), QStringLiteral("<br/>"));
    return html;
}

}  // namespace

TranscriptView::TranscriptView(app::MessageListModel& model, QWidget* parent)
    : QTextBrowser(parent), model_(model) {
    setObjectName(QStringLiteral("transcript"));
    setOpenExternalLinks(false);
    setPlaceholderText(tr("No messages yet. Write one below."));
    connect(&model_, &QAbstractItemModel::modelReset, this, &TranscriptView::refresh);
    connect(&model_, &QAbstractItemModel::rowsInserted, this, &TranscriptView::refresh);
    connect(&model_, &QAbstractItemModel::rowsRemoved, this, &TranscriptView::refresh);
    connect(&model_, &QAbstractItemModel::dataChanged, this, &TranscriptView::refresh);
    refresh();
}

QString TranscriptView::renderHtml() const {
    QString html;
    for (int row = 0; row < model_.rowCount(); ++row) {
        const QModelIndex i = model_.index(row);
        const QString role = i.data(app::MessageListModel::RoleNameRole).toString();
        const QString when = i.data(app::MessageListModel::CreatedAtRole).toDateTime().toString(QStringLiteral("hh:mm"));
        html += QStringLiteral("<div style='margin-bottom:12px'><p><b>%1</b> <span style='color:gray'>%2</span></p>")
                    .arg(roleHeading(role), when);
        html += QStringLiteral("<p>%1</p>").arg(escapeMultiline(i.data(app::MessageListModel::ContentRole).toString()));
        const QString footer = i.data(app::MessageListModel::FooterRole).toString();
        if (!footer.isEmpty())
            html += QStringLiteral("<p style='color:gray'><small>%1</small></p>").arg(footer.toHtmlEscaped());
        html += QStringLiteral("</div>");
    }
    return html;
}

void TranscriptView::refresh() {
    setHtml(renderHtml());
    verticalScrollBar()->setValue(verticalScrollBar()->maximum());
}

}  // namespace lumen::ui
