#include <algorithm>
#include <cctype>
#include <cstring>

#include "inference/llm/jinja/ast.h"
#include "inference/llm/jinja/jinja.h"

namespace lumen::inference::jinja {

TemplateError::TemplateError(const std::string& message, int line, int column)
    : std::runtime_error(line > 0 ? "template:" + std::to_string(line) + ":" + std::to_string(column) + ": " + message
                                  : message),
      reason_(message),
      line_(line),
      column_(column) {}

namespace detail {
namespace {

constexpr int kMaxNesting = 200;  // parser recursion: deeper templates are refused

enum class Tok { Text, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, End };

struct Token {
    Tok type;
    std::string text;
    Value value;
    int line, column;
};

class Lexer {
public:
    Lexer(std::string_view src, bool trimBlocks, bool lstripBlocks)
        : src_(src), trimBlocks_(trimBlocks), lstripBlocks_(lstripBlocks) {
        lineStarts_.push_back(0);
        for (std::size_t i = 0; i < src_.size(); ++i)
            if (src_[i] == '\n') lineStarts_.push_back(i + 1);
    }

    std::vector<Token> run() {
        std::size_t pos = 0;
        bool stripNextLeading = false;  // "-%}" before this text
        bool trimNextNewline = false;   // trim_blocks after a block tag
        while (pos < src_.size()) {
            std::size_t open = findTag(pos);
            std::string text(src_.substr(pos, (open == std::string_view::npos ? src_.size() : open) - pos));
            const int textLine = lineAt(pos), textColumn = columnAt(pos);
            if (stripNextLeading) {
                const std::size_t first = text.find_first_not_of(" \t\r\n");
                text = first == std::string::npos ? std::string() : text.substr(first);
            } else if (trimNextNewline) {
                if (text.rfind("\r\n", 0) == 0) text.erase(0, 2);
                else if (!text.empty() && text[0] == '\n') text.erase(0, 1);
            }
            stripNextLeading = trimNextNewline = false;
            if (open == std::string_view::npos) {
                emitText(text, textLine, textColumn);
                break;
            }
            const char kind = src_[open + 1];  // '{', '%' or '#'
            const bool minus = open + 2 < src_.size() && src_[open + 2] == '-';
            const bool plus = open + 2 < src_.size() && src_[open + 2] == '+';
            if (minus) {
                const std::size_t last = text.find_last_not_of(" \t\r\n");
                text = last == std::string::npos ? std::string() : text.substr(0, last + 1);
            } else if (lstripBlocks_ && !plus && (kind == '%' || kind == '#')) {
                // Only spaces and tabs between the start of the tag's line (in the source) and
                // the tag, with no other tag on that stretch: drop them.
                const std::size_t lineStart = lineStarts_[static_cast<std::size_t>(lineAt(open) - 1)];
                bool blank = lineStart >= pos;
                for (std::size_t i = lineStart; blank && i < open; ++i) blank = src_[i] == ' ' || src_[i] == '\t';
                if (blank) text.erase(text.size() - std::min(text.size(), open - lineStart));
            }
            emitText(text, textLine, textColumn);
            std::size_t p = open + 2 + ((minus || plus) ? 1 : 0);
            if (kind == '#') {
                const std::size_t close = src_.find("#}", p);
                if (close == std::string_view::npos) fail("unclosed comment", open);
                stripNextLeading = close > 0 && src_[close - 1] == '-' && close - 1 >= p;
                trimNextNewline = trimBlocks_ && !stripNextLeading;
                pos = close + 2;
                continue;
            }
            tokens_.push_back({kind == '{' ? Tok::VarBegin : Tok::BlockBegin, "", {}, lineAt(open), columnAt(open)});
            p = lexInside(p, kind == '{', open, stripNextLeading);
            trimNextNewline = kind == '%' && trimBlocks_ && !stripNextLeading;
            pos = p;
            // {% raw %} ... {% endraw %}: the text in between is kept as it is.
            if (kind == '%' && tokens_.size() >= 3 && tokens_[tokens_.size() - 2].type == Tok::Name &&
                tokens_[tokens_.size() - 2].text == "raw" && tokens_[tokens_.size() - 3].type == Tok::BlockBegin) {
                tokens_.resize(tokens_.size() - 3);
                const std::size_t end = findRawEnd(pos);
                std::string raw(src_.substr(pos, end - pos));
                if (trimNextNewline && !raw.empty() && raw[0] == '\n') raw.erase(0, 1);
                const std::size_t rawEnd = raw.find_last_not_of(" \t");
                if (lstripBlocks_ && rawEnd != std::string::npos && raw[rawEnd] == '\n') raw.erase(rawEnd + 1);
                emitText(raw, lineAt(pos), columnAt(pos));
                const std::size_t close = src_.find("%}", end);
                if (close == std::string_view::npos) fail("unclosed '{% endraw'", end);
                stripNextLeading = close > 0 && src_[close - 1] == '-';
                trimNextNewline = trimBlocks_ && !stripNextLeading;
                pos = close + 2;
            }
        }
        tokens_.push_back({Tok::End, "", {}, lineAt(src_.size()), columnAt(src_.size())});
        return std::move(tokens_);
    }

private:
    [[noreturn]] void fail(const std::string& message, std::size_t at) const {
        throw TemplateError(message, lineAt(at), columnAt(at));
    }

