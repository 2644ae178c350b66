#include "inference/llm/jinja/value.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace lumen::inference::jinja {

Value* ValueDict::find(std::string_view key) {
    const auto it = index.find(key);
    return it == index.end() ? nullptr : items[it->second].second.get();
}

void ValueDict::set(const std::string& key, Value value) {
    if (Value* v = find(key)) {
        *v = std::move(value);
        return;
    }
    index.emplace(key, items.size());
    items.emplace_back(key, std::make_shared<Value>(std::move(value)));
}

Value Value::none() {
    Value v;
    v.kind_ = Kind::None;
    return v;
}
Value::Value(bool b) : kind_(Kind::Bool), b_(b) {}
Value::Value(std::int64_t i) : kind_(Kind::Int), i_(i) {}
Value::Value(double f) : kind_(Kind::Float), f_(f) {}
Value::Value(std::string s) : kind_(Kind::String), s_(std::make_shared<std::string>(std::move(s))) {}
Value::Value(ValueList list) : kind_(Kind::List), list_(std::make_shared<ValueList>(std::move(list))) {}

Value Value::dict() {
    Value v;
    v.kind_ = Kind::Dict;
    v.dict_ = std::make_shared<ValueDict>();
    return v;
}

Value Value::generator(ValueList items) {
    Value v(std::move(items));
    v.generator_ = true;
    return v;
}

Value Value::markup(std::string s) {
    Value v(std::move(s));
    v.markup_ = true;
    return v;
}

