#include "ui/transcript_view.h"

#include <QClipboard>
#include <QDateTime>
#include <QGuiApplication>
#include <QImage>
#include <QLocale>
#include <QResizeEvent>
#include <QToolButton>
#include <QScrollBar>
#include <QTextDocument>

#include "app/message_list_model.h"
#include "ui/code_highlight.h"

namespace lumen::ui {
namespace {

QString roleHeading(const QString& role) {
    if (role == QLatin1String("assistant")) return QObject::tr("Lumen");
    if (role == QLatin1String("system")) return QObject::tr("System");
    return QObject::tr("You");
}

// `a` with a share `t` of `b`.
QColor mix(const QColor& a, const QColor& b, float t) {
    return QColor::fromRgbF(a.redF() * (1 - t) + b.redF() * t, a.greenF() * (1 - t) + b.greenF() * t, a.blueF() * (1 - t) + b.blueF() * t);
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
            refresh(Scroll::Hold);  // the reader stays where they were
            return;
        }
        if (url.scheme() == QLatin1String("lumen-copy")) {
            const int n = url.path().toInt();
            if (n >= 0 && n < codeBlocks_.size()) QGuiApplication::clipboard()->setText(codeBlocks_[n]);
            return;
        }
        if (url.scheme() == QLatin1String("lumen-copy-message")) {
            const qint64 id = url.path().toLongLong();
            for (int row = 0; row < model_.rowCount(); ++row)
                if (model_.index(row).data(app::MessageListModel::IdRole).toLongLong() == id)
                    QGuiApplication::clipboard()->setText(model_.index(row).data(app::MessageListModel::ContentRole).toString());
            return;
        }
        if (url.scheme() == QLatin1String("lumen-regenerate")) {
            emit regenerateRequested(url.path().toLongLong());
            return;
        }
        // lumen-image:ACTION/SHA
        if (url.scheme() != QLatin1String("lumen-image")) return;
        const QString path = url.path();
        const int slash = path.indexOf(QLatin1Char('/'));
        if (slash > 0) emit imageAction(path.left(slash), path.mid(slash + 1));
    });
    setPlaceholderText(tr("No messages yet. Write one below."));
    // Another chat, or a new message (the user's or the start of a reply): the view goes to the
    // end. A reply that grows, or a message that goes, leaves a reader who scrolled up where
    // they are.
    connect(&model_, &QAbstractItemModel::modelReset, this, [this] { refresh(Scroll::ToEnd); });
    connect(&model_, &QAbstractItemModel::rowsInserted, this, [this] { refresh(Scroll::ToEnd); });
    connect(&model_, &QAbstractItemModel::rowsRemoved, this, [this] { refresh(Scroll::Hold); });
    // A streaming reply changes its row many times a second: those redraws are coalesced.
    refreshTimer_.setSingleShot(true);
    refreshTimer_.setInterval(40);
    connect(&refreshTimer_, &QTimer::timeout, this, [this] { refresh(Scroll::Hold); });
    connect(&model_, &QAbstractItemModel::dataChanged, this, [this] {
        if (!refreshTimer_.isActive()) refreshTimer_.start();
    });
    // While the reader is above the end: a button to jump back to it.
    jumpButton_ = new QToolButton(viewport());
    jumpButton_->setObjectName(QStringLiteral("jumpToLatest"));
    jumpButton_->setText(tr("↓ Latest"));
    jumpButton_->setToolTip(tr("Go to the latest message (Ctrl+End)"));
    jumpButton_->setCursor(Qt::PointingHandCursor);
    jumpButton_->hide();
    connect(jumpButton_, &QToolButton::clicked, this, [this] { verticalScrollBar()->setValue(verticalScrollBar()->maximum()); });
    // Whether the view follows the end is decided by the reader's scrolling (not by the resets a
    // new rendering makes); the document is laid out lazily, so the end is followed as it grows.
    connect(verticalScrollBar(), &QScrollBar::valueChanged, this, [this] {
        if (!rendering_) followEnd_ = isAtEnd();
        placeJumpButton();
    });
    connect(verticalScrollBar(), &QScrollBar::rangeChanged, this, [this] {
        if (followEnd_) verticalScrollBar()->setValue(verticalScrollBar()->maximum());
        placeJumpButton();
    });
    refresh(Scroll::ToEnd);
}

bool TranscriptView::isAtEnd() const {
    const QScrollBar* bar = verticalScrollBar();
    return bar->value() >= bar->maximum() - kEndSlack;
}

void TranscriptView::placeJumpButton() {
    jumpButton_->setVisible(!isAtEnd());
    jumpButton_->adjustSize();
    const QRect area = viewport()->rect();
    jumpButton_->move(area.right() - jumpButton_->width() - 12, area.bottom() - jumpButton_->height() - 12);
}

void TranscriptView::resizeEvent(QResizeEvent* event) {
    QTextBrowser::resizeEvent(event);
    placeJumpButton();
}

void TranscriptView::setReplying(bool replying) {
    if (replying == replying_) return;
    replying_ = replying;
    refresh(Scroll::Hold);
}