    int lineAt(std::size_t at) const {
        return static_cast<int>(std::upper_bound(lineStarts_.begin(), lineStarts_.end(), at) - lineStarts_.begin());
    }
    int columnAt(std::size_t at) const {
        return static_cast<int>(at - lineStarts_[static_cast<std::size_t>(lineAt(at) - 1)]) + 1;
    }

    std::size_t findTag(std::size_t from) const {
        for (std::size_t i = from; i + 1 < src_.size(); ++i)
            if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
        return std::string_view::npos;
    }

    std::size_t findRawEnd(std::size_t from) const {
        for (std::size_t i = src_.find("{%", from); i != std::string_view::npos; i = src_.find("{%", i + 2)) {
            std::size_t p = i + 2;
            if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) ++p;
            while (p < src_.size() && std::isspace(static_cast<unsigned char>(src_[p]))) ++p;
            if (src_.compare(p, 6, "endraw") == 0) {
                // {%- endraw %} strips the raw text's trailing whitespace.
                if (src_[i + 2] == '-') {
                    std::size_t e = i;
                    while (e > from && std::isspace(static_cast<unsigned char>(src_[e - 1]))) --e;
                    return e;
                }
                return i;
            }
        }
        fail("unclosed raw block", from);
    }

    void emitText(const std::string& text, int line, int column) {
        if (!text.empty()) tokens_.push_back({Tok::Text, text, {}, line, column});
    }

