// Syntax colouring of code blocks in replies: the tokens of each language get their colour,
// strings and comments swallow what looks like keywords inside them, and the text itself is
// never changed (tags stripped and entities decoded give the code back, for any input).

#include <QRandomGenerator>
#include <QRegularExpression>
#include <QtTest>

#include "ui/code_highlight.h"

using namespace lumen;

namespace {

const ui::CodeColors kColours = ui::CodeColors::forBackground(Qt::white);

// The text the HTML shows (as <pre> shows it).
QString shownText(const QString& html) {
    QString text;  // (by hand: a regular expression refuses text with a lone surrogate)
    bool inTag = false;
    for (const QChar c : html) {
        if (c == QLatin1Char('<')) inTag = true;
        if (!inTag) text += c;
        if (c == QLatin1Char('>')) inTag = false;
    }
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'");
    return text.replace("&amp;", "&");
}

// The coloured tokens of `html` as "kind:text" (kind: keyword, type, string, comment, number).
QStringList tokens(const QString& html) {
    QStringList out;
    static const QRegularExpression span(QStringLiteral("<span style='color:(#[0-9a-f]{6})[^']*'>(.*?)</span>"),
                                         QRegularExpression::DotMatchesEverythingOption);
    for (auto m = span.globalMatch(html); m.hasNext();) {
        const auto match = m.next();
        const QColor c(match.captured(1));
        const QString kind = c == kColours.keyword ? "keyword"
                             : c == kColours.type  ? "type"
                             : c == kColours.string ? "string"
                             : c == kColours.comment ? "comment"
                             : c == kColours.number ? "number"
                                                    : "?";
        out << kind + ":" + shownText(match.captured(2));
    }
    return out;
}

}  // namespace

class TestCodeHighlight : public QObject {
    Q_OBJECT
private slots:
    void languagesByFenceName() {
        QCOMPARE(ui::codeLanguage("py"), QString("python"));
        QCOMPARE(ui::codeLanguage("Python title=\"x.py\""), QString("python"));
        QCOMPARE(ui::codeLanguage("C++"), QString("cpp"));
        QCOMPARE(ui::codeLanguage("{.rust}"), QString("rust"));
        QCOMPARE(ui::codeLanguage("tsx"), QString("javascript"));
        QCOMPARE(ui::codeLanguage("console"), QString("bash"));
        QCOMPARE(ui::codeLanguage("brainfuck"), QString());
        QCOMPARE(ui::codeLanguage(""), QString());
    }

    void pythonTokens() {
        const QString code = "def f(x):\n    # if not here\n    s = \"if\" + '''a\nb'''\n    return x * 2.5e-3 if x else None\n";
        const QStringList t = tokens(ui::highlightCode(code, "python", kColours));
        QCOMPARE(t, QStringList({"keyword:def", "comment:# if not here", "string:\"if\"", "string:'''a\nb'''", "keyword:return", "number:2.5e-3",
                                 "keyword:if", "keyword:else", "type:None"}));
    }

    void cppTokens() {
        const QString code = "#include <vector>\n/* a\n   while */ int main() { auto s = \"a\\\"b\"; return 0x1F + 1'000; } // done";
        const QStringList t = tokens(ui::highlightCode(code, "cpp", kColours));
        QCOMPARE(t, QStringList({"keyword:#include", "string:<vector>", "comment:/* a\n   while */", "type:int", "keyword:auto", "string:\"a\\\"b\"", "keyword:return",
                                 "number:0x1F", "number:1'000", "comment:// done"}));
    }

    void rustLifetimesAreNotStrings() {
        const QStringList t = tokens(ui::highlightCode("fn f<'a>(s: &'a str) -> char { 'x' }", "rust", kColours));
        QCOMPARE(t, QStringList({"keyword:fn", "type:'a", "type:'a", "type:str", "type:char", "string:'x'"}));
    }

    void shellAndSqlAndGo() {
        QCOMPARE(tokens(ui::highlightCode("echo $HOME ${X}#no # yes\nif [ -f a ]; then rm 'a\\'; fi", "bash", kColours)),
                 QStringList({"type:echo", "type:$HOME", "type:${X}", "comment:# yes", "keyword:if", "keyword:then", "type:rm", "string:'a\\'", "keyword:fi"}));
        QCOMPARE(tokens(ui::highlightCode("SELECT name FROM t -- x\nwhere id = 3", "sql", kColours)),
                 QStringList({"keyword:SELECT", "keyword:FROM", "comment:-- x", "keyword:where", "number:3"}));
        QCOMPARE(tokens(ui::highlightCode("s := `raw\\` + \"x\"", "go", kColours)), QStringList({"string:`raw\\`", "string:\"x\""}));
    }

    void stringsEndAtTheLineUnlessTheyMaySpanLines() {
        // An apostrophe in a plain block colours to the end of its line, not the rest of the block.
        QCOMPARE(tokens(ui::highlightCode("it's\nnext 1", "", kColours)), QStringList({"string:'s", "number:1"}));
        QCOMPARE(tokens(ui::highlightCode("`a\nb` 2", "javascript", kColours)), QStringList({"string:`a\nb`", "number:2"}));
    }

    void escapesHtmlAndKeepsTheText() {
        const QString code = "if (a < b && c > \"<d>\") { x = '&amp;'; } /* <!-- */";
        for (const QString& language : {QString("cpp"), QString("python"), QString("bash"), QString("sql"), QString("json"), QString("rust"), QString()}) {
            const QString html = ui::highlightCode(code, language, kColours);
            QVERIFY2(!html.contains("<d>") && !html.contains("<!--"), qPrintable(html));
            QCOMPARE(shownText(html), code);
        }
        // Any text: unfinished strings and comments, lone quotes and escapes, non-ASCII.
        const QString alphabet = QStringLiteral("ab1 .e+-x'\"`\\/*#$${}\n\t<>&_éλ🙂");
        QRandomGenerator random(7);
        for (int n = 0; n < 2000; ++n) {
            QString text;
            const int length = random.bounded(40);
            for (int k = 0; k < length; ++k) text += alphabet.at(random.bounded(alphabet.size()));
            for (const QString& language : {QString("cpp"), QString("python"), QString("bash"), QString("rust"), QString("go"), QString("sql"), QString()})
                QCOMPARE(shownText(ui::highlightCode(text, language, kColours)), text);
        }
    }

    void coloursReadOnTheirBackground() {
        const auto light = ui::CodeColors::forBackground(Qt::white), dark = ui::CodeColors::forBackground(QColor(30, 30, 30));
        for (const QColor& c : {light.keyword, light.type, light.string, light.comment, light.number}) QVERIFY(c.lightness() < 110);
        for (const QColor& c : {dark.keyword, dark.type, dark.string, dark.comment, dark.number}) QVERIFY(c.lightness() > 110);
    }
};

QTEST_MAIN(TestCodeHighlight)
#include "tst_code_highlight.moc"
