#pragma once
// Jinja values with Python semantics: lists and dicts are shared by reference, dicts keep
// insertion order, printing follows Python's str()/repr().

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace lumen::inference::jinja {

class Value;
using ValueList = std::vector<Value>;

struct ValueDict {
    std::vector<std::pair<std::string, std::shared_ptr<Value>>> items;  // insertion order
    std::map<std::string, std::size_t, std::less<>> index;
    bool isNamespace = false;  // namespace(): attributes may be assigned

    Value* find(std::string_view key);
    void set(const std::string& key, Value value);
};

struct Arguments;
class Renderer;
using NativeFunction = std::function<Value(Renderer&, Arguments&)>;

class Value {
public:
    enum class Kind { Undefined, None, Bool, Int, Float, String, List, Dict, Function };

    Value() = default;  // undefined
    static Value none();
    Value(bool b);
    Value(std::int64_t i);
    Value(int i) : Value(static_cast<std::int64_t>(i)) {}
    Value(double f);
    Value(std::string s);
    Value(const char* s) : Value(std::string(s)) {}
    Value(ValueList list);
    static Value dict();
    // What Python's map()/filter-style filters return: iterable once, no len(), no indexing,
    // always true, not JSON-serializable. `|list` turns it into a list.
    static Value generator(ValueList items);
    bool isGenerator() const { return generator_; }
    // A string marked safe (markupsafe.Markup): adding a plain string to it escapes that string.
    static Value markup(std::string s);
    bool isMarkup() const { return markup_; }
    static Value function(std::string name, NativeFunction f);
    static Value fromJson(const nlohmann::ordered_json& j);
    // Whether v holds lists or dicts more than `levels` deep (walks at most that deep).
    static bool nestsDeeperThan(const Value& v, int levels);
    // Whether v is, or holds within `levels` levels, the dict `target` (a namespace that would hold itself).
    static bool holds(const Value& v, const ValueDict* target, int levels);
    // The same for JSON (fromJson recurses once per level).
    static bool jsonNestsDeeperThan(const nlohmann::ordered_json& j, int levels);

    Kind kind() const { return kind_; }
    bool isUndefined() const { return kind_ == Kind::Undefined; }
    bool isNone() const { return kind_ == Kind::None; }
    bool isString() const { return kind_ == Kind::String; }
    bool isNumber() const { return kind_ == Kind::Int || kind_ == Kind::Float; }
    bool isList() const { return kind_ == Kind::List; }
    bool isDict() const { return kind_ == Kind::Dict; }
    bool isFunction() const { return kind_ == Kind::Function; }

    bool boolean() const { return b_; }
    std::int64_t integer() const { return i_; }
    double number() const { return kind_ == Kind::Int ? static_cast<double>(i_) : (kind_ == Kind::Bool ? (b_ ? 1.0 : 0.0) : f_); }
    const std::string& string() const { return *s_; }
    ValueList& list() const { return *list_; }
    ValueDict& dictionary() const { return *dict_; }
    const NativeFunction& callable() const { return *fn_; }
    const std::string& functionName() const { return *s_; }

    bool truthy() const;
    std::string str() const;   // Python str()
    std::string repr(int depth = 0) const;  // Python repr(); depth: how deep inside another value (bounded)
    // tojson as Hugging Face defines it (json.dumps, ensure_ascii=False).
    std::string toJson(int indent = -1, int depth = 0, bool sortKeys = false) const;
    std::string typeName() const;

    bool equals(const Value& other, int depth = 0) const;
    // -1, 0, 1; throws std::invalid_argument when the kinds cannot be ordered.
    int compare(const Value& other, std::string_view op = "<") const;  // op: the operator an error names
    std::size_t length() const;  // strings count code points

private:
    Kind kind_ = Kind::Undefined;
    bool generator_ = false;
    bool markup_ = false;
    bool b_ = false;
    std::int64_t i_ = 0;
    double f_ = 0.0;
    std::shared_ptr<std::string> s_;
    std::shared_ptr<ValueList> list_;
    std::shared_ptr<ValueDict> dict_;
    std::shared_ptr<NativeFunction> fn_;
};

// markupsafe.escape: & < > " ' as HTML entities.
std::string htmlEscape(std::string_view s);
// Python's repr() of a float: the shortest digits that read back to the same double.
std::string formatFloat(double f);
// The number of code points in UTF-8 text.
std::size_t codePointCount(std::string_view s);

}  // namespace lumen::inference::jinja