    // Lexes the inside of a {{ }} or {% %} tag; returns the position after its end.
    std::size_t lexInside(std::size_t p, bool variable, std::size_t open, bool& stripAfter) {
        int depth = 0;
        while (true) {
            while (p < src_.size() && std::isspace(static_cast<unsigned char>(src_[p]))) ++p;
            if (p >= src_.size()) fail(variable ? "unclosed '{{'" : "unclosed '{%'", open);
            const char c = src_[p];
            const int line = lineAt(p), column = columnAt(p);
            auto endsHere = [&](char first) {
                if (src_[p] == '-' && p + 2 < src_.size() && src_[p + 1] == first && src_[p + 2] == '}') return 3;
                if (src_[p] == first && p + 1 < src_.size() && src_[p + 1] == '}') return 2;
                return 0;
            };
            if (int n = endsHere(variable ? '}' : '%'); n > 0 && (depth == 0 || !variable)) {
                stripAfter = n == 3;
                tokens_.push_back({variable ? Tok::VarEnd : Tok::BlockEnd, "", {}, line, column});
                return p + static_cast<std::size_t>(n);
            }
            if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
                std::size_t e = p;
                while (e < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[e])) || src_[e] == '_')) ++e;
                tokens_.push_back({Tok::Name, std::string(src_.substr(p, e - p)), {}, line, column});
                p = e;
            } else if (std::isdigit(static_cast<unsigned char>(c))) {
                std::size_t e = p;
                bool isFloat = false;
                while (e < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[e])) || src_[e] == '_')) ++e;
                if (e + 1 < src_.size() && src_[e] == '.' && std::isdigit(static_cast<unsigned char>(src_[e + 1]))) {
                    isFloat = true;
                    ++e;
                    while (e < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e]))) ++e;
                }
                if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
                    std::size_t f = e + 1;
                    if (f < src_.size() && (src_[f] == '+' || src_[f] == '-')) ++f;
                    if (f < src_.size() && std::isdigit(static_cast<unsigned char>(src_[f]))) {
                        isFloat = true;
                        e = f;
                        while (e < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e]))) ++e;
                    }
                }
                std::string digits;
                for (std::size_t i = p; i < e; ++i)
                    if (src_[i] != '_') digits += src_[i];
                Token t{isFloat ? Tok::Float : Tok::Int, digits, {}, line, column};
                try {
                    t.value = isFloat ? Value(std::stod(digits)) : Value(static_cast<std::int64_t>(std::stoll(digits)));
                } catch (const std::exception&) {
                    fail("number '" + digits + "' is out of range", p);
                }
                tokens_.push_back(std::move(t));
                p = e;
            } else if (c == '\'' || c == '"') {
                std::string s;
                std::size_t e = p + 1;
                while (true) {
                    if (e >= src_.size()) fail("unterminated string", p);
                    const char d = src_[e];
                    if (d == c) break;
                    if (d == '\\' && e + 1 < src_.size()) {
                        const char x = src_[++e];
                        switch (x) {
                            case 'n': s += '\n'; break;
                            case 't': s += '\t'; break;
                            case 'r': s += '\r'; break;
                            case '\\': s += '\\'; break;
                            case '\'': s += '\''; break;
                            case '"': s += '"'; break;
                            case '\n': break;
                            default: s += '\\'; s += x;
                        }
                        ++e;
                        continue;
                    }
                    s += d;
                    ++e;
                }
                tokens_.push_back({Tok::String, s, Value(s), line, column});
                p = e + 1;
            } else {
                static const char* kOps[] = {"**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "|", ".",
                                             ",",  ":",  "(",  ")",  "[",  "]",  "{", "}", "<", ">", "=", "!"};
                std::string op;
                for (const char* o : kOps)
                    if (src_.compare(p, std::strlen(o), o) == 0) {
                        op = o;
                        break;
                    }
                if (op.empty() || op == "!") fail(std::string("unexpected character '") + c + "'", p);
                if (op == "(" || op == "[" || op == "{") ++depth;
                if ((op == ")" || op == "]" || op == "}") && depth > 0) --depth;
                tokens_.push_back({Tok::Op, op, {}, line, column});
                p += op.size();
            }
        }
    }

    std::string_view src_;
    bool trimBlocks_, lstripBlocks_;
    std::vector<Token> tokens_;
    std::vector<std::size_t> lineStarts_;
};

class Parser {
public:
    explicit Parser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

    NodePtr parseRoot() {
        auto root = make(NodeKind::Sequence, peek());
        root->children = parseBody({});
        if (peek().type != Tok::End) fail("unexpected '" + peek().text + "'");
        return root;
    }

private:
    const Token& peek(std::size_t ahead = 0) const { return t_[std::min(i_ + ahead, t_.size() - 1)]; }
    const Token& next() { return t_[std::min(i_++, t_.size() - 1)]; }
    [[noreturn]] void fail(const std::string& message) const { throw TemplateError(message, peek().line, peek().column); }
    [[noreturn]] void failAt(const std::string& message, const Token& at) const { throw TemplateError(message, at.line, at.column); }

    NodePtr make(NodeKind kind, const Token& at) const {
        auto n = std::make_shared<Node>();
        n->kind = kind;
        n->line = at.line;
        n->column = at.column;
        return n;
    }

    bool isOp(const char* op, std::size_t ahead = 0) const { return peek(ahead).type == Tok::Op && peek(ahead).text == op; }
    bool isName(const char* name, std::size_t ahead = 0) const { return peek(ahead).type == Tok::Name && peek(ahead).text == name; }
    void expectOp(const char* op) {
        if (!isOp(op)) fail(std::string("expected '") + op + "'" + (peek().type == Tok::BlockEnd || peek().type == Tok::VarEnd ? " before the end of the tag" : ""));
        next();
    }
    std::string expectName(const char* what) {
        if (peek().type != Tok::Name) fail(std::string("expected ") + what);
        return next().text;
    }
    void expectBlockEnd() {
        if (peek().type != Tok::BlockEnd) fail("expected the end of the tag, found '" + peek().text + "'");
        next();
    }

