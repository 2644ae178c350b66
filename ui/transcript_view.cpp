#include "ui/transcript_view.h"

#include <QClipboard>
#include <QDateTime>
#include <QGuiApplication>
#include <QImage>
#include <QScrollBar>
#include <QTextDocument>

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

TranscriptView::TranscriptView(app::MessageListModel& model, ThumbnailSource thumbnails, QWidget* parent)
    : QTextBrowser(parent), model_(model), thumbnails_(std::move(thumbnails)) {
    setObjectName(QStringLiteral("transcript"));
    setOpenExternalLinks(false);
    setOpenLinks(false);
    connect(this, &QTextBrowser::anchorClicked, this, [this](const QUrl& url) {
        if (url.scheme() == QLatin1String("lumen-edit")) {
            emit editRequested(url.path().toLongLong());
            return;
        }
        if (url.scheme() == QLatin1String("lumen-think")) {
            const qint64 id = url.path().toLongLong();
            if (!expanded_.remove(id)) expanded_.insert(id);
            const int at = verticalScrollBar()->value();  // the reader stays where they were
            setHtml(renderHtml());
            verticalScrollBar()->setValue(at);
            return;
        }
        if (url.scheme() == QLatin1String("lumen-copy")) {
            const int n = url.path().toInt();
            if (n >= 0 && n < codeBlocks_.size()) QGuiApplication::clipboard()->setText(codeBlocks_[n]);
            return;
        }
        // lumen-image:ACTION/SHA
        if (url.scheme() != QLatin1String("lumen-image")) return;
        const QString path = url.path();
        const int slash = path.indexOf(QLatin1Char('/'));
        if (slash > 0) emit imageAction(path.left(slash), path.mid(slash + 1));
    });
    setPlaceholderText(tr("No messages yet. Write one below."));
    connect(&model_, &QAbstractItemModel::modelReset, this, &TranscriptView::refresh);
    connect(&model_, &QAbstractItemModel::rowsInserted, this, &TranscriptView::refresh);
    connect(&model_, &QAbstractItemModel::rowsRemoved, this, &TranscriptView::refresh);
    // A streaming reply changes its row many times a second: those redraws are coalesced.
    refreshTimer_.setSingleShot(true);
    refreshTimer_.setInterval(40);
    connect(&refreshTimer_, &QTimer::timeout, this, &TranscriptView::refresh);
    connect(&model_, &QAbstractItemModel::dataChanged, this, [this] {
        if (!refreshTimer_.isActive()) refreshTimer_.start();
    });
    refresh();
}

// Markdown (replies): fenced code blocks as preformatted text with a Copy link, the rest
// through Qt's CommonMark reader, with each line break the model wrote kept (as chat apps
// show replies: CommonMark alone would join the lines of a paragraph, and a classification's
// bars, into one line).
QString TranscriptView::renderMarkdown(const QString& text) const {
    QString html;
    const QStringList lines = text.split(QLatin1Char('\n'));
    QString prose, code;
    bool inCode = false;
    const auto flushProse = [&] {
        if (prose.trimmed().isEmpty()) {
            prose.clear();
            return;
        }
        QStringList proseLines = prose.split(QLatin1Char('\n'));
        for (qsizetype i = 0; i + 1 < proseLines.size(); ++i)  // two trailing spaces: a hard break
            if (!proseLines[i].trimmed().isEmpty() && !proseLines[i + 1].trimmed().isEmpty() && !proseLines[i].endsWith(QStringLiteral("  ")))
                proseLines[i] += QStringLiteral("  ");
        QTextDocument doc;
        doc.setMarkdown(proseLines.join(QLatin1Char('\n')));
        QString body = doc.toHtml();
        const int start = body.indexOf(QStringLiteral("<body")), open = body.indexOf(QLatin1Char('>'), start), end = body.lastIndexOf(QStringLiteral("</body>"));
        if (start >= 0 && open >= 0 && end > open) body = body.mid(open + 1, end - open - 1);
        html += body;
        prose.clear();
    };
    for (const QString& line : lines) {
        if (line.trimmed().startsWith(QStringLiteral("```"))) {
            if (inCode) {
                codeBlocks_.push_back(code);
                // (Qt's rich text takes colours, not palette roles: the theme's, as it is now)
                html += QStringLiteral("<pre style='background-color:%4; color:%5'>%1</pre><p><small><a href='lumen-copy:%2'>%3</a></small></p>")
                            .arg(code.toHtmlEscaped())
                            .arg(codeBlocks_.size() - 1)
                            .arg(tr("Copy code"), palette().color(QPalette::AlternateBase).name(), palette().color(QPalette::Text).name());
                code.clear();
            } else {
                flushProse();
            }
            inCode = !inCode;
            continue;
        }
        if (inCode) {
            if (!code.isEmpty()) code += QLatin1Char('\n');
            code += line;
        } else {
            prose += line + QLatin1Char('\n');
        }
    }
    if (inCode) prose += QStringLiteral("```\n") + code;  // an unfinished block (still streaming)
    flushProse();
    return html;
}

