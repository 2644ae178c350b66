#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <limits>
#include <optional>
#include <unordered_map>

#include "inference/llm/jinja/ast.h"
#include "inference/llm/jinja/jinja.h"
#include "inference/llm/unicode.h"

namespace lumen::inference::jinja {

struct Arguments {
    std::vector<Value> positional;
    std::vector<std::pair<std::string, Value>> keywords;

    // The argument at `index`, or named `name`, or `fallback`.
    Value get(std::size_t index, std::string_view name, Value fallback = Value()) const {
        for (const auto& [k, v] : keywords)
            if (k == name) return v;
        return index < positional.size() ? positional[index] : fallback;
    }
    bool has(std::size_t index, std::string_view name) const {
        if (index < positional.size()) return true;
        for (const auto& [k, v] : keywords)
            if (k == name) return true;
        return false;
    }
};

namespace {

using detail::Node;
using detail::NodeKind;
using detail::NodePtr;

// Thrown by raise_exception(): a template's own refusal, reported with its message.
struct TemplateRaised : TemplateError {
    using TemplateError::TemplateError;
};

enum class Flow { Normal, Break, Continue };

constexpr std::size_t kMaxListElements = 100'000;  // no chat template needs longer lists
constexpr int kMaxEvalDepth = 1000;                 // expression nesting; real templates stay under 30
constexpr int kMaxValueDepth = 200;                 // lists and dicts within each other

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}
std::string upper(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}
bool isSpaceChar(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string strip(const std::string& s, const Value& chars, bool left, bool right) {
    auto drop = [&](char c) { return chars.isString() ? chars.string().find(c) != std::string::npos : isSpaceChar(c); };
    std::size_t b = 0, e = s.size();
    if (left)
        while (b < e && drop(s[b])) ++b;
    if (right)
        while (e > b && drop(s[e - 1])) --e;
    return s.substr(b, e - b);
}

std::vector<std::string> splitString(const std::string& s, const Value& sep, std::int64_t maxSplit) {
    std::vector<std::string> out;
    if (!sep.isString() || sep.isNone()) {
        std::size_t i = 0;
        while (i < s.size()) {
            while (i < s.size() && isSpaceChar(s[i])) ++i;
            if (i >= s.size()) break;
            if (maxSplit >= 0 && static_cast<std::int64_t>(out.size()) == maxSplit) {
                out.push_back(strip(s.substr(i), Value(), false, true));
                break;
            }
            std::size_t j = i;
            while (j < s.size() && !isSpaceChar(s[j])) ++j;
            out.push_back(s.substr(i, j - i));
            i = j;
        }
        return out;
    }
    const std::string& d = sep.string();
    if (d.empty()) throw std::invalid_argument("empty separator");
    std::size_t start = 0;
    for (std::size_t at; (maxSplit < 0 || static_cast<std::int64_t>(out.size()) < maxSplit) && (at = s.find(d, start)) != std::string::npos;
         start = at + d.size())
        out.push_back(s.substr(start, at - start));
    out.push_back(s.substr(start));
    return out;
}

std::string replaceAll(std::string s, const std::string& from, const std::string& to, std::int64_t count) {
    if (from.empty()) return s;
    std::string out;
    std::size_t start = 0;
    std::int64_t done = 0;
    for (std::size_t at; (count < 0 || done < count) && (at = s.find(from, start)) != std::string::npos; start = at + from.size(), ++done)
        out += s.substr(start, at - start) + to;
    return out + s.substr(start);
}

std::string titleCase(const std::string& s) {
    std::string out = s;
    bool startOfWord = true;
    for (auto& c : out) {
        const bool alpha = std::isalpha(static_cast<unsigned char>(c)) || (static_cast<unsigned char>(c) >= 0x80);
        if (alpha) {
            c = static_cast<char>(startOfWord ? std::toupper(static_cast<unsigned char>(c)) : std::tolower(static_cast<unsigned char>(c)));
            startOfWord = false;
        } else {
            startOfWord = true;
        }
    }
    return out;
}

ValueList toList(const Value& v) {
    switch (v.kind()) {
        case Value::Kind::List: return v.list();
        case Value::Kind::Dict: {
            ValueList keys;
            for (const auto& [k, val] : v.dictionary().items) keys.emplace_back(k);
            return keys;
        }
        case Value::Kind::String: {
            ValueList chars;
            const std::string& s = v.string();
            for (std::size_t i = 0; i < s.size();) {
                std::size_t n = 1;
                const auto c = static_cast<unsigned char>(s[i]);
                if (c >= 0xF0) n = 4;
                else if (c >= 0xE0) n = 3;
                else if (c >= 0xC0) n = 2;
                chars.emplace_back(s.substr(i, n));
                i += n;
            }
            return chars;
        }
        case Value::Kind::Undefined: return {};
        default: throw std::invalid_argument("'" + v.typeName() + "' object is not iterable");
    }
}


// Python's format() of one value with a format spec (the mini-language: [[fill]align][sign][#][0]
// [width][,|_][.precision][type]), for str.format. Strings take s, integers d x X o b c and the
// float types, floats e E f F g G %; other values only an empty spec.
std::string formatField(const Value& v, const std::string& spec) {
    const auto unsupported = [&] {
        return std::invalid_argument("unsupported format string passed to " + v.typeName() + ".__format__");
    };
    if (spec.empty()) return v.str();
    std::size_t i = 0;
    char fill = ' ', align = 0, sign = '-', type = 0, grouping = 0;
    bool alternate = false;
    const auto isAlign = [](char c) { return c == '<' || c == '>' || c == '^' || c == '='; };
    if (spec.size() >= 2 && isAlign(spec[1]) && static_cast<unsigned char>(spec[0]) < 0x80) fill = spec[0], align = spec[1], i = 2;
    else if (isAlign(spec[0])) align = spec[0], i = 1;
    if (i < spec.size() && (spec[i] == '+' || spec[i] == '-' || spec[i] == ' ')) sign = spec[i++];
    if (i < spec.size() && spec[i] == '#') alternate = true, ++i;
    if (i < spec.size() && spec[i] == '0') {
        if (!align) fill = '0', align = '=';
        ++i;
    }
    std::int64_t width = 0, precision = -1;
    while (i < spec.size() && std::isdigit(static_cast<unsigned char>(spec[i])) && width < 100000) width = width * 10 + (spec[i++] - '0');
    if (i < spec.size() && (spec[i] == ',' || spec[i] == '_')) grouping = spec[i++];
    if (i < spec.size() && spec[i] == '.') {
        ++i;
        if (i >= spec.size() || !std::isdigit(static_cast<unsigned char>(spec[i]))) throw std::invalid_argument("Format specifier missing precision");
        precision = 0;
        while (i < spec.size() && std::isdigit(static_cast<unsigned char>(spec[i])) && precision < 100000) precision = precision * 10 + (spec[i++] - '0');
    }
    if (i < spec.size()) type = spec[i++];
    if (i < spec.size() || width >= 100000 || precision >= 100000) throw std::invalid_argument("Invalid format specifier");
    std::string body, prefix;
    const bool isInt = v.kind() == Value::Kind::Int || v.kind() == Value::Kind::Bool;
    if (v.isString()) {
        if (type && type != 's') throw std::invalid_argument("Unknown format code '" + std::string(1, type) + "' for object of type 'str'");
        if (sign != '-' || align == '=') throw std::invalid_argument(sign != '-' ? "Sign not allowed in string format specifier" : "'=' alignment not allowed in string format specifier");
        body = v.string();
        if (precision >= 0) {  // (code points)
            std::size_t at = 0;
            for (std::int64_t k = 0; k < precision && at < body.size(); ++k) at += static_cast<std::size_t>(std::max(1, utf8SequenceLength(static_cast<std::uint8_t>(body[at]))));
            body.resize(std::min(at, body.size()));
        }
        if (!align) align = '<';
    } else if (isInt && (!type || std::strchr("dxXobcn", type))) {
        if (precision >= 0) throw std::invalid_argument("Precision not allowed in integer format specifier");
        if (v.kind() == Value::Kind::Bool && !type) return v.str();
        const std::int64_t n = v.kind() == Value::Kind::Bool ? (v.truthy() ? 1 : 0) : v.integer();
        const std::uint64_t magnitude = n < 0 ? 0 - static_cast<std::uint64_t>(n) : static_cast<std::uint64_t>(n);
        if (type == 'c') {
            if (magnitude > 0x10FFFF) throw std::invalid_argument("%c arg not in range(0x110000)");
            appendUtf8(body, static_cast<std::uint32_t>(magnitude));
        } else {
            const int base = type == 'x' || type == 'X' ? 16 : type == 'o' ? 8 : type == 'b' ? 2 : 10;
            const char* digits = type == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
            for (std::uint64_t m = magnitude; ; m /= static_cast<std::uint64_t>(base)) {
                body.insert(body.begin(), digits[m % static_cast<std::uint64_t>(base)]);
                if (m < static_cast<std::uint64_t>(base)) break;
            }
            if (grouping) {
                const std::size_t every = base == 10 ? 3 : 4;
                for (std::size_t at = body.size(); at > every; at -= every) body.insert(at - every, 1, grouping);
            }
            if (alternate && base != 10) prefix = type == 'x' ? "0x" : type == 'X' ? "0X" : type == 'o' ? "0o" : "0b";
            prefix.insert(0, n < 0 ? "-" : sign == '+' ? "+" : sign == ' ' ? " " : "");
        }
    } else if (isInt || v.kind() == Value::Kind::Float) {
        if (type && !std::strchr("eEfFgG%", type)) throw std::invalid_argument("Unknown format code '" + std::string(1, type) + "' for object of type '" + v.typeName() + "'");
        double x = v.number();
        if (!type && precision < 0) {
            body = isInt ? std::to_string(v.integer()) : formatFloat(x);
            if (!body.empty() && body[0] == '-') body.erase(0, 1);
        } else {
            const char t = type == '%' ? 'f' : !type ? 'g' : type;
            if (type == '%') x *= 100.0;
            const int digits = static_cast<int>(precision < 0 ? 6 : precision);
            const auto print = [&](char* to, std::size_t size) {
                const double a = std::fabs(x);
                switch (t) {  // (literal formats, one per type)
                    case 'e': return alternate ? std::snprintf(to, size, "%#.*e", digits, a) : std::snprintf(to, size, "%.*e", digits, a);
                    case 'E': return alternate ? std::snprintf(to, size, "%#.*E", digits, a) : std::snprintf(to, size, "%.*E", digits, a);
                    case 'g': return alternate ? std::snprintf(to, size, "%#.*g", digits, a) : std::snprintf(to, size, "%.*g", digits, a);
                    case 'G': return alternate ? std::snprintf(to, size, "%#.*G", digits, a) : std::snprintf(to, size, "%.*G", digits, a);
                    case 'F': return alternate ? std::snprintf(to, size, "%#.*F", digits, a) : std::snprintf(to, size, "%.*F", digits, a);
                    default: return alternate ? std::snprintf(to, size, "%#.*f", digits, a) : std::snprintf(to, size, "%.*f", digits, a);
                }
            };
            std::string text(static_cast<std::size_t>(print(nullptr, 0)) + 1, '\0');
            print(text.data(), text.size());
            text.pop_back();
            body = text;
            if (type == '%') body += '%';
        }
        if (grouping) {
            const std::size_t end = std::min(body.find_first_not_of("0123456789"), body.size());
            for (std::size_t at = end; at > 3; at -= 3) body.insert(at - 3, 1, grouping);
        }
        prefix = std::signbit(x) && !std::isnan(x) ? "-" : sign == '+' ? "+" : sign == ' ' ? " " : "";
    } else {
        throw unsupported();
    }
    if (!align) align = '>';
    const std::int64_t length = static_cast<std::int64_t>(codePointCount(prefix + body));
    if (width <= length) return prefix + body;
    const auto pad = static_cast<std::size_t>(width - length);
    const auto repeat = [fill](std::size_t k) { return std::string(k, fill); };
    switch (align) {
        case '<': return prefix + body + repeat(pad);
        case '^': return repeat(pad / 2) + prefix + body + repeat(pad - pad / 2);
        case '=': return prefix + repeat(pad) + body;
        default: return repeat(pad) + prefix + body;
    }
}

// Python's str.format: {} {0} {name} fields with attribute (.x) and index ([k]) steps, !s / !r
// conversions and format specs; {{ and }} are braces. std::length_error once the result would
// pass maxBytes (each field may pad or print up to 100,000 characters).
std::string formatString(const std::string& s, Arguments& args, std::size_t maxBytes) {
    std::string out;
    std::int64_t automatic = 0;
    bool manual = false, autoNumbered = false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if (c == '}') {
            if (i + 1 < s.size() && s[i + 1] == '}') {
                out += '}';
                ++i;
                continue;
            }
            throw std::invalid_argument("Single '}' encountered in format string");
        }
        if (c != '{') {
            out += c;
            continue;
        }
        if (i + 1 < s.size() && s[i + 1] == '{') {
            out += '{';
            ++i;
            continue;
        }
        const std::size_t close = s.find('}', i + 1);
        if (close == std::string::npos) throw std::invalid_argument("Single '{' encountered in format string");
        std::string field = s.substr(i + 1, close - i - 1), spec;
        i = close;
        if (field.find('{') != std::string::npos) throw std::invalid_argument("nested replacement fields are not supported here");
        if (const auto colon = field.find(':'); colon != std::string::npos) spec = field.substr(colon + 1), field.resize(colon);
        char conversion = 0;
        if (const auto bang = field.find('!'); bang != std::string::npos) {
            if (bang + 2 != field.size() || (field[bang + 1] != 's' && field[bang + 1] != 'r' && field[bang + 1] != 'a'))
                throw std::invalid_argument("Unknown conversion specifier " + field.substr(bang + 1));
            conversion = field[bang + 1];
            field.resize(bang);
        }
        const std::size_t firstEnd = std::min(field.find_first_of(".["), field.size());
        const std::string head = field.substr(0, firstEnd);
        Value value;
        if (head.empty()) {
            if (manual) throw std::invalid_argument("cannot switch from manual field specification to automatic field numbering");
            autoNumbered = true;
            if (automatic >= static_cast<std::int64_t>(args.positional.size()))
                throw std::invalid_argument("tuple index out of range");
            value = args.positional[static_cast<std::size_t>(automatic++)];
        } else if (std::all_of(head.begin(), head.end(), [](char d) { return std::isdigit(static_cast<unsigned char>(d)); })) {
            if (autoNumbered) throw std::invalid_argument("cannot switch from automatic field numbering to manual field specification");
            manual = true;
            const std::size_t index = head.size() > 9 ? SIZE_MAX : static_cast<std::size_t>(std::stoull(head));
            if (index >= args.positional.size()) throw std::invalid_argument("tuple index out of range");
            value = args.positional[index];
        } else {
            const auto it = std::find_if(args.keywords.begin(), args.keywords.end(), [&](const auto& kw) { return kw.first == head; });
            if (it == args.keywords.end()) throw std::invalid_argument("'" + head + "'");
            value = it->second;
        }
        for (std::size_t at = firstEnd; at < field.size();) {
            if (field[at] == '.') {
                const std::size_t end = std::min(field.find_first_of(".[", at + 1), field.size());
                const std::string name = field.substr(at + 1, end - at - 1);
                const Value* found = value.isDict() ? value.dictionary().find(name) : nullptr;
                if (!found) throw std::invalid_argument("'" + value.typeName() + "' object has no attribute '" + name + "'");
                value = *found;
                at = end;
            } else {
                const std::size_t end = field.find(']', at);
                if (end == std::string::npos) throw std::invalid_argument("Missing ']' in format string");
                const std::string key = field.substr(at + 1, end - at - 1);
                const bool number = !key.empty() && std::all_of(key.begin(), key.end(), [](char d) { return std::isdigit(static_cast<unsigned char>(d)); });
                if (value.isList() && number) {
                    const std::size_t index = key.size() > 9 ? SIZE_MAX : static_cast<std::size_t>(std::stoull(key));
                    if (index >= value.list().size()) throw std::invalid_argument("list index out of range");
                    value = value.list()[index];
                } else {
                    const Value* found = value.isDict() ? value.dictionary().find(key) : nullptr;
                    if (!found) throw std::invalid_argument("'" + key + "'");
                    value = *found;
                }
                at = end + 1;
                if (at < field.size() && field[at] != '.' && field[at] != '[')
                    throw std::invalid_argument("Only '.' or '[' may follow ']' in format field specifier");
            }
        }
        if (conversion == 'r' || conversion == 'a') value = Value(value.repr());
        else if (conversion == 's') value = Value(value.str());
        out += formatField(value, spec);
        if (out.size() > maxBytes) throw std::length_error("a value grew past " + std::to_string(maxBytes) + " bytes");
    }
    return out;
}

}  // namespace