    struct DepthGuard {
        int& depth;
        DepthGuard(int& d, const Parser& p) : depth(d) {
            if (++depth > kMaxNesting) p.fail("the template nests too deeply");
        }
        ~DepthGuard() { --depth; }
    };

    // Statements until one of `enders` ({% endif %}, {% else %}, ...) is the next block tag.
    std::vector<NodePtr> parseBody(const std::vector<std::string>& enders) {
        DepthGuard guard(depth_, *this);
        std::vector<NodePtr> body;
        while (true) {
            const Token& tok = peek();
            if (tok.type == Tok::End) {
                if (!enders.empty()) fail("unclosed block: expected '{% " + enders.front() + " %}' before the end of the template");
                return body;
            }
            if (tok.type == Tok::Text) {
                auto n = make(NodeKind::Text, tok);
                n->text = next().text;
                body.push_back(n);
            } else if (tok.type == Tok::VarBegin) {
                next();
                auto n = make(NodeKind::Output, tok);
                n->a = parseExpression();
                if (peek().type != Tok::VarEnd) fail("expected '}}', found '" + peek().text + "'");
                next();
                body.push_back(n);
            } else if (tok.type == Tok::BlockBegin) {
                const Token& keyword = peek(1);
                if (keyword.type != Tok::Name) failAt("expected a statement name after '{%'", keyword);
                for (const auto& e : enders)
                    if (keyword.text == e) return body;
                next();
                body.push_back(parseStatement());
            } else {
                fail("unexpected '" + tok.text + "'");
            }
        }
    }

    NodePtr parseStatement() {
        const Token& keyword = next();
        const std::string& k = keyword.text;
        if (k == "if") return parseIf(keyword);
        if (k == "for") return parseFor(keyword);
        if (k == "set") return parseSet(keyword);
        if (k == "macro") return parseMacro(keyword);
        if (k == "filter") return parseFilterBlock(keyword);
        if (k == "break" || k == "continue") {
            auto n = make(k == "break" ? NodeKind::Break : NodeKind::Continue, keyword);
            expectBlockEnd();
            return n;
        }
        if (k == "generation" || k == "endgeneration") {  // HF's AssistantTracker markers render nothing
            expectBlockEnd();
            return make(NodeKind::Sequence, keyword);
        }
        if (k == "include" || k == "import" || k == "extends" || k == "from")
            failAt("'" + k + "' is not allowed in chat templates (no file access)", keyword);
        failAt("unknown statement '" + k + "'", keyword);
    }

    void closeBlock(const char* ender) {
        next();  // BlockBegin
        if (!isName(ender)) fail(std::string("expected '") + ender + "'");
        next();
        expectBlockEnd();
    }

    NodePtr parseIf(const Token& at) {
        auto n = make(NodeKind::If, at);
        n->extra.push_back(parseExpression());
        expectBlockEnd();
        while (true) {
            auto body = make(NodeKind::Sequence, peek());
            body->children = parseBody({"elif", "else", "endif"});
            n->children.push_back(body);
            next();  // BlockBegin
            const std::string which = next().text;
            if (which == "elif") {
                n->extra.push_back(parseExpression());
                expectBlockEnd();
            } else if (which == "else") {
                expectBlockEnd();
                auto elseBody = make(NodeKind::Sequence, peek());
                elseBody->children = parseBody({"endif"});
                n->children.push_back(elseBody);
                n->hasElse = true;
                closeBlock("endif");
                return n;
            } else {
                expectBlockEnd();
                return n;
            }
        }
    }

    NodePtr parseFor(const Token& at) {
        auto n = make(NodeKind::For, at);
        n->names.push_back(expectName("a loop variable"));
        while (isOp(",")) {
            next();
            n->names.push_back(expectName("a loop variable"));
        }
        if (!isName("in")) fail("expected 'in'");
        next();
        n->a = parseOr();  // the iterable: no bare conditional here ("if" filters the loop)
        if (isName("if")) {
            next();
            n->b = parseOr();
        }
        if (isName("recursive")) fail("recursive loops are not supported");
        expectBlockEnd();
        auto body = make(NodeKind::Sequence, peek());
        body->children = parseBody({"else", "endfor"});
        n->children.push_back(body);
        if (isName("else", 1)) {
            next();
            next();
            expectBlockEnd();
            auto elseBody = make(NodeKind::Sequence, peek());
            elseBody->children = parseBody({"endfor"});
            n->extra.push_back(elseBody);
            n->hasElse = true;
        }
        closeBlock("endfor");
        return n;
    }