QString TranscriptView::renderHtml() const {
    codeBlocks_.clear();
    QString html;
    for (int row = 0; row < model_.rowCount(); ++row) {
        const QModelIndex i = model_.index(row);
        const QString role = i.data(app::MessageListModel::RoleNameRole).toString();
        const QString when = i.data(app::MessageListModel::CreatedAtRole).toDateTime().toString(QStringLiteral("hh:mm"));
        const QString editLink = role == QLatin1String("user")
                                     ? QStringLiteral(" <small><a href='lumen-edit:%1'>%2</a></small>").arg(i.data(app::MessageListModel::IdRole).toLongLong()).arg(tr("Edit"))
                                     : QString();
        html += QStringLiteral("<div style='margin-bottom:12px'><p><b>%1</b> <span style='color:gray'>%2</span>%3</p>").arg(roleHeading(role), when, editLink);
        for (const QString& sha : i.data(app::MessageListModel::ImagesRole).toStringList()) {
            html += QStringLiteral("<p><a href='lumen-image:open/%1'><img src='lumen-thumb:%1' height='128'/></a><br/>"
                                   "<small><a href='lumen-image:describe/%1'>%2</a> · <a href='lumen-image:classify/%1'>%3</a> · "
                                   "<a href='lumen-image:ask/%1'>%4</a></small></p>")
                        .arg(sha, tr("Describe"), tr("Classify"), tr("Ask"));
        }
        const QString reasoning = i.data(app::MessageListModel::ReasoningRole).toString();
        if (!reasoning.trimmed().isEmpty())
            html += renderReasoning(i.data(app::MessageListModel::IdRole).toLongLong(), reasoning, i.data(app::MessageListModel::ReasoningMsRole),
                                    i.data(app::MessageListModel::StatusRole).toString() == QLatin1String("partial"));
        const QString content = i.data(app::MessageListModel::ContentRole).toString();
        if (!content.isEmpty()) html += role == QLatin1String("assistant") ? renderMarkdown(content) : QStringLiteral("<p>%1</p>").arg(escapeMultiline(content));
        const QString footer = i.data(app::MessageListModel::FooterRole).toString();
        if (!footer.isEmpty())
            html += QStringLiteral("<p style='color:gray'><small>%1</small></p>").arg(footer.toHtmlEscaped());
        html += QStringLiteral("</div>");
    }
    return html;
}

QString TranscriptView::renderReasoning(qint64 messageId, const QString& reasoning, const QVariant& reasoningMs, bool writing) const {
    const bool open = expanded_.contains(messageId);
    QString title;
    if (reasoningMs.isValid()) {
        const double seconds = reasoningMs.toDouble() / 1000.0;
        title = seconds < 1    ? tr("Thought for less than a second")
                : seconds < 10 ? tr("Thought for %1 s").arg(seconds, 0, 'f', 1)
                               : tr("Thought for %1 s").arg(qRound(seconds));
    } else {
        title = writing ? tr("Thinking…") : tr("Thoughts");
    }
    QString html = QStringLiteral("<p style='color:gray'><a href='lumen-think:%1' style='color:gray; text-decoration:none'>%2 %3</a></p>")
                       .arg(messageId)
                       .arg(open ? QStringLiteral("▾") : QStringLiteral("▸"), title.toHtmlEscaped());
    if (open)
        html += QStringLiteral("<blockquote style='color:gray'><small>%1</small></blockquote>").arg(escapeMultiline(reasoning.trimmed()));
    return html;
}

void TranscriptView::changeEvent(QEvent* event) {
    QTextBrowser::changeEvent(event);
    // Another theme: the code blocks' colours are written into the HTML, so it is made again.
    if (event->type() == QEvent::PaletteChange) refresh();
}

void TranscriptView::refresh() {
    refreshTimer_.stop();
    setHtml(renderHtml());
    verticalScrollBar()->setValue(verticalScrollBar()->maximum());
}

QVariant TranscriptView::loadResource(int type, const QUrl& name) {
    if (type == QTextDocument::ImageResource && name.scheme() == QLatin1String("lumen-thumb") && thumbnails_) {
        QImage image;
        image.loadFromData(thumbnails_(name.path()));
        return image;
    }
    return QTextBrowser::loadResource(type, name);
}

}  // namespace lumen::ui
