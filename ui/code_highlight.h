#pragma once
// Syntax colouring for the code blocks in replies: a small lexer per language family (keywords,
// types and literals, strings, comments, numbers) that writes HTML for Qt's rich text. It only
// colours; the text itself is never changed, so what is copied is what the model wrote.

#include <QColor>
#include <QString>

namespace lumen::ui {

struct CodeColors {
    QColor keyword, type, string, comment, number;
    // Colours that read on `base` (the code block's background): darker ones on a light
    // background, lighter ones on a dark background.
    static CodeColors forBackground(const QColor& base);
};

// The language named after a fence (```py, ```C++, ```shell …) as one of the languages known
// here, lower case ("python", "cpp", "javascript", "rust", "go", "java", "csharp", "bash",
// "json", "sql", …), or "" when it is not one.
QString codeLanguage(const QString& fenceInfo);

// `code` as HTML-escaped text with <span style='color:…'> around the tokens of `language`
// (a name as codeLanguage gives it; "" colours only strings, numbers and C-style comments).
// Line breaks stay '\n' (for <pre>).
QString highlightCode(const QString& code, const QString& language, const CodeColors& colors);

}  // namespace lumen::ui