    NodePtr parseSet(const Token& at) {
        std::vector<std::string> targets{expectName("a variable name")};
        std::string attribute;
        if (isOp(".")) {
            next();
            attribute = expectName("an attribute name");
        }
        while (isOp(",")) {
            next();
            targets.push_back(expectName("a variable name"));
        }
        if (peek().type == Tok::BlockEnd || isOp("|")) {
            // Block set: {% set name %}...{% endset %}, optionally filtered.
            auto n = make(NodeKind::SetBlock, at);
            n->names = targets;
            if (isOp("|")) n->c = parseFilterChain(nullptr);
            expectBlockEnd();
            auto body = make(NodeKind::Sequence, peek());
            body->children = parseBody({"endset"});
            n->children.push_back(body);
            closeBlock("endset");
            return n;
        }
        expectOp("=");
        auto n = make(NodeKind::Set, at);
        n->names = targets;
        n->text = attribute;
        n->a = parseTupleOrExpression();
        expectBlockEnd();
        return n;
    }

    NodePtr parseMacro(const Token& at) {
        auto n = make(NodeKind::Macro, at);
        n->text = expectName("a macro name");
        expectOp("(");
        while (!isOp(")")) {
            n->names.push_back(expectName("a parameter name"));
            if (isOp("=")) {
                next();
                n->extra.push_back(parseExpression());
            } else {
                n->extra.push_back(nullptr);
            }
            if (!isOp(")")) expectOp(",");
        }
        next();
        expectBlockEnd();
        auto body = make(NodeKind::Sequence, peek());
        body->children = parseBody({"endmacro"});
        n->children.push_back(body);
        closeBlock("endmacro");
        return n;
    }

    NodePtr parseFilterBlock(const Token& at) {
        auto n = make(NodeKind::FilterBlock, at);
        n->c = parseFilterChain(nullptr, true);
        expectBlockEnd();
        auto body = make(NodeKind::Sequence, peek());
        body->children = parseBody({"endfilter"});
        n->children.push_back(body);
        closeBlock("endfilter");
        return n;
    }

    // ---- expressions ----

    NodePtr parseTupleOrExpression() {
        const Token& at = peek();
        auto first = parseExpression();
        if (!isOp(",")) return first;
        auto list = make(NodeKind::ListLit, at);
        list->children.push_back(first);
        while (isOp(",")) {
            next();
            if (peek().type == Tok::BlockEnd || isOp(")")) break;
            list->children.push_back(parseExpression());
        }
        return list;
    }

    NodePtr parseExpression() {
        DepthGuard guard(depth_, *this);
        const Token& at = peek();
        auto value = parseOr();
        if (isName("if")) {
            next();
            auto n = make(NodeKind::Cond, at);
            n->a = value;
            n->b = parseOr();
            if (isName("else")) {
                next();
                n->c = parseExpression();
            }
            return n;
        }
        return value;
    }

    NodePtr parseOr() {
        auto left = parseAnd();
        while (isName("or")) {
            const Token& at = next();
            auto n = make(NodeKind::Or, at);
            n->a = left;
            n->b = parseAnd();
            left = n;
        }
        return left;
    }

    NodePtr parseAnd() {
        auto left = parseNot();
        while (isName("and")) {
            const Token& at = next();
            auto n = make(NodeKind::And, at);
            n->a = left;
            n->b = parseNot();
            left = n;
        }
        return left;
    }

    NodePtr parseNot() {
        if (isName("not")) {
            const Token& at = next();
            DepthGuard guard(depth_, *this);
            auto n = make(NodeKind::Not, at);
            n->a = parseNot();
            return n;
        }
        return parseCompare();
    }

    NodePtr parseCompare() {
        auto left = parseMath1();
        while (true) {
            const Token& at = peek();
            if (at.type == Tok::Op && (at.text == "==" || at.text == "!=" || at.text == "<" || at.text == "<=" || at.text == ">" || at.text == ">=")) {
                next();
                auto n = make(NodeKind::Compare, at);
                n->text = at.text;
                n->a = left;
                n->b = parseMath1();
                left = n;
            } else if (isName("in")) {
                next();
                auto n = make(NodeKind::InOp, at);
                n->a = left;
                n->b = parseMath1();
                left = n;
            } else if (isName("not") && isName("in", 1)) {
                next();
                next();
                auto n = make(NodeKind::NotIn, at);
                n->a = left;
                n->b = parseMath1();
                left = n;
            } else {
                return left;
            }
        }
    }