// Markdown (replies): fenced code blocks as preformatted text with a Copy link, the rest
// through Qt's CommonMark reader, with each line break the model wrote kept (as chat apps
// show replies: CommonMark alone would join the lines of a paragraph, and a classification's
// bars, into one line).
QString TranscriptView::renderMarkdown(const QString& text) const {
    QString html;
    const QStringList lines = text.split(QLatin1Char('\n'));
    QString prose, code, language;
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
    // (Qt's rich text takes colours, not palette roles: the theme's, as it is now)
    const QColor codeBackground = palette().color(QPalette::AlternateBase);
    const CodeColors colours = CodeColors::forBackground(codeBackground);
    for (const QString& line : lines) {
        if (line.trimmed().startsWith(QStringLiteral("```"))) {
            if (inCode) {
                codeBlocks_.push_back(code);
                const QString label = language.isEmpty() ? QString() : language.toHtmlEscaped() + QStringLiteral(" · ");
                html += QStringLiteral("<pre style='background-color:%4; color:%5'>%1</pre><p><small><span style='color:gray'>%6</span><a href='lumen-copy:%2'>%3</a></small></p>")
                            .arg(highlightCode(code, codeLanguage(language), colours))
                            .arg(codeBlocks_.size() - 1)
                            .arg(tr("Copy code"), codeBackground.name(), palette().color(QPalette::Text).name(), label);
                code.clear();
            } else {
                flushProse();
                language = line.trimmed().mid(3).trimmed().section(QLatin1Char(' '), 0, 0);
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
    if (inCode) prose += QStringLiteral("```") + language + QLatin1Char('\n') + code;  // an unfinished block (still streaming)
    flushProse();
    return html;
}

QString TranscriptView::renderHtml() const {
    codeBlocks_.clear();
    QString html;
    // Each message is a card: who and when, what can be done with it (copy; edit a message of
    // yours; regenerate the last reply), then the message and, under a reply, its metrics.
    const QColor base = palette().color(QPalette::Base);
    const QColor userCard = mix(base, palette().color(QPalette::Highlight), 0.12f);
    const QString border = mix(base, palette().color(QPalette::Text), 0.22f).name();
    const QDate today = QDate::currentDate();
    for (int row = 0; row < model_.rowCount(); ++row) {
        const QModelIndex i = model_.index(row);
        const qint64 id = i.data(app::MessageListModel::IdRole).toLongLong();
        const QString role = i.data(app::MessageListModel::RoleNameRole).toString();
        const QDateTime created = i.data(app::MessageListModel::CreatedAtRole).toDateTime().toLocalTime();
        const QString when = created.date() == today ? created.toString(QStringLiteral("hh:mm")) : QLocale().toString(created, QLocale::ShortFormat);
        const QString content = i.data(app::MessageListModel::ContentRole).toString();
        const bool user = role == QLatin1String("user");
        QStringList actions;
        if (!content.isEmpty()) actions << QStringLiteral("<a href='lumen-copy-message:%1'>%2</a>").arg(id).arg(tr("Copy"));
        if (user) actions << QStringLiteral("<a href='lumen-edit:%1'>%2</a>").arg(id).arg(tr("Edit"));
        if (role == QLatin1String("assistant") && row == model_.rowCount() - 1 && !replying_)
            actions << QStringLiteral("<a href='lumen-regenerate:%1'>%2</a>").arg(id).arg(tr("Regenerate"));
        html += QStringLiteral("<table width='100%' cellspacing='0' cellpadding='8' border='%1' style='border-color:%2; border-style:solid; "
                               "background-color:%3; margin-bottom:10px'><tr><td>")
                    .arg(user ? 0 : 1)
                    .arg(border, (user ? userCard : base).name());
        html += QStringLiteral("<table width='100%' cellspacing='0' cellpadding='0'><tr><td><b>%1</b> <span style='color:gray'>%2</span></td>"
                               "<td align='right'><small>%3</small></td></tr></table>")
                    .arg(roleHeading(role), when, actions.join(QStringLiteral(" · ")));
        for (const QString& sha : i.data(app::MessageListModel::ImagesRole).toStringList()) {
            html += QStringLiteral("<p><a href='lumen-image:open/%1'><img src='lumen-thumb:%1' height='128'/></a><br/>"
                                   "<small><a href='lumen-image:describe/%1'>%2</a> · <a href='lumen-image:classify/%1'>%3</a> · "
                                   "<a href='lumen-image:ask/%1'>%4</a></small></p>")
                        .arg(sha, tr("Describe"), tr("Classify"), tr("Ask"));
        }
        const QString reasoning = i.data(app::MessageListModel::ReasoningRole).toString();
        if (!reasoning.trimmed().isEmpty())
            html += renderReasoning(id, reasoning, i.data(app::MessageListModel::ReasoningMsRole),
                                    i.data(app::MessageListModel::StatusRole).toString() == QLatin1String("partial"));
        if (!content.isEmpty()) html += user || role == QLatin1String("system") ? QStringLiteral("<p>%1</p>").arg(escapeMultiline(content)) : renderMarkdown(content);
        const QString footer = i.data(app::MessageListModel::FooterRole).toString();
        if (!footer.isEmpty())
            html += QStringLiteral("<p style='color:gray'><small>%1</small></p>").arg(footer.toHtmlEscaped());
        html += QStringLiteral("</td></tr></table>");
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
    if (event->type() == QEvent::PaletteChange) refresh(Scroll::Hold);
}

void TranscriptView::refresh(Scroll scroll) {
    refreshTimer_.stop();
    QScrollBar* bar = verticalScrollBar();
    if (scroll == Scroll::ToEnd) followEnd_ = true;
    const int at = bar->value();
    rendering_ = true;
    setHtml(renderHtml());
    // (the text cursor goes with the end: showing the view scrolls to where the cursor is)
    if (followEnd_) moveCursor(QTextCursor::End);
    rendering_ = false;
    bar->setValue(followEnd_ ? bar->maximum() : at);
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