std::string htmlEscape(std::string_view s) {
    std::string out;
    for (char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&#34;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return out;
}

Value Value::function(std::string name, NativeFunction f) {
    Value v;
    v.kind_ = Kind::Function;
    v.s_ = std::make_shared<std::string>(std::move(name));
    v.fn_ = std::make_shared<NativeFunction>(std::move(f));
    return v;
}

bool Value::nestsDeeperThan(const Value& v, int levels) {
    if (v.kind_ == Kind::List && !v.generator_) {
        if (levels <= 0) return true;
        for (const Value& item : *v.list_)
            if (nestsDeeperThan(item, levels - 1)) return true;
    } else if (v.kind_ == Kind::Dict) {
        if (levels <= 0) return true;
        for (const auto& item : v.dict_->items)
            if (nestsDeeperThan(*item.second, levels - 1)) return true;
    }
    return false;
}

bool Value::holds(const Value& v, const ValueDict* target, int levels) {
    if (levels < 0) return false;
    if (v.kind_ == Kind::Dict) {
        if (v.dict_.get() == target) return true;
        for (const auto& item : v.dict_->items)
            if (holds(*item.second, target, levels - 1)) return true;
    } else if (v.kind_ == Kind::List && !v.generator_) {
        for (const Value& item : *v.list_)
            if (holds(item, target, levels - 1)) return true;
    }
    return false;
}

bool Value::jsonNestsDeeperThan(const nlohmann::ordered_json& j, int levels) {
    if (!j.is_structured()) return false;
    if (levels <= 0) return true;
    for (const auto& item : j)
        if (jsonNestsDeeperThan(item, levels - 1)) return true;
    return false;
}

Value Value::fromJson(const nlohmann::ordered_json& j) {
    switch (j.type()) {
        case nlohmann::ordered_json::value_t::null: return none();
        case nlohmann::ordered_json::value_t::boolean: return Value(j.get<bool>());
        case nlohmann::ordered_json::value_t::number_integer: return Value(j.get<std::int64_t>());
        case nlohmann::ordered_json::value_t::number_unsigned: {
            const auto u = j.get<std::uint64_t>();
            if (u > static_cast<std::uint64_t>(INT64_MAX)) return Value(static_cast<double>(u));
            return Value(static_cast<std::int64_t>(u));
        }
        case nlohmann::ordered_json::value_t::number_float: return Value(j.get<double>());
        case nlohmann::ordered_json::value_t::string: return Value(j.get<std::string>());
        case nlohmann::ordered_json::value_t::array: {
            ValueList list;
            for (const auto& item : j) list.push_back(fromJson(item));
            return Value(std::move(list));
        }
        case nlohmann::ordered_json::value_t::object: {
            Value d = dict();
            for (const auto& [k, v] : j.items()) d.dictionary().set(k, fromJson(v));
            return d;
        }
        default: return Value();
    }
}

bool Value::truthy() const {
    switch (kind_) {
        case Kind::Undefined:
        case Kind::None: return false;
        case Kind::Bool: return b_;
        case Kind::Int: return i_ != 0;
        case Kind::Float: return f_ != 0.0;
        case Kind::String: return !s_->empty();
        case Kind::List: return generator_ || !list_->empty();
        case Kind::Dict: return !dict_->items.empty();
        case Kind::Function: return true;
    }
    return false;
}

std::string formatFloat(double f) {
    if (std::isnan(f)) return "nan";
    if (std::isinf(f)) return f > 0 ? "inf" : "-inf";
    char buffer[40];
    int precision = 1;
    for (; precision <= 17; ++precision) {
        std::snprintf(buffer, sizeof buffer, "%.*e", precision - 1, f);
        if (std::strtod(buffer, nullptr) == f) break;
    }
    // buffer holds d.ddde±XX with `precision` significant digits; lay it out as Python's repr.
    std::string s(buffer);
    const bool negative = s[0] == '-';
    if (negative) s.erase(0, 1);
    const std::size_t e = s.find('e');
    const int exponent = std::stoi(s.substr(e + 1));
    std::string digits = s.substr(0, e);
    digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
    while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
    std::string out;
    if (exponent < -4 || exponent >= 16) {
        out = digits.substr(0, 1);
        if (digits.size() > 1) out += "." + digits.substr(1);
        char exp[16];
        std::snprintf(exp, sizeof exp, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
        out += exp;
    } else if (exponent < 0) {
        out = "0." + std::string(static_cast<std::size_t>(-exponent - 1), '0') + digits;
    } else {
        const auto intDigits = static_cast<std::size_t>(exponent + 1);
        if (digits.size() <= intDigits) out = digits + std::string(intDigits - digits.size(), '0') + ".0";
        else out = digits.substr(0, intDigits) + "." + digits.substr(intDigits);
    }
    return (negative ? "-" : "") + out;
}

std::size_t codePointCount(std::string_view s) {
    std::size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
}

namespace {

std::string reprString(const std::string& s) {
    // Python picks single quotes unless the text has a single quote and no double quote.
    const bool useDouble = s.find('\'') != std::string::npos && s.find('"') == std::string::npos;
    const char q = useDouble ? '"' : '\'';
    std::string out(1, q);
    for (unsigned char c : s) {
        switch (c) {
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c == static_cast<unsigned char>(q)) {
                    out += '\\';
                    out += static_cast<char>(c);
                } else if (c < 0x20 || c == 0x7F) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\x%02x", c);
                    out += buf;
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    return out + q;
}

void jsonString(std::string& out, const std::string& s) {
    out += '"';
    for (unsigned char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                if (c < 0x20 || c == 0x7F) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    out += '"';
}

// Printing, tojson and comparing recurse into lists and dicts: a namespace that holds a list that
// holds it is a cycle, so the walks stop at this depth with an error.
constexpr int kMaxWalkDepth = 1000;

void checkWalkDepth(int depth) {
    if (depth > kMaxWalkDepth) throw std::invalid_argument("a value nests too deeply (or holds itself) to be printed or compared");
}

}  // namespace

std::string Value::str() const {
    switch (kind_) {
        case Kind::Undefined: return "";
        case Kind::String: return *s_;
        default: return repr();
    }
}

std::string Value::repr(int depth) const {
    checkWalkDepth(depth);
    switch (kind_) {
        case Kind::Undefined: return "";
        case Kind::None: return "None";
        case Kind::Bool: return b_ ? "True" : "False";
        case Kind::Int: return std::to_string(i_);
        case Kind::Float: return formatFloat(f_);
        case Kind::String: return reprString(*s_);
        case Kind::List: {
            if (generator_) return "<generator object>";
            std::string out = "[";
            for (std::size_t i = 0; i < list_->size(); ++i) out += (i ? ", " : "") + (*list_)[i].repr(depth + 1);
            return out + "]";
        }
        case Kind::Dict: {
            if (dict_->isNamespace) return "<Namespace>";
            std::string out = "{";
            for (std::size_t i = 0; i < dict_->items.size(); ++i)
                out += (i ? ", " : "") + reprString(dict_->items[i].first) + ": " + dict_->items[i].second->repr(depth + 1);
            return out + "}";
        }
        case Kind::Function: return "<function " + *s_ + ">";
    }
    return "";
}

std::string Value::toJson(int indent, int depth, bool sortKeys) const {
    checkWalkDepth(depth);
    const std::string newline = indent >= 0 ? "\n" + std::string(static_cast<std::size_t>(indent * (depth + 1)), ' ') : "";
    const std::string closing = indent >= 0 ? "\n" + std::string(static_cast<std::size_t>(indent * depth), ' ') : "";
    const std::string itemSep = indent >= 0 ? "," : ", ";
    switch (kind_) {
        // (json.dumps, which Hugging Face's tojson is, fails on Jinja2's Undefined)
        case Kind::Undefined: throw std::invalid_argument("Object of type Undefined is not JSON serializable");
        case Kind::None: return "null";
        case Kind::Bool: return b_ ? "true" : "false";
        case Kind::Int: return std::to_string(i_);
        case Kind::Float:
            if (std::isnan(f_)) return "NaN";
            if (std::isinf(f_)) return f_ > 0 ? "Infinity" : "-Infinity";
            return formatFloat(f_);
        case Kind::String: {
            std::string out;
            jsonString(out, *s_);
            return out;
        }
        case Kind::List: {
            if (generator_) throw std::invalid_argument("Object of type generator is not JSON serializable");
            if (list_->empty()) return "[]";
            std::string out = "[";
            for (std::size_t i = 0; i < list_->size(); ++i)
                out += (i ? itemSep : "") + newline + (*list_)[i].toJson(indent, depth + 1, sortKeys);
            return out + closing + "]";
        }
        case Kind::Dict: {
            if (dict_->items.empty()) return "{}";
            std::vector<std::size_t> order(dict_->items.size());
            for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
            if (sortKeys)
                std::sort(order.begin(), order.end(), [&](auto a, auto b) { return dict_->items[a].first < dict_->items[b].first; });
            std::string out = "{";
            bool first = true;
            for (std::size_t i : order) {
                out += (first ? "" : itemSep) + newline;
                first = false;
                jsonString(out, dict_->items[i].first);
                out += ": " + dict_->items[i].second->toJson(indent, depth + 1, sortKeys);
            }
            return out + closing + "}";
        }
        case Kind::Function: throw std::invalid_argument("Object of type function is not JSON serializable");
    }
    return "null";
}

std::string Value::typeName() const {
    switch (kind_) {
        case Kind::Undefined: return "undefined";
        case Kind::None: return "NoneType";
        case Kind::Bool: return "bool";
        case Kind::Int: return "int";
        case Kind::Float: return "float";
        case Kind::String: return "str";
        case Kind::List: return generator_ ? "generator" : "list";
        case Kind::Dict: return dict_->isNamespace ? "Namespace" : "dict";
        case Kind::Function: return "function";
    }
    return "?";
}

bool Value::equals(const Value& o, int depth) const {
    checkWalkDepth(depth);
    const bool numeric = (kind_ == Kind::Int || kind_ == Kind::Float || kind_ == Kind::Bool);
    const bool otherNumeric = (o.kind_ == Kind::Int || o.kind_ == Kind::Float || o.kind_ == Kind::Bool);
    if (numeric && otherNumeric) {
        if (kind_ == Kind::Int && o.kind_ == Kind::Int) return i_ == o.i_;
        return number() == o.number();
    }
    if (kind_ != o.kind_) return false;
    switch (kind_) {
        case Kind::Undefined:
        case Kind::None: return true;
        case Kind::String: return *s_ == *o.s_;
        case Kind::List: {
            if (list_->size() != o.list_->size()) return false;
            for (std::size_t i = 0; i < list_->size(); ++i)
                if (!(*list_)[i].equals((*o.list_)[i], depth + 1)) return false;
            return true;
        }
        case Kind::Dict: {
            if (dict_ == o.dict_) return true;
            if (dict_->items.size() != o.dict_->items.size()) return false;
            for (const auto& [k, v] : dict_->items) {
                const Value* other = o.dict_->find(k);
                if (!other || !v->equals(*other, depth + 1)) return false;
            }
            return true;
        }
        case Kind::Function: return fn_ == o.fn_;
        default: return false;
    }
}

int Value::compare(const Value& o, std::string_view op) const {
    const auto isNum = [](Kind k) { return k == Kind::Int || k == Kind::Float || k == Kind::Bool; };
    if (isNum(kind_) && isNum(o.kind_)) {
        if (kind_ == Kind::Int && o.kind_ == Kind::Int) return i_ < o.i_ ? -1 : (i_ > o.i_ ? 1 : 0);
        const double a = number(), b = o.number();
        return a < b ? -1 : (a > b ? 1 : 0);
    }
    if (kind_ == Kind::String && o.kind_ == Kind::String) return s_->compare(*o.s_) < 0 ? -1 : (*s_ == *o.s_ ? 0 : 1);
    if (kind_ == Kind::List && o.kind_ == Kind::List) {
        for (std::size_t i = 0; i < list_->size() && i < o.list_->size(); ++i) {
            const int c = (*list_)[i].compare((*o.list_)[i], op);
            if (c != 0) return c;
        }
        return list_->size() < o.list_->size() ? -1 : (list_->size() > o.list_->size() ? 1 : 0);
    }
    throw std::invalid_argument("'" + std::string(op) + "' not supported between instances of '" + typeName() + "' and '" + o.typeName() + "'");
}

std::size_t Value::length() const {
    switch (kind_) {
        case Kind::String: return codePointCount(*s_);
        case Kind::List:
            if (generator_) throw std::invalid_argument("object of type 'generator' has no len()");
            return list_->size();
        case Kind::Dict: return dict_->items.size();
        case Kind::Undefined: return 0;
        default: throw std::invalid_argument("object of type '" + typeName() + "' has no len()");
    }
}

}  // namespace lumen::inference::jinja
