#include "ui/code_highlight.h"

#include <QHash>
#include <QSet>
#include <QStringList>

namespace lumen::ui {
namespace {

struct Rules {
    QStringList lineComments;  // "//", "#", "--"
    bool blockComments = false;  // /* … */
    QString quotes = QStringLiteral("\"'");
    QChar multilineQuote;  // a quote whose strings may span lines (` in JavaScript and Go)
    bool rawMultiline = false;  // … and have no escapes (Go)
    bool tripleQuotes = false;  // Python's """ and '''
    bool rustChars = false;  // ' starts a character only as 'x' or '\…' (else a lifetime)
    bool shell = false;  // # starts a comment only after a space; $NAME is a variable; '…' has no escapes
    bool preprocessor = false;  // #include … in C and C++
    bool caseInsensitive = false;  // SQL
    QSet<QString> keywords, types;
};

QSet<QString> words(const char* list) {
    const QStringList all = QString::fromLatin1(list).split(QLatin1Char(' '), Qt::SkipEmptyParts);
    return QSet<QString>(all.begin(), all.end());
}

Rules cLike(const char* keywords, const char* types) {
    Rules r;
    r.lineComments = {QStringLiteral("//")};
    r.blockComments = true;
    r.keywords = words(keywords);
    r.types = words(types);
    return r;
}

const QHash<QString, Rules>& languages() {
    static const QHash<QString, Rules> all = [] {
        QHash<QString, Rules> l;
        Rules cpp = cLike(
            "alignas alignof asm auto break case catch class co_await co_return co_yield concept const const_cast consteval constexpr constinit "
            "continue decltype default delete do dynamic_cast else enum explicit export extern final for friend goto if inline mutable namespace "
            "new noexcept operator override private protected public register reinterpret_cast requires return sizeof static static_assert "
            "static_cast struct switch template this thread_local throw try typedef typeid typename union using virtual volatile while",
            "bool char char8_t char16_t char32_t double float int long short signed unsigned void wchar_t size_t ptrdiff_t int8_t int16_t int32_t "
            "int64_t uint8_t uint16_t uint32_t uint64_t std string vector true false nullptr NULL");
        cpp.preprocessor = true;
        l.insert(QStringLiteral("cpp"), cpp);
        Rules py;
        py.lineComments = {QStringLiteral("#")};
        py.tripleQuotes = true;
        py.keywords = words(
            "and as assert async await break case class continue def del elif else except finally for from global if import in is lambda match "
            "nonlocal not or pass raise return try while with yield");
        py.types = words("True False None self cls int float str bytes bool list dict set tuple object type Exception");
        l.insert(QStringLiteral("python"), py);
        Rules js = cLike(
            "as async await break case catch class const continue debugger default delete do else enum export extends finally for from function "
            "get if implements import in instanceof interface let new of private protected public readonly return set static super switch this "
            "throw try type typeof var void while with yield",
            "true false null undefined NaN Infinity number string boolean any unknown never object bigint symbol Promise Array Object");
        js.quotes = QStringLiteral("\"'`");
        js.multilineQuote = QLatin1Char('`');
        l.insert(QStringLiteral("javascript"), js);
        l.insert(QStringLiteral("java"),
                 cLike("abstract assert break case catch class const continue default do else enum extends final finally for goto if implements import "
                       "instanceof interface native new package private protected public record return static strictfp super switch synchronized this "
                       "throw throws transient try var void volatile while yield",
                       "boolean byte char double float int long short String Object Integer List Map true false null"));
        l.insert(QStringLiteral("kotlin"),
                 cLike("as break class continue do else for fun if in interface is object package return super this throw try typealias typeof val "
                       "var when while by catch constructor data enum finally get import init open override private protected public sealed set "
                       "suspend companion lateinit",
                       "Int Long Short Byte Double Float Boolean Char String Unit Any Nothing List Map true false null"));
        l.insert(QStringLiteral("csharp"),
                 cLike("abstract as async await base break case catch checked class const continue default delegate do else enum event explicit "
                       "extern finally fixed for foreach goto if implicit in interface internal is lock namespace new operator out override params "
                       "private protected public readonly record ref return sealed sizeof stackalloc static struct switch this throw try typeof "
                       "unchecked unsafe using var virtual void volatile while yield",
                       "bool byte char decimal double float int long object sbyte short string uint ulong ushort dynamic true false null"));
        Rules rust = cLike(
            "as async await break const continue crate dyn else enum extern fn for if impl in let loop match mod move mut pub ref return self "
            "Self static struct super trait type union unsafe use where while",
            "i8 i16 i32 i64 i128 isize u8 u16 u32 u64 u128 usize f32 f64 bool char str String Vec Option Result Box Some None Ok Err true false");
        rust.rustChars = true;
        l.insert(QStringLiteral("rust"), rust);
        Rules go = cLike(
            "break case chan const continue default defer else fallthrough for func go goto if import interface map package range return select "
            "struct switch type var",
            "bool byte complex64 complex128 error float32 float64 int int8 int16 int32 int64 rune string uint uint8 uint16 uint32 uint64 uintptr "
            "any true false nil iota");
        go.quotes = QStringLiteral("\"'`");
        go.multilineQuote = QLatin1Char('`');
        go.rawMultiline = true;
        l.insert(QStringLiteral("go"), go);
        l.insert(QStringLiteral("swift"),
                 cLike("associatedtype class deinit enum extension fileprivate func import init inout internal let open operator private protocol "
                       "public rethrows static struct subscript typealias var break case continue default defer do else fallthrough for guard if "
                       "in repeat return switch where while as catch is super self Self throw throws try async await",
                       "Int Double Float Bool String Character Array Dictionary Optional true false nil"));
        Rules sh;
        sh.lineComments = {QStringLiteral("#")};
        sh.shell = true;
        sh.keywords = words(
            "if then else elif fi for while until do done case esac in function return local export declare readonly set unset shift exit break "
            "continue source alias");
        sh.types = words("echo printf cd ls cat grep sed awk mkdir rm cp mv chmod sudo apt pip npm git make cmake test true false");
        l.insert(QStringLiteral("bash"), sh);
        Rules json;
        json.quotes = QStringLiteral("\"");
        json.types = words("true false null");
        l.insert(QStringLiteral("json"), json);
        Rules sql;
        sql.lineComments = {QStringLiteral("--")};
        sql.blockComments = true;
        sql.caseInsensitive = true;
        sql.keywords = words(
            "select from where insert into values update set delete create table index view drop alter add column join left right inner outer "
            "full cross on group by order having limit offset as and or not is in like between distinct union all primary key foreign references "
            "default unique exists case when then else end begin commit rollback transaction with returning asc desc if");
        sql.types = words("integer int text real blob varchar char boolean date timestamp numeric null true false");
        l.insert(QStringLiteral("sql"), sql);
        Rules generic;
        generic.lineComments = {QStringLiteral("//")};
        generic.blockComments = true;
        l.insert(QString(), generic);
        return l;
    }();
    return all;
}

class Writer {
public:
    void plain(QStringView text) { html_ += text.toString().toHtmlEscaped(); }
    void coloured(QStringView text, const QColor& colour, bool italic = false) {
        html_ += QStringLiteral("<span style='color:%1%2'>").arg(colour.name(), italic ? QStringLiteral("; font-style:italic") : QString());
        html_ += text.toString().toHtmlEscaped();
        html_ += QStringLiteral("</span>");
    }
    QString take() { return std::move(html_); }

private:
    QString html_;
};

bool isWordStart(QChar c) { return c.isLetter() || c == QLatin1Char('_'); }
bool isWordChar(QChar c) { return c.isLetterOrNumber() || c == QLatin1Char('_'); }

// The end of a string that opens at `at` with `quote` (the index after its closing quote, or
// the end of the line, or of the text for a quote that spans lines).
qsizetype stringEnd(const QString& code, qsizetype at, QChar quote, const Rules& rules) {
    const qsizetype n = code.size();
    const bool multiline = quote == rules.multilineQuote;
    const bool escapes = !(rules.shell && quote == QLatin1Char('\'')) && !(multiline && rules.rawMultiline);
    qsizetype i = at + 1;
    while (i < n) {
        const QChar c = code[i];
        if (escapes && c == QLatin1Char('\\') && i + 1 < n) {
            i += 2;
            continue;
        }
        if (c == quote) return i + 1;
        if (c == QLatin1Char('\n') && !multiline && !rules.shell) return i;
        ++i;
    }
    return n;
}

}  // namespace

CodeColors CodeColors::forBackground(const QColor& base) {
    if (base.lightness() < 128)
        return {QColor(0x56, 0x9c, 0xd6), QColor(0x4e, 0xc9, 0xb0), QColor(0xce, 0x91, 0x78), QColor(0x6a, 0x99, 0x55), QColor(0xb5, 0xce, 0xa8)};
    return {QColor(0x00, 0x33, 0xb3), QColor(0x26, 0x7f, 0x99), QColor(0xa3, 0x15, 0x15), QColor(0x00, 0x80, 0x00), QColor(0x09, 0x86, 0x58)};
}

QString codeLanguage(const QString& fenceInfo) {
    QString name = fenceInfo.trimmed().section(QLatin1Char(' '), 0, 0).toLower();
    while (name.startsWith(QLatin1Char('{')) || name.startsWith(QLatin1Char('.'))) name.remove(0, 1);
    if (name.endsWith(QLatin1Char('}'))) name.chop(1);
    static const QHash<QString, QString> aliases = {
        {"c", "cpp"},          {"c++", "cpp"},         {"cc", "cpp"},        {"cxx", "cpp"},       {"h", "cpp"},           {"hpp", "cpp"},
        {"cuda", "cpp"},       {"cu", "cpp"},          {"objc", "cpp"},      {"py", "python"},     {"python3", "python"},  {"py3", "python"},
        {"js", "javascript"},  {"jsx", "javascript"},  {"ts", "javascript"}, {"tsx", "javascript"}, {"typescript", "javascript"},
        {"node", "javascript"}, {"mjs", "javascript"}, {"rs", "rust"},       {"golang", "go"},     {"kt", "kotlin"},       {"kts", "kotlin"},
        {"cs", "csharp"},      {"c#", "csharp"},       {"sh", "bash"},       {"shell", "bash"},    {"zsh", "bash"},        {"console", "bash"},
        {"shellscript", "bash"}, {"jsonc", "json"},    {"json5", "json"},    {"sqlite", "sql"},    {"postgresql", "sql"},  {"mysql", "sql"},
    };
    if (const auto it = aliases.find(name); it != aliases.end()) return it.value();
    return languages().contains(name) ? name : QString();
}

QString highlightCode(const QString& code, const QString& language, const CodeColors& colors) {
    const Rules& rules = languages().contains(language) ? languages()[language] : languages()[QString()];
    Writer out;
    const qsizetype n = code.size();
    qsizetype i = 0, plainFrom = 0;
    bool lineStart = true;  // only spaces since the last line break
    const auto flushPlain = [&](qsizetype to) {
        if (to > plainFrom) out.plain(QStringView(code).mid(plainFrom, to - plainFrom));
    };
    const auto token = [&](qsizetype from, qsizetype to, const QColor& colour, bool italic = false) {
        flushPlain(from);
        out.coloured(QStringView(code).mid(from, to - from), colour, italic);
        plainFrom = i = to;
    };
    while (i < n) {
        const QChar c = code[i];
        const QStringView rest = QStringView(code).mid(i);
        if (c == QLatin1Char('\n')) {
            lineStart = true;
            ++i;
            continue;
        }
        if (c.isSpace()) {
            ++i;
            continue;
        }
        const bool wasLineStart = lineStart;
        lineStart = false;
        // comments
        if (rules.blockComments && rest.startsWith(QLatin1String("/*"))) {
            const qsizetype close = code.indexOf(QLatin1String("*/"), i + 2);
            token(i, close < 0 ? n : close + 2, colors.comment, true);
            continue;
        }
        bool comment = false;
        for (const QString& marker : rules.lineComments)
            if (rest.startsWith(marker) && (!rules.shell || i == 0 || code[i - 1].isSpace())) comment = true;
        if (comment) {
            const qsizetype eol = code.indexOf(QLatin1Char('\n'), i);
            token(i, eol < 0 ? n : eol, colors.comment, true);
            continue;
        }
        if (rules.preprocessor && c == QLatin1Char('#') && wasLineStart) {
            qsizetype end = i + 1;
            while (end < n && (code[end] == QLatin1Char(' ') || code[end] == QLatin1Char('\t'))) ++end;
            while (end < n && isWordChar(code[end])) ++end;
            const bool include = QStringView(code).mid(i, end - i).endsWith(QLatin1String("include"));
            token(i, end, colors.keyword);
            while (i < n && (code[i] == QLatin1Char(' ') || code[i] == QLatin1Char('\t'))) ++i;
            if (include && i < n && code[i] == QLatin1Char('<')) {  // #include <vector>: a path, as a string
                const qsizetype close = code.indexOf(QLatin1Char('>'), i);
                const qsizetype eol = code.indexOf(QLatin1Char('\n'), i);
                if (close > 0 && (eol < 0 || close < eol)) token(i, close + 1, colors.string);
            }
            continue;
        }
        // strings
        if (rules.tripleQuotes && (rest.startsWith(QLatin1String("\"\"\"")) || rest.startsWith(QLatin1String("'''")))) {
            const qsizetype close = code.indexOf(rest.left(3).toString(), i + 3);
            token(i, close < 0 ? n : close + 3, colors.string);
            continue;
        }
        if (rules.quotes.contains(c)) {
            if (rules.rustChars && c == QLatin1Char('\'')) {
                const bool character = (i + 2 < n && code[i + 1] != QLatin1Char('\\') && code[i + 2] == QLatin1Char('\'')) ||
                                       (i + 1 < n && code[i + 1] == QLatin1Char('\\'));
                if (!character) {  // a lifetime: 'a
                    qsizetype end = i + 1;
                    while (end < n && isWordChar(code[end])) ++end;
                    token(i, end, colors.type);
                    continue;
                }
            }
            token(i, stringEnd(code, i, c, rules), colors.string);
            continue;
        }
        if (rules.shell && c == QLatin1Char('$') && i + 1 < n && (isWordStart(code[i + 1]) || code[i + 1] == QLatin1Char('{'))) {
            qsizetype end = i + 1;
            if (code[end] == QLatin1Char('{')) {
                const qsizetype close = code.indexOf(QLatin1Char('}'), end);
                end = close < 0 ? n : close + 1;
            } else {
                while (end < n && isWordChar(code[end])) ++end;
            }
            token(i, end, colors.type);
            continue;
        }
        // numbers
        if (c.isDigit() || (c == QLatin1Char('.') && i + 1 < n && code[i + 1].isDigit() && (i == 0 || !isWordChar(code[i - 1])))) {
            if (i > 0 && isWordChar(code[i - 1])) {  // a digit inside a word (x2): part of the word
                ++i;
                continue;
            }
            qsizetype end = i + 1;
            while (end < n) {
                const QChar d = code[end];
                const QChar before = code[end - 1];
                if (isWordChar(d) || d == QLatin1Char('.') || d == QLatin1Char('\'')) {
                    if (d == QLatin1Char('.') && end + 1 < n && code[end + 1] == QLatin1Char('.')) break;  // 0..10
                    if (d == QLatin1Char('\'') && !(end + 1 < n && code[end + 1].isDigit())) break;
                    ++end;
                } else if ((d == QLatin1Char('+') || d == QLatin1Char('-')) && (before == QLatin1Char('e') || before == QLatin1Char('E')) &&
                           !code.mid(i, 2).startsWith(QLatin1String("0x"), Qt::CaseInsensitive)) {
                    ++end;
                } else {
                    break;
                }
            }
            token(i, end, colors.number);
            continue;
        }
        // words
        if (isWordStart(c)) {
            qsizetype end = i + 1;
            while (end < n && isWordChar(code[end])) ++end;
            const QString word = rules.caseInsensitive ? code.mid(i, end - i).toLower() : code.mid(i, end - i);
            if (rules.keywords.contains(word))
                token(i, end, colors.keyword);
            else if (rules.types.contains(word))
                token(i, end, colors.type);
            else
                i = end;
            continue;
        }
        ++i;
    }
    flushPlain(n);
    return out.take();
}

}  // namespace lumen::ui