    NodePtr binary(NodeKind kind, const Token& at, NodePtr a, NodePtr b) {
        auto n = make(kind, at);
        n->text = at.text;
        n->a = std::move(a);
        n->b = std::move(b);
        return n;
    }

    NodePtr parseMath1() {
        auto left = parseConcat();
        while (isOp("+") || isOp("-")) {
            const Token& at = next();
            left = binary(NodeKind::Binary, at, left, parseConcat());
        }
        return left;
    }

    NodePtr parseConcat() {
        auto left = parseMath2();
        while (isOp("~")) {
            const Token& at = next();
            left = binary(NodeKind::Concat, at, left, parseMath2());
        }
        return left;
    }

    NodePtr parseMath2() {
        auto left = parsePow();
        while (isOp("*") || isOp("/") || isOp("//") || isOp("%")) {
            const Token& at = next();
            left = binary(NodeKind::Binary, at, left, parsePow());
        }
        return left;
    }

    NodePtr parsePow() {
        auto left = parseUnary(true);
        while (isOp("**")) {
            const Token& at = next();
            left = binary(NodeKind::Binary, at, left, parseUnary(true));
        }
        return left;
    }

    NodePtr parseUnary(bool withFilter) {
        DepthGuard guard(depth_, *this);
        const Token& at = peek();
        NodePtr node;
        if (isOp("-") || isOp("+")) {
            next();
            node = make(at.text == "-" ? NodeKind::Neg : NodeKind::Pos, at);
            node->a = parseUnary(false);
        } else {
            node = parsePrimary();
        }
        node = parsePostfix(node);
        if (withFilter) node = parseFilterAndTests(node);
        return node;
    }

    NodePtr parsePrimary() {
        const Token& at = peek();
        if (at.type == Tok::String) {
            next();
            std::string s = at.text;
            while (peek().type == Tok::String) s += next().text;  // adjacent literals concatenate
            auto n = make(NodeKind::Literal, at);
            n->value = Value(s);
            return n;
        }
        if (at.type == Tok::Int || at.type == Tok::Float) {
            next();
            auto n = make(NodeKind::Literal, at);
            n->value = at.value;
            return n;
        }
        if (at.type == Tok::Name) {
            next();
            auto n = make(NodeKind::Literal, at);
            if (at.text == "true" || at.text == "True") n->value = Value(true);
            else if (at.text == "false" || at.text == "False") n->value = Value(false);
            else if (at.text == "none" || at.text == "None") n->value = Value::none();
            else {
                n->kind = NodeKind::Name;
                n->text = at.text;
            }
            return n;
        }
        if (isOp("(")) {
            next();
            if (isOp(")")) {
                next();
                auto n = make(NodeKind::ListLit, at);
                return n;
            }
            auto inner = parseExpression();
            if (isOp(",")) {
                auto list = make(NodeKind::ListLit, at);
                list->children.push_back(inner);
                while (isOp(",")) {
                    next();
                    if (isOp(")")) break;
                    list->children.push_back(parseExpression());
                }
                inner = list;
            }
            expectOp(")");
            return inner;
        }
        if (isOp("[")) {
            next();
            auto n = make(NodeKind::ListLit, at);
            while (!isOp("]")) {
                n->children.push_back(parseExpression());
                if (!isOp("]")) expectOp(",");
            }
            next();
            return n;
        }
        if (isOp("{")) {
            next();
            auto n = make(NodeKind::DictLit, at);
            while (!isOp("}")) {
                n->children.push_back(parseExpression());
                expectOp(":");
                n->children.push_back(parseExpression());
                if (!isOp("}")) expectOp(",");
            }
            next();
            return n;
        }
        if (at.type == Tok::VarEnd || at.type == Tok::BlockEnd || at.type == Tok::End) fail("expected an expression");
        fail("unexpected '" + at.text + "'");
    }