class Renderer {
public:
    Renderer(const RenderOptions& options) : options_(options) {}

    std::string run(const Node& root, const nlohmann::ordered_json& context) {
        scopes_.emplace_back();
        installGlobals();
        if (!context.is_object()) throw TemplateError("the template context must be a JSON object");
        for (const auto& [k, v] : context.items()) {
            if (Value::jsonNestsDeeperThan(v, kMaxValueDepth)) throw TemplateError("the template context nests more than " + std::to_string(kMaxValueDepth) + " levels deep");
            scopes_.back()[k] = Value::fromJson(v);
        }
        scopes_.emplace_back();  // the template's own top-level variables
        renderBody(root.children);
        return std::move(out_);
    }

    // ---- scopes ----
    Value lookup(const std::string& name) const {
        for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
            const auto f = it->find(name);
            if (f != it->end()) return f->second;
        }
        return Value();
    }
    void assign(const std::string& name, Value v) { scopes_.back()[name] = std::move(v); }

    void step(const Node& at) {
        if (++steps_ > options_.limits.maxSteps)
            fail(at, "the template ran too long (over " + std::to_string(options_.limits.maxSteps) + " steps)");
        if (steps_ % 4096 != 0) return;
        if (options_.cancel && options_.cancel->load()) fail(at, "the render was stopped");
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
        if (seconds > options_.limits.maxSeconds)
            fail(at, "the template ran too long (over " + std::to_string(static_cast<int>(options_.limits.maxSeconds)) + " s)");
    }

    [[noreturn]] void fail(const Node& at, const std::string& message) const { throw TemplateError(message, at.line, at.column); }

    void write(const Node& at, const std::string& s) {
        step(at);
        if (out_.size() + s.size() > options_.limits.maxOutputBytes)
            fail(at, "the output grew past " + std::to_string(options_.limits.maxOutputBytes) + " bytes");
        out_ += s;
    }

    // ---- statements ----
    Flow renderBody(const std::vector<NodePtr>& body) {
        for (const auto& n : body) {
            const Flow f = renderNode(*n);
            if (f != Flow::Normal) return f;
        }
        return Flow::Normal;
    }

    std::string capture(const std::vector<NodePtr>& body, Flow* flow = nullptr) {
        std::string saved = std::move(out_);
        out_.clear();
        const Flow f = renderBody(body);
        if (flow) *flow = f;
        std::string captured = std::move(out_);
        out_ = std::move(saved);
        return captured;
    }

    Flow renderNode(const Node& n) {
        switch (n.kind) {
            case NodeKind::Sequence: return renderBody(n.children);
            case NodeKind::Text: write(n, n.text); return Flow::Normal;
            case NodeKind::Output: write(n, eval(*n.a).str()); return Flow::Normal;
            case NodeKind::If:
                for (std::size_t i = 0; i < n.extra.size(); ++i)
                    if (eval(*n.extra[i]).truthy()) return renderBody(n.children[i]->children);
                if (n.hasElse) return renderBody(n.children.back()->children);
                return Flow::Normal;
            case NodeKind::For: return renderFor(n);
            case NodeKind::Set: {
                Value v = eval(*n.a);
                if (!n.text.empty()) {
                    Value target = lookup(n.names[0]);
                    if (!target.isDict() || !target.dictionary().isNamespace)
                        fail(n, "cannot assign attribute '" + n.text + "' of '" + n.names[0] + "': it is not a namespace()");
                    // A namespace holding itself (through lists or other namespaces) would be a
                    // cycle: never freed, and endless to print.
                    if (Value::holds(v, &target.dictionary(), kMaxValueDepth))
                        fail(n, "cannot assign '" + n.names[0] + "." + n.text + "': the value holds the namespace itself");
                    target.dictionary().set(n.text, nestable(n, std::move(v)));
                } else if (n.names.size() == 1) {
                    assign(n.names[0], std::move(v));
                } else {
                    const ValueList items = toListAt(n, v);
                    if (items.size() != n.names.size()) fail(n, "cannot unpack " + std::to_string(items.size()) + " values into " + std::to_string(n.names.size()) + " names");
                    for (std::size_t i = 0; i < items.size(); ++i) assign(n.names[i], items[i]);
                }
                return Flow::Normal;
            }
            case NodeKind::SetBlock: {
                std::string text = capture(n.children[0]->children);
                Value v(std::move(text));
                if (n.c) v = applyFilterChain(*n.c, v);
                assign(n.names[0], v);
                return Flow::Normal;
            }
            case NodeKind::FilterBlock: {
                Flow f = Flow::Normal;
                const std::string text = capture(n.children[0]->children, &f);
                write(n, applyFilterChain(*n.c, Value(text)).str());
                return f;
            }
            case NodeKind::Macro: assign(n.text, makeMacro(n)); return Flow::Normal;
            case NodeKind::Break: return Flow::Break;
            case NodeKind::Continue: return Flow::Continue;
            default: write(n, eval(n).str()); return Flow::Normal;
        }
    }

    ValueList toListAt(const Node& at, const Value& v) {
        try {
            return toList(v);
        } catch (const std::invalid_argument& e) {
            fail(at, e.what());
        }
    }

    Flow renderFor(const Node& n) {
        const Value iterable = eval(*n.a);
        ValueList items;
        if (iterable.isDict()) {
            for (const auto& [k, v] : iterable.dictionary().items) items.emplace_back(k);
        } else {
            items = toListAt(*n.a, iterable);
        }
        // The loop's "if" filters before loop.index and friends are counted.
        auto bindTargets = [&](const Value& item) {
            if (n.names.size() == 1) {
                assign(n.names[0], item);
                return;
            }
            const ValueList parts = toListAt(n, item);
            if (parts.size() != n.names.size()) fail(n, "cannot unpack " + std::to_string(parts.size()) + " values into " + std::to_string(n.names.size()) + " loop variables");
            for (std::size_t i = 0; i < parts.size(); ++i) assign(n.names[i], parts[i]);
        };
        if (n.b) {
            ValueList kept;
            for (const auto& item : items) {
                scopes_.emplace_back();
                bindTargets(item);
                const bool keep = eval(*n.b).truthy();
                scopes_.pop_back();
                if (keep) kept.push_back(item);
            }
            items = std::move(kept);
        }
        if (items.empty()) {
            if (n.hasElse) return renderBody(n.extra[0]->children);
            return Flow::Normal;
        }
        const auto length = static_cast<std::int64_t>(items.size());
        for (std::int64_t i = 0; i < length; ++i) {
            step(n);
            scopes_.emplace_back();
            bindTargets(items[static_cast<std::size_t>(i)]);
            Value loop = Value::dict();
            auto& d = loop.dictionary();
            d.set("index", Value(i + 1));
            d.set("index0", Value(i));
            d.set("revindex", Value(length - i));
            d.set("revindex0", Value(length - i - 1));
            d.set("first", Value(i == 0));
            d.set("last", Value(i == length - 1));
            d.set("length", Value(length));
            d.set("previtem", i > 0 ? items[static_cast<std::size_t>(i - 1)] : Value());
            d.set("nextitem", i + 1 < length ? items[static_cast<std::size_t>(i + 1)] : Value());
            d.set("cycle", Value::function("cycle", [i](Renderer&, Arguments& args) {
                      if (args.positional.empty()) return Value();
                      return args.positional[static_cast<std::size_t>(i) % args.positional.size()];
                  }));
            assign("loop", loop);
            const Flow f = renderBody(n.children[0]->children);
            scopes_.pop_back();
            if (f == Flow::Break) break;
        }
        return Flow::Normal;
    }

    Value makeMacro(const Node& n) {
        const Node* macro = &n;
        return Value::function(n.text, [macro](Renderer& r, Arguments& args) {
            if (static_cast<int>(r.callDepth_) >= r.options_.limits.maxCallDepth)
                r.fail(*macro, "macro calls nest deeper than " + std::to_string(r.options_.limits.maxCallDepth));
            std::unordered_map<std::string, Value> frame;
            for (std::size_t i = 0; i < macro->names.size(); ++i) {
                Value v = args.get(i, macro->names[i]);
                if (v.isUndefined() && macro->extra[i]) v = r.eval(*macro->extra[i]);
                frame[macro->names[i]] = v;
            }
            // A macro sees the globals and the template's top level, not its caller's locals.
            std::vector<std::unordered_map<std::string, Value>> saved;
            saved.swap(r.scopes_);
            r.scopes_.push_back(saved[0]);
            r.scopes_.push_back(saved.size() > 1 ? saved[1] : std::unordered_map<std::string, Value>{});
            r.scopes_.push_back(std::move(frame));
            ++r.callDepth_;
            std::string text;
            try {
                text = r.capture(macro->children[0]->children);
            } catch (...) {
                --r.callDepth_;
                r.scopes_.swap(saved);
                throw;
            }
            --r.callDepth_;
            r.scopes_.swap(saved);
            return Value(std::move(text));
        });
    }

    // ---- expressions ----
    // Strings and lists may not outgrow the output limit: a template that doubles a string in
    // a loop is stopped here, not by running out of memory.
    void checkSize(const Node& at, std::size_t bytes) const {
        if (bytes > options_.limits.maxOutputBytes)
            fail(at, "a value grew past " + std::to_string(options_.limits.maxOutputBytes) + " bytes");
    }

    // A value about to go inside a list or dict literal: refused when that would nest values more
    // than kMaxValueDepth deep ({% set ns.x = [ns.x] %} in a loop), since printing, tojson,
    // comparing and freeing them recurse once per level.
    Value nestable(const Node& at, Value v) {
        if (Value::nestsDeeperThan(v, kMaxValueDepth - 1))
            fail(at, "a value nests more than " + std::to_string(kMaxValueDepth) + " lists or dicts deep");
        return v;
    }

    Value eval(const Node& n) {
        // Long chains (x.a.a.a..., 1+1+1..., x|f|f...) parse into deep trees without recursing;
        // evaluating one recurses, so its depth is bounded here.
        if (evalDepth_ >= kMaxEvalDepth) fail(n, "the expression nests too deeply (more than " + std::to_string(kMaxEvalDepth) + " levels)");
        ++evalDepth_;
        struct Leave {
            int& depth;
            ~Leave() { --depth; }
        } leave{evalDepth_};
        try {
            Value v = evalInner(n);
            if (v.isString()) checkSize(n, v.string().size());
            else if (v.isList() && v.list().size() > kMaxListElements) fail(n, "a list grew past " + std::to_string(kMaxListElements) + " items");
            return v;
        } catch (const std::invalid_argument& e) {
            fail(n, e.what());
        } catch (const std::out_of_range& e) {
            fail(n, e.what());
        }
    }

    Value evalInner(const Node& n) {
        switch (n.kind) {
            case NodeKind::Literal: return n.value;
            case NodeKind::Name: return lookup(n.text);
            case NodeKind::ListLit: {
                ValueList list;
                for (const auto& c : n.children) list.push_back(nestable(*c, eval(*c)));
                return Value(std::move(list));
            }
            case NodeKind::DictLit: {
                Value d = Value::dict();
                for (std::size_t i = 0; i + 1 < n.children.size(); i += 2) {
                    const Value key = eval(*n.children[i]);
                    d.dictionary().set(key.str(), nestable(*n.children[i + 1], eval(*n.children[i + 1])));
                }
                return d;
            }
            case NodeKind::Attr: return getAttribute(n, eval(*n.a), n.text);
            case NodeKind::Item: return getItem(n, eval(*n.a), eval(*n.b));
            case NodeKind::Slice: return slice(n, eval(*n.a));
            case NodeKind::Call: return call(n);
            case NodeKind::Filter: {
                Value input = n.a ? eval(*n.a) : Value();
                return applyFilter(n, input);
            }
            case NodeKind::Test: {
                const bool result = applyTest(n, eval(*n.a));
                return Value(n.negated ? !result : result);
            }
            case NodeKind::Neg: {
                const Value v = eval(*n.a);
                if (v.kind() == Value::Kind::Int) {
                    if (v.integer() == std::numeric_limits<std::int64_t>::min()) fail(n, "integer overflow in - (the result does not fit 64 bits)");
                    return Value(-v.integer());
                }
                if (v.isNumber()) return Value(-v.number());
                fail(n, "bad operand type for unary -: '" + v.typeName() + "'");
            }
            case NodeKind::Pos: return eval(*n.a);
            case NodeKind::Not: return Value(!eval(*n.a).truthy());
            case NodeKind::And: {
                Value a = eval(*n.a);
                return a.truthy() ? eval(*n.b) : a;
            }
            case NodeKind::Or: {
                Value a = eval(*n.a);
                return a.truthy() ? a : eval(*n.b);
            }
            case NodeKind::Cond:
                if (eval(*n.b).truthy()) return eval(*n.a);
                return n.c ? eval(*n.c) : Value();
            case NodeKind::Concat: {
                const std::string a = eval(*n.a).str(), b = eval(*n.b).str();
                checkSize(n, a.size() + b.size());
                return Value(a + b);
            }
            case NodeKind::InOp: return Value(contains(n, eval(*n.b), eval(*n.a)));
            case NodeKind::NotIn: return Value(!contains(n, eval(*n.b), eval(*n.a)));
            case NodeKind::Compare: {
                const Value a = eval(*n.a), b = eval(*n.b);
                if (n.text == "==") return Value(a.equals(b));
                if (n.text == "!=") return Value(!a.equals(b));
                const int c = a.compare(b, n.text);
                if (n.text == "<") return Value(c < 0);
                if (n.text == "<=") return Value(c <= 0);
                if (n.text == ">") return Value(c > 0);
                return Value(c >= 0);
            }
            case NodeKind::Binary: return arithmetic(n, eval(*n.a), eval(*n.b));
            default: fail(n, "this statement cannot be used as an expression");
        }
    }

    bool contains(const Node& at, const Value& container, const Value& item) {
        switch (container.kind()) {
            case Value::Kind::String:
                if (!item.isString()) fail(at, "'in <string>' requires a string on the left, not " + item.typeName());
                return container.string().find(item.string()) != std::string::npos;
            case Value::Kind::List:
                for (const auto& v : container.list())
                    if (v.equals(item)) return true;
                return false;
            case Value::Kind::Dict: return item.isString() && container.dictionary().find(item.string()) != nullptr;
            case Value::Kind::Undefined: return false;
            default: fail(at, "argument of type '" + container.typeName() + "' is not iterable");
        }
    }

    Value arithmetic(const Node& n, const Value& a, const Value& b) { return arithmetic(n, n.text, a, b); }

    // `op` applied to a and b; errors name the node n.
    Value arithmetic(const Node& n, const std::string& op, const Value& a, const Value& b) {
        if (op == "+") {
            if (a.isString() && b.isString()) {
                checkSize(n, a.string().size() + b.string().size());
                if (a.isMarkup() || b.isMarkup())  // Markup + str escapes the plain side
                    return Value::markup((a.isMarkup() ? a.string() : htmlEscape(a.string())) +
                                         (b.isMarkup() ? b.string() : htmlEscape(b.string())));
                return Value(a.string() + b.string());
            }
            if (a.isList() && b.isList()) {
                if (a.list().size() + b.list().size() > kMaxListElements) fail(n, "a list grew past " + std::to_string(kMaxListElements) + " items");
                ValueList joined = a.list();
                joined.insert(joined.end(), b.list().begin(), b.list().end());
                return Value(std::move(joined));
            }
        }
        if (op == "*" && ((a.isString() && b.kind() == Value::Kind::Int) || (b.isString() && a.kind() == Value::Kind::Int))) {
            const std::string& s = a.isString() ? a.string() : b.string();
            const std::int64_t times = a.isString() ? b.integer() : a.integer();
            if (times > 0 && !s.empty() && static_cast<std::uint64_t>(times) > options_.limits.maxOutputBytes / s.size())
                fail(n, "the repeated string would be too long");
            std::string out;
            for (std::int64_t i = 0; i < times; ++i) out += s;
            return Value(std::move(out));
        }
        const auto numeric = [](const Value& v) { return v.isNumber() || v.kind() == Value::Kind::Bool; };
        if (!numeric(a) || !numeric(b))
            fail(n, "unsupported operand types for " + op + ": '" + a.typeName() + "' and '" + b.typeName() + "'");
        const bool ints = a.kind() != Value::Kind::Float && b.kind() != Value::Kind::Float;
        const std::int64_t ai = a.kind() == Value::Kind::Bool ? a.boolean() : a.integer();
        const std::int64_t bi = b.kind() == Value::Kind::Bool ? b.boolean() : b.integer();
        const double af = a.number(), bf = b.number();
        // Python's integers do not overflow; 64-bit ones here say so instead of wrapping.
        const auto checked = [&](bool overflowed, const std::int64_t& r) {  // (r read after the check wrote it)
            if (overflowed) fail(n, "integer overflow in " + op + " (the result does not fit 64 bits)");
            return Value(r);
        };
        std::int64_t r = 0;
        if (op == "+") return ints ? checked(__builtin_add_overflow(ai, bi, &r), r) : Value(af + bf);
        if (op == "-") return ints ? checked(__builtin_sub_overflow(ai, bi, &r), r) : Value(af - bf);
        if (op == "*") return ints ? checked(__builtin_mul_overflow(ai, bi, &r), r) : Value(af * bf);
        if (op == "/") {
            if (bf == 0) fail(n, "division by zero");
            return Value(af / bf);
        }
        if (op == "//") {
            if (bf == 0) fail(n, "integer division by zero");
            if (ints) {
                if (ai == std::numeric_limits<std::int64_t>::min() && bi == -1) return checked(true, 0);
                std::int64_t q = ai / bi;
                if ((ai % bi != 0) && ((ai < 0) != (bi < 0))) --q;
                return Value(q);
            }
            return Value(std::floor(af / bf));
        }
        if (op == "%") {
            if (bf == 0) fail(n, "modulo by zero");
            if (ints) {
                if (bi == -1) return Value(std::int64_t{0});  // (and no SIGFPE for the smallest integer)
                std::int64_t m = ai % bi;
                if (m != 0 && ((m < 0) != (bi < 0))) m += bi;
                return Value(m);
            }
            return Value(af - std::floor(af / bf) * bf);
        }
        if (op == "**") {
            if (ints && bi >= 0) {
                // By squaring; 0, 1 and -1 take any exponent.
                if (ai == 0 || ai == 1) return Value(bi == 0 ? std::int64_t{1} : ai);
                if (ai == -1) return Value(bi % 2 == 0 ? std::int64_t{1} : std::int64_t{-1});
                std::int64_t result = 1, base = ai;
                for (std::int64_t e = bi; e > 0; e >>= 1) {
                    if ((e & 1) && __builtin_mul_overflow(result, base, &result)) return checked(true, 0);
                    if (e > 1 && __builtin_mul_overflow(base, base, &base)) return checked(true, 0);
                }
                return Value(result);
            }
            return Value(std::pow(af, bf));
        }
        fail(n, "unknown operator " + op);
    }

    Value slice(const Node& n, const Value& v) {
        const auto bound = [&](const NodePtr& p) -> std::optional<std::int64_t> {
            if (!p) return std::nullopt;
            const Value x = eval(*p);
            if (x.isNone()) return std::nullopt;
            if (x.kind() != Value::Kind::Int) fail(*p, "slice indices must be integers");
            return x.integer();
        };
        const auto start = bound(n.children[0]), stop = bound(n.children[1]), stepValue = bound(n.children[2]);
        const std::int64_t stepBy = stepValue.value_or(1);
        if (stepBy == 0) fail(n, "slice step cannot be zero");
        ValueList items = toListAt(n, v);
        const auto len = static_cast<std::int64_t>(items.size());
        auto clampIndex = [&](std::optional<std::int64_t> i, std::int64_t dflt) {
            if (!i) return dflt;
            std::int64_t x = *i < 0 ? *i + len : *i;
            if (stepBy > 0) return std::clamp<std::int64_t>(x, 0, len);
            return std::clamp<std::int64_t>(x, -1, len - 1);
        };
        const std::int64_t b = clampIndex(start, stepBy > 0 ? 0 : len - 1);
        const std::int64_t e = clampIndex(stop, stepBy > 0 ? len : -1);
        ValueList out;
        for (std::int64_t i = b; stepBy > 0 ? i < e : i > e; i += stepBy) out.push_back(items[static_cast<std::size_t>(i)]);
        if (v.isString()) {
            std::string s;
            for (const auto& c : out) s += c.string();
            return Value(std::move(s));
        }
        return Value(std::move(out));
    }

    Value getItem(const Node& n, const Value& obj, const Value& key) {
        switch (obj.kind()) {
            case Value::Kind::Dict:
                if (const Value* v = obj.dictionary().find(key.str())) return *v;
                return key.isString() ? getAttribute(n, obj, key.string(), false) : Value();
            case Value::Kind::List:
            case Value::Kind::String: {
                if (obj.isGenerator()) fail(n, "'generator' object is not subscriptable");
                if (key.kind() != Value::Kind::Int) {
                    if (key.isString()) return getAttribute(n, obj, key.string());
                    fail(n, obj.typeName() + " indices must be integers");
                }
                const ValueList items = obj.isList() ? ValueList() : toList(obj);
                const ValueList& list = obj.isList() ? obj.list() : items;
                std::int64_t i = key.integer();
                if (i < 0) i += static_cast<std::int64_t>(list.size());
                if (i < 0 || i >= static_cast<std::int64_t>(list.size())) return Value();
                return list[static_cast<std::size_t>(i)];
            }
            case Value::Kind::Undefined: fail(n, "cannot index an undefined value (with " + key.repr() + ")");
            default: return Value();
        }
    }

    Value getAttribute(const Node& n, const Value& obj, const std::string& name, bool methodsFirst = true) {
        if (obj.isUndefined()) fail(n, "cannot read attribute '" + name + "' of an undefined value");
        if (methodsFirst || !obj.isDict()) {
            Value method = boundMethod(obj, name);
            if (!method.isUndefined()) return method;
        }
        if (obj.isDict())
            if (const Value* v = obj.dictionary().find(name)) return *v;
        return Value();
    }

    Value call(const Node& n) {
        Arguments args;
        for (const auto& c : n.children) args.positional.push_back(eval(*c));
        for (std::size_t i = 0; i < n.names.size(); ++i) args.keywords.emplace_back(n.names[i], eval(*n.extra[i]));
        const Value f = eval(*n.a);
        if (!f.isFunction()) {
            if (n.a->kind == NodeKind::Name) fail(n, "'" + n.a->text + "' is undefined or not callable");
            fail(n, "'" + f.typeName() + "' object is not callable");
        }
        step(n);
        try {
            return f.callable()(*this, args);
        } catch (const TemplateError&) {
            throw;
        } catch (const std::exception& e) {
            fail(n, e.what());
        }
    }

    // ---- methods of str, dict and list ----
    Value boundMethod(const Value& obj, const std::string& name) {
        if (obj.isString()) {
            const std::string s = obj.string();
            auto m = [&](auto fn) { return Value::function(name, fn); };
            if (name == "strip" || name == "lstrip" || name == "rstrip")
                return m([s, name](Renderer&, Arguments& a) {
                    return Value(strip(s, a.get(0, "chars"), name != "rstrip", name != "lstrip"));
                });
            if (name == "upper") return m([s](Renderer&, Arguments&) { return Value(upper(s)); });
            if (name == "lower") return m([s](Renderer&, Arguments&) { return Value(lower(s)); });
            if (name == "title") return m([s](Renderer&, Arguments&) { return Value(titleCase(s)); });
            if (name == "capitalize")
                return m([s](Renderer&, Arguments&) {
                    std::string out = lower(s);
                    if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
                    return Value(out);
                });
            if (name == "startswith" || name == "endswith")
                return m([s, name](Renderer&, Arguments& a) {
                    const Value p = a.get(0, "prefix");
                    ValueList options = p.isList() ? p.list() : ValueList{p};
                    for (const auto& o : options) {
                        const std::string& x = o.str();
                        if (name == "startswith" ? s.rfind(x, 0) == 0
                                                 : (s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0))
                            return Value(true);
                    }
                    return Value(false);
                });
            if (name == "split" || name == "rsplit")
                return m([s](Renderer&, Arguments& a) {
                    const Value maxSplit = a.get(1, "maxsplit", Value(-1));
                    ValueList out;
                    for (auto& part : splitString(s, a.get(0, "sep"), maxSplit.integer())) out.emplace_back(part);
                    return Value(std::move(out));
                });
            if (name == "splitlines")
                return m([s](Renderer&, Arguments&) {
                    ValueList out;
                    std::size_t start = 0;
                    for (std::size_t i = 0; i < s.size(); ++i)
                        if (s[i] == '\n' || s[i] == '\r') {
                            out.emplace_back(s.substr(start, i - start));
                            if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
                            start = i + 1;
                        }
                    if (start < s.size()) out.emplace_back(s.substr(start));
                    return Value(std::move(out));
                });
            if (name == "replace")
                return m([s, &n = dummyNode_](Renderer& r, Arguments& a) {
                    r.checkReplaceSize(n, s, a.get(0, "old").str(), a.get(1, "new").str());
                    return Value(replaceAll(s, a.get(0, "old").str(), a.get(1, "new").str(), a.get(2, "count", Value(-1)).integer()));
                });
            if (name == "find" || name == "index")
                return m([s, name](Renderer&, Arguments& a) {
                    const auto at = s.find(a.get(0, "sub").str());
                    if (at == std::string::npos && name == "index") throw std::invalid_argument("substring not found");
                    return Value(at == std::string::npos ? std::int64_t(-1) : static_cast<std::int64_t>(codePointCount(s.substr(0, at))));
                });
            if (name == "count")
                return m([s](Renderer&, Arguments& a) {
                    const std::string x = a.get(0, "sub").str();
                    if (x.empty()) return Value(static_cast<std::int64_t>(codePointCount(s) + 1));
                    std::int64_t c = 0;
                    for (std::size_t at = s.find(x); at != std::string::npos; at = s.find(x, at + x.size())) ++c;
                    return Value(c);
                });
            if (name == "format")
                return m([s](Renderer& r, Arguments& a) {
                    std::string out = formatString(s, a, r.options_.limits.maxOutputBytes);
                    return Value(std::move(out));
                });
            if (name == "join")
                return m([s](Renderer& r, Arguments& a) {
                    std::string out;
                    const ValueList items = toList(a.get(0, "iterable"));
                    for (std::size_t i = 0; i < items.size(); ++i) {
                        out += (i ? s : "") + items[i].str();
                        r.checkSize(r.dummyNode_, out.size());
                    }
                    return Value(out);
                });
            if (name == "isdigit" || name == "isalpha" || name == "isspace" || name == "isalnum")
                return m([s, name](Renderer&, Arguments&) {
                    if (s.empty()) return Value(false);
                    for (unsigned char c : s) {
                        const bool ok = name == "isdigit" ? std::isdigit(c) : name == "isalpha" ? std::isalpha(c)
                                                          : name == "isspace" ? std::isspace(c) : std::isalnum(c);
                        if (!ok) return Value(false);
                    }
                    return Value(true);
                });
            return Value();
        }
        if (obj.isDict() && !obj.dictionary().isNamespace) {
            const Value d = obj;
            if (name == "get")
                return Value::function(name, [d](Renderer&, Arguments& a) {
                    if (const Value* v = d.dictionary().find(a.get(0, "key").str())) return *v;
                    return a.get(1, "default", Value::none());
                });
            if (name == "items")
                return Value::function(name, [d](Renderer&, Arguments&) {
                    ValueList out;
                    for (const auto& [k, v] : d.dictionary().items) out.emplace_back(ValueList{Value(k), *v});
                    return Value(std::move(out));
                });
            if (name == "keys")
                return Value::function(name, [d](Renderer&, Arguments&) { return Value(toList(d)); });
            if (name == "values")
                return Value::function(name, [d](Renderer&, Arguments&) {
                    ValueList out;
                    for (const auto& [k, v] : d.dictionary().items) out.push_back(*v);
                    return Value(std::move(out));
                });
            return Value();
        }
        if (obj.isList()) {
            const Value l = obj;
            if (name == "index")
                return Value::function(name, [l](Renderer&, Arguments& a) {
                    const Value x = a.get(0, "value");
                    for (std::size_t i = 0; i < l.list().size(); ++i)
                        if (l.list()[i].equals(x)) return Value(static_cast<std::int64_t>(i));
                    throw std::invalid_argument(x.repr() + " is not in list");
                });
            if (name == "count")
                return Value::function(name, [l](Renderer&, Arguments& a) {
                    std::int64_t c = 0;
                    for (const auto& v : l.list()) c += v.equals(a.get(0, "value"));
                    return Value(c);
                });
            if (name == "append" || name == "extend" || name == "pop" || name == "insert" || name == "remove")
                return Value::function(name, [name](Renderer&, Arguments&) -> Value {
                    throw std::invalid_argument("lists cannot be changed in a chat template (list." + name + ")");
                });
        }
        return Value();
    }

    // ---- filters ----
    Value applyFilterChain(const Node& chain, const Value& input) {
        if (!chain.a) return applyFilter(chain, input);
        return applyFilter(chain, applyFilterChain(*chain.a, input));
    }

    Arguments filterArguments(const Node& n) {
        Arguments args;
        for (const auto& c : n.children) args.positional.push_back(eval(*c));
        for (std::size_t i = 0; i < n.names.size(); ++i) args.keywords.emplace_back(n.names[i], eval(*n.extra[i]));
        return args;
    }

    Value applyFilter(const Node& n, const Value& input) {
        Arguments args = filterArguments(n);
        try {
            return filter(n, n.text, input, args);
        } catch (const TemplateError&) {
            throw;
        } catch (const std::exception& e) {
            fail(n, e.what());
        }
    }

    Value attributeOf(const Node& n, const Value& v, const std::string& path) {
        Value cur = v;
        std::size_t start = 0;
        while (true) {
            const std::size_t dot = path.find('.', start);
            const std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
            if (cur.isUndefined()) return cur;
            if (cur.isList() && !part.empty() && std::isdigit(static_cast<unsigned char>(part[0])))
                cur = getItem(n, cur, Value(static_cast<std::int64_t>(std::stoll(part))));
            else
                cur = cur.isDict() ? (cur.dictionary().find(part) ? *cur.dictionary().find(part) : Value()) : getAttribute(n, cur, part);
            if (dot == std::string::npos) return cur;
            start = dot + 1;
        }
    }

    Value filter(const Node& n, const std::string& name, const Value& v, Arguments& a) {
        if (name == "safe") return v.isString() ? Value::markup(v.string()) : v;
        if (name == "e" || name == "escape" || name == "forceescape")
            return Value::markup(v.isMarkup() && name != "forceescape" ? v.string() : htmlEscape(v.str()));
        if (name == "trim") return Value(strip(v.str(), a.get(0, "chars"), true, true));
        if (name == "upper") return Value(upper(v.str()));
        if (name == "lower") return Value(lower(v.str()));
        if (name == "title") return Value(titleCase(v.str()));
        if (name == "capitalize") {
            std::string s = lower(v.str());
            if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
            return Value(s);
        }
        if (name == "length" || name == "count") return Value(static_cast<std::int64_t>(v.length()));
        if (name == "string") return Value(v.str());
        if (name == "list") return Value(toList(v));
        if (name == "first") {
            const ValueList l = toList(v);
            return l.empty() ? Value() : l.front();
        }
        if (name == "last") {
            const ValueList l = toList(v);
            return l.empty() ? Value() : l.back();
        }
        if (name == "reverse") {
            if (v.isString()) {
                ValueList chars = toList(v);
                std::string s;
                for (auto it = chars.rbegin(); it != chars.rend(); ++it) s += it->string();
                return Value(s);
            }
            ValueList l = toList(v);
            std::reverse(l.begin(), l.end());
            return Value(std::move(l));
        }
        if (name == "default" || name == "d") {
            const bool boolean = a.get(1, "boolean", Value(false)).truthy();
            if (v.isUndefined() || (boolean && !v.truthy())) return a.get(0, "default_value", Value(""));
            return v;
        }
        if (name == "join") {
            const std::string sep = a.get(0, "d", Value("")).str();
            const Value attribute = a.get(1, "attribute");
            std::string out;
            const ValueList items = toList(v);
            for (std::size_t i = 0; i < items.size(); ++i) {
                out += (i ? sep : "") + (attribute.isUndefined() ? items[i] : attributeOf(n, items[i], attribute.str())).str();
                checkSize(n, out.size());
            }
            return Value(out);
        }
        if (name == "replace") {
            const Value count = a.get(2, "count", Value::none());
            checkReplaceSize(n, v.str(), a.get(0, "old").str(), a.get(1, "new").str());
            return Value(replaceAll(v.str(), a.get(0, "old").str(), a.get(1, "new").str(), count.isNone() ? -1 : count.integer()));
        }
        if (name == "int") {
            if (v.kind() == Value::Kind::Int) return v;
            if (v.isNumber()) {
                // Python's int() of a float: NaN and infinities raise; others truncate (here within 64 bits).
                const double x = std::trunc(v.number());
                if (std::isnan(x)) fail(n, "cannot convert float NaN to integer");
                if (!(x >= -9223372036854775808.0 && x < 9223372036854775808.0)) fail(n, "the integer does not fit 64 bits");
                return Value(static_cast<std::int64_t>(x));
            }
            try {
                std::size_t used = 0;
                const std::string s = strip(v.str(), Value(), true, true);
                const auto x = std::stoll(s, &used, 10);
                if (used == s.size()) return Value(static_cast<std::int64_t>(x));
            } catch (const std::exception&) {
            }
            return a.get(0, "default", Value(0));
        }
        if (name == "float") {
            if (v.isNumber()) return Value(v.number());
            try {
                std::size_t used = 0;
                const std::string s = strip(v.str(), Value(), true, true);
                const double x = std::stod(s, &used);
                if (used == s.size()) return Value(x);
            } catch (const std::exception&) {
            }
            return a.get(0, "default", Value(0.0));
        }
        if (name == "abs") {
            if (v.kind() != Value::Kind::Int) return Value(std::fabs(v.number()));
            if (v.integer() == std::numeric_limits<std::int64_t>::min()) fail(n, "the integer does not fit 64 bits");
            return Value(static_cast<std::int64_t>(std::llabs(v.integer())));
        }
        if (name == "round") {
            const std::int64_t precision = a.get(0, "precision", Value(0)).integer();
            const std::string method = a.get(1, "method", Value("common")).str();
            const double scale = std::pow(10.0, static_cast<double>(precision));
            double x = v.number() * scale;
            x = method == "ceil" ? std::ceil(x) : method == "floor" ? std::floor(x) : std::round(x);
            return Value(x / scale);
        }
        if (name == "tojson") {
            const Value indent = a.get(1, "indent");  // HF: tojson(x, ensure_ascii, indent, separators, sort_keys)
            const bool sortKeys = a.get(3, "sort_keys", Value(false)).truthy();
            return Value(v.toJson(indent.kind() == Value::Kind::Int ? static_cast<int>(indent.integer()) : -1, 0, sortKeys));
        }
        if (name == "items") {
            if (v.isUndefined()) return Value(ValueList{});
            if (!v.isDict()) throw std::invalid_argument("items filter needs a mapping, not " + v.typeName());
            ValueList out;
            for (const auto& [k, val] : v.dictionary().items) out.emplace_back(ValueList{Value(k), *val});
            return Value(std::move(out));
        }
        if (name == "dictsort") {
            if (!v.isDict()) throw std::invalid_argument("dictsort needs a mapping");
            ValueList out;
            for (const auto& [k, val] : v.dictionary().items) out.emplace_back(ValueList{Value(k), *val});
            std::stable_sort(out.begin(), out.end(), [](const Value& x, const Value& y) {
                return lower(x.list()[0].str()) < lower(y.list()[0].str());
            });
            return Value(std::move(out));
        }
        if (name == "indent") {
            const Value width = a.get(0, "width", Value(4));
            if (!width.isString() && width.integer() > 4096) fail(n, "indent width is too large");
            const std::string pad = width.isString() ? width.string() : std::string(static_cast<std::size_t>(std::max<std::int64_t>(0, width.integer())), ' ');
            const bool first = a.get(1, "first", Value(false)).truthy();
            const bool blank = a.get(2, "blank", Value(false)).truthy();
            std::vector<std::string> lines;
            const std::string s = v.str() + "\n";
            std::size_t start = 0;
            for (std::size_t i = 0; i < s.size(); ++i)
                if (s[i] == '\n' || s[i] == '\r') {
                    lines.push_back(s.substr(start, i - start));
                    if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
                    start = i + 1;
                }
            checkSize(n, s.size() + lines.size() * pad.size());
            std::string out;
            for (std::size_t i = 0; i < lines.size(); ++i) {
                if (i > 0) out += "\n";
                if (i == 0) out += (first ? pad : "") + lines[i];
                else out += (blank || !lines[i].empty() ? pad : "") + lines[i];
            }
            return Value(out);
        }
        if (name == "unique") {
            const bool caseSensitive = a.get(0, "case_sensitive", Value(false)).truthy();
            const Value attribute = a.get(1, "attribute");
            ValueList out, keys;
            for (const auto& item : toList(v)) {
                Value key = attribute.isUndefined() ? item : attributeOf(n, item, attribute.str());
                if (!caseSensitive && key.isString()) key = Value(lower(key.string()));
                bool seen = false;
                for (const auto& k : keys) seen |= k.equals(key);
                if (!seen) {
                    keys.push_back(key);
                    out.push_back(item);
                }
            }
            return Value(std::move(out));
        }
        if (name == "sort") {
            const bool reverse = a.get(0, "reverse", Value(false)).truthy();
            const bool caseSensitive = a.get(1, "case_sensitive", Value(false)).truthy();
            const Value attribute = a.get(2, "attribute");
            ValueList items = toList(v);
            auto key = [&](const Value& x) {
                Value k = attribute.isUndefined() ? x : attributeOf(n, x, attribute.str());
                return (!caseSensitive && k.isString()) ? Value(lower(k.string())) : k;
            };
            std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
                const int c = key(x).compare(key(y));
                return reverse ? c > 0 : c < 0;
            });
            return Value(std::move(items));
        }
        if (name == "min" || name == "max") {
            const ValueList items = toList(v);
            if (items.empty()) return Value();
            Value best = items[0];
            for (const auto& x : items) {
                const int c = x.compare(best);
                if ((name == "min" && c < 0) || (name == "max" && c > 0)) best = x;
            }
            return best;
        }
        if (name == "sum") {
            Value total = a.get(1, "start", Value(0));
            const Value attribute = a.get(0, "attribute");
            for (const auto& x : toList(v)) {
                const Value term = attribute.isUndefined() ? x : attributeOf(n, x, attribute.str());
                total = arithmeticPlus(n, total, term);
            }
            return total;
        }
        if (name == "wordcount") return Value(static_cast<std::int64_t>(splitString(v.str(), Value(), -1).size()));
        if (name == "map") {
            const Value attribute = a.get(99, "attribute");
            ValueList out;
            if (!v.truthy()) return Value::generator({});
            if (!attribute.isUndefined()) {
                const Value dflt = a.get(99, "default");
                for (const auto& x : toList(v)) {
                    Value y = attributeOf(n, x, attribute.str());
                    out.push_back(y.isUndefined() && !dflt.isUndefined() ? dflt : y);
                }
                return Value::generator(std::move(out));
            }
            if (a.positional.empty()) throw std::invalid_argument("map needs a filter name or attribute=");
            const std::string inner = a.positional[0].str();
            Arguments rest;
            rest.positional.assign(a.positional.begin() + 1, a.positional.end());
            rest.keywords = a.keywords;
            for (const auto& x : toList(v)) out.push_back(filter(n, inner, x, rest));
            return Value::generator(std::move(out));
        }
        if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
            const bool byAttribute = name == "selectattr" || name == "rejectattr";
            const bool keep = name == "select" || name == "selectattr";
            if (!v.truthy()) return Value::generator({});
            std::size_t argIndex = 0;
            const std::string attribute = byAttribute ? a.positional.at(argIndex++).str() : std::string();
            const std::string test = argIndex < a.positional.size() ? a.positional[argIndex++].str() : std::string();
            std::vector<Value> testArgs(a.positional.begin() + static_cast<std::ptrdiff_t>(std::min(argIndex, a.positional.size())), a.positional.end());
            ValueList out;
            for (const auto& x : toList(v)) {
                const Value subject = byAttribute ? attributeOf(n, x, attribute) : x;
                const bool passed = test.empty() ? subject.truthy() : runTest(n, test, subject, testArgs);
                if (passed == keep) out.push_back(x);
            }
            return Value::generator(std::move(out));
        }
        if (name == "batch") {
            const std::int64_t size = a.get(0, "linecount").integer();
            if (size <= 0) throw std::invalid_argument("batch size must be positive");
            ValueList out, cur;
            for (const auto& x : toList(v)) {
                cur.push_back(x);
                if (static_cast<std::int64_t>(cur.size()) == size) {
                    out.emplace_back(cur);
                    cur.clear();
                }
            }
            if (!cur.empty()) out.emplace_back(cur);
            return Value(std::move(out));
        }
        if (name == "center") {
            const std::int64_t width = a.get(0, "width", Value(80)).integer();
            checkSize(n, static_cast<std::size_t>(std::max<std::int64_t>(0, std::min<std::int64_t>(width, INT32_MAX))));
            if (width > INT32_MAX) fail(n, "center width is too large");
            std::string s = v.str();
            const auto len = static_cast<std::int64_t>(codePointCount(s));
            if (width <= len) return Value(s);
            const std::int64_t left = (width - len) / 2;
            return Value(std::string(static_cast<std::size_t>(left), ' ') + s + std::string(static_cast<std::size_t>(width - len - left), ' '));
        }
        if (name == "pprint") return Value(v.repr());
        fail(n, "unknown filter '" + name + "'");
    }

    void checkReplaceSize(const Node& at, const std::string& s, const std::string& from, const std::string& to) const {
        if (from.empty() || to.size() <= from.size()) return;
        std::size_t count = 0;
        for (std::size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + from.size())) ++count;
        checkSize(at, s.size() + count * (to.size() - from.size()));
    }

    Value arithmeticPlus(const Node& n, const Value& a, const Value& b) { return arithmetic(n, "+", a, b); }

    // ---- tests ----
    bool applyTest(const Node& n, const Value& v) {
        std::vector<Value> args;
        for (const auto& c : n.children) args.push_back(eval(*c));
        return runTest(n, n.text, v, args);
    }

    bool runTest(const Node& n, const std::string& name, const Value& v, const std::vector<Value>& args) {
        auto arg = [&](std::size_t i) -> const Value& {
            if (i >= args.size()) fail(n, "test '" + name + "' needs an argument");
            return args[i];
        };
        if (name == "defined") return !v.isUndefined();
        if (name == "undefined") return v.isUndefined();
        if (name == "none") return v.isNone();
        if (name == "boolean") return v.kind() == Value::Kind::Bool;
        if (name == "true") return v.kind() == Value::Kind::Bool && v.boolean();
        if (name == "false") return v.kind() == Value::Kind::Bool && !v.boolean();
        if (name == "integer") return v.kind() == Value::Kind::Int;
        if (name == "float") return v.kind() == Value::Kind::Float;
        if (name == "number") return v.isNumber() || v.kind() == Value::Kind::Bool;
        if (name == "string") return v.isString();
        if (name == "mapping") return v.isDict();
        if (name == "iterable") return v.isList() || v.isDict() || v.isString();
        if (name == "sequence") return v.isList() || v.isDict() || v.isString();
        if (name == "callable") return v.isFunction();
        if (name == "equalto" || name == "eq" || name == "==" || name == "sameas") return v.equals(arg(0));
        if (name == "ne" || name == "!=") return !v.equals(arg(0));
        if (name == "lt" || name == "lessthan" || name == "<") return v.compare(arg(0), "<") < 0;
        if (name == "le" || name == "<=") return v.compare(arg(0), "<=") <= 0;
        if (name == "gt" || name == "greaterthan" || name == ">") return v.compare(arg(0), ">") > 0;
        if (name == "ge" || name == ">=") return v.compare(arg(0), ">=") >= 0;
        if (name == "in") return contains(n, arg(0), v);
        if (name == "odd") return v.kind() == Value::Kind::Int && (v.integer() % 2) != 0;
        if (name == "even") return v.kind() == Value::Kind::Int && (v.integer() % 2) == 0;
        if (name == "divisibleby") return arg(0).integer() != 0 && v.integer() % arg(0).integer() == 0;
        if (name == "lower") return v.isString() && lower(v.string()) == v.string();
        if (name == "upper") return v.isString() && upper(v.string()) == v.string();
        fail(n, "unknown test '" + name + "'");
    }

    // ---- globals ----
    void installGlobals() {
        auto& g = scopes_.back();
        g["range"] = Value::function("range", [](Renderer& r, Arguments& a) {
            std::int64_t start = 0, stop = 0, stepBy = 1;
            if (a.positional.size() == 1) stop = a.positional[0].integer();
            else if (a.positional.size() >= 2) {
                start = a.positional[0].integer();
                stop = a.positional[1].integer();
                if (a.positional.size() >= 3) stepBy = a.positional[2].integer();
            }
            if (stepBy == 0) throw std::invalid_argument("range() step must not be zero");
            ValueList out;
            for (std::int64_t i = start; stepBy > 0 ? i < stop : i > stop;) {
                if (static_cast<std::int64_t>(out.size()) >= r.options_.limits.maxSteps || out.size() >= kMaxListElements)
                    throw std::invalid_argument("range() is too long");
                out.emplace_back(i);
                if (__builtin_add_overflow(i, stepBy, &i)) break;  // past the largest integer: past stop too
            }
            return Value(std::move(out));
        });
        g["namespace"] = Value::function("namespace", [](Renderer&, Arguments& a) {
            Value ns = Value::dict();
            ns.dictionary().isNamespace = true;
            for (const auto& p : a.positional)
                if (p.isDict())
                    for (const auto& [k, v] : p.dictionary().items) ns.dictionary().set(k, *v);
            for (const auto& [k, v] : a.keywords) ns.dictionary().set(k, v);
            return ns;
        });
        g["dict"] = Value::function("dict", [](Renderer&, Arguments& a) {
            Value d = Value::dict();
            for (const auto& [k, v] : a.keywords) d.dictionary().set(k, v);
            return d;
        });
        g["raise_exception"] = Value::function("raise_exception", [](Renderer&, Arguments& a) -> Value {
            throw TemplateRaised(a.get(0, "message").str());
        });
        g["strftime_now"] = Value::function("strftime_now", [](Renderer& r, Arguments& a) {
            const std::string format = a.get(0, "format").str();
            if (r.options_.strftimeNow) return Value(r.options_.strftimeNow(format));
            char buffer[256];
            const std::time_t now = std::time(nullptr);
            std::tm tm{};
            localtime_r(&now, &tm);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"  // the template chooses the format
            const std::size_t n = std::strftime(buffer, sizeof buffer, format.c_str(), &tm);
#pragma GCC diagnostic pop
            return Value(std::string(buffer, n));
        });
    }

    const RenderOptions& options_;
    int evalDepth_ = 0;
    Node dummyNode_{};  // position for errors raised inside bound methods
    std::vector<std::unordered_map<std::string, Value>> scopes_;
    std::string out_;
    std::int64_t steps_ = 0;
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
    std::size_t callDepth_ = 0;
};

Template Template::parse(std::string_view source, const ParseOptions& options) {
    Template t;
    t.root_ = detail::parseTemplate(source, options.trimBlocks, options.lstripBlocks);
    return t;
}

std::string Template::render(const nlohmann::ordered_json& context, const RenderOptions& options) const {
    Renderer r(options);
    return r.run(*root_, context);
}

}  // namespace lumen::inference::jinja