    NodePtr parsePostfix(NodePtr node) {
        while (true) {
            const Token& at = peek();
            if (isOp(".")) {
                next();
                auto n = make(NodeKind::Attr, at);
                n->a = node;
                if (peek().type == Tok::Int) {
                    n->kind = NodeKind::Item;
                    auto index = make(NodeKind::Literal, peek());
                    index->value = next().value;
                    n->b = index;
                } else {
                    n->text = expectName("an attribute name after '.'");
                }
                node = n;
            } else if (isOp("[")) {
                next();
                NodePtr start, stop, step;
                bool slice = false;
                if (!isOp(":")) start = parseExpression();
                if (isOp(":")) {
                    slice = true;
                    next();
                    if (!isOp("]") && !isOp(":")) stop = parseExpression();
                    if (isOp(":")) {
                        next();
                        if (!isOp("]")) step = parseExpression();
                    }
                }
                expectOp("]");
                auto n = make(slice ? NodeKind::Slice : NodeKind::Item, at);
                n->a = node;
                if (slice) {
                    n->children = {start, stop, step};
                } else {
                    n->b = start;
                }
                node = n;
            } else if (isOp("(")) {
                auto n = make(NodeKind::Call, at);
                n->a = node;
                parseArguments(*n);
                node = n;
            } else {
                return node;
            }
        }
    }

    void parseArguments(Node& n) {
        expectOp("(");
        while (!isOp(")")) {
            if (peek().type == Tok::Name && isOp("=", 1)) {
                n.names.push_back(next().text);
                next();
                n.extra.push_back(parseExpression());
            } else {
                if (!n.names.empty()) fail("positional argument after keyword arguments");
                n.children.push_back(parseExpression());
            }
            if (!isOp(")")) expectOp(",");
        }
        next();
    }

    // x | f(args) | g ... and x is [not] test(args)
    NodePtr parseFilterAndTests(NodePtr node) {
        while (true) {
            if (isOp("|")) {
                node = parseFilterChain(node);
            } else if (isName("is")) {
                const Token& at = next();
                auto n = make(NodeKind::Test, at);
                if (isName("not")) {
                    next();
                    n->negated = true;
                }
                n->text = expectName("a test name");
                if (n->text == "none" || n->text == "true" || n->text == "false") {
                    // tests named like literals
                } else if (isOp("(")) {
                    parseArguments(*n);
                } else if (peek().type == Tok::String || peek().type == Tok::Int || peek().type == Tok::Float ||
                           (peek().type == Tok::Name && !isName("and") && !isName("or") && !isName("else") && !isName("if") &&
                            !isName("in") && !isName("is") && !isName("not"))) {
                    n->children.push_back(parsePostfix(parsePrimary()));
                }
                n->a = node;
                node = n;
            } else {
                return node;
            }
        }
    }

    // One or more "| name(args)" applied to `input` (null for filter blocks and block sets).
    NodePtr parseFilterChain(NodePtr input, bool first = false) {
        if (first && !isOp("|")) {
            const Token& at = peek();
            auto n = make(NodeKind::Filter, at);
            n->text = expectName("a filter name");
            if (isOp("(")) parseArguments(*n);
            n->a = input;
            input = n;
        }
        while (isOp("|")) {
            const Token& at = next();
            auto n = make(NodeKind::Filter, at);
            n->text = expectName("a filter name");
            if (isOp("(")) parseArguments(*n);
            n->a = input;
            input = n;
        }
        return input;
    }

    std::vector<Token> t_;
    std::size_t i_ = 0;
    int depth_ = 0;
};

}  // namespace

Node::~Node() {
    // The children this node alone holds go to a stack, and each is emptied the same way before
    // it is released, so no destructor runs deeper than one level.
    std::vector<NodePtr> pending;
    const auto take = [&pending](Node& node) {
        for (NodePtr* p : {&node.a, &node.b, &node.c})
            if (*p && p->use_count() == 1) pending.push_back(std::move(*p));
        for (auto* list : {&node.children, &node.extra})
            for (NodePtr& p : *list)
                if (p && p.use_count() == 1) pending.push_back(std::move(p));
    };
    take(*this);
    while (!pending.empty()) {
        NodePtr last = std::move(pending.back());
        pending.pop_back();
        take(*last);
    }
}

NodePtr parseTemplate(std::string_view source, bool trimBlocks, bool lstripBlocks) {
    Lexer lexer(source, trimBlocks, lstripBlocks);
    Parser parser(lexer.run());
    return parser.parseRoot();
}

}  // namespace detail
}  // namespace lumen::inference::jinja
