#pragma once
// The parsed form of a template: one node type for expressions and statements.

#include <memory>
#include <string>
#include <vector>

#include "inference/llm/jinja/value.h"

namespace lumen::inference::jinja::detail {

enum class NodeKind {
    // statements
    Sequence, Text, Output, If, For, Set, SetBlock, Macro, FilterBlock, Break, Continue,
    // expressions
    Literal, Name, ListLit, DictLit, Attr, Item, Slice, Call, Filter, Test,
    Neg, Pos, Not, And, Or, Binary, Compare, InOp, NotIn, Concat, Cond,
};

struct Node;
using NodePtr = std::shared_ptr<Node>;

struct Node {
    NodeKind kind;
    int line = 0, column = 0;
    std::string text;                // Text content, Name, Attr name, operator, filter/test name
    Value value;                     // Literal
    std::vector<NodePtr> children;   // operands, list items, call arguments, body statements
    std::vector<std::string> names;  // For targets, Set targets, macro parameters, keyword-argument names
    std::vector<NodePtr> extra;      // If: conditions; For: else body; Macro: defaults; Call/Filter/Test: keyword values
    NodePtr a, b, c;                 // operands (object, index, slice parts, condition, iterable, filter)
    bool negated = false;            // Test: "is not"
    bool hasElse = false;

    Node() = default;
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;
    // Takes its subtree apart without recursing: a chain of 20,000 ".a" is 20,000 nodes deep.
    ~Node();
};

NodePtr parseTemplate(std::string_view source, bool trimBlocks, bool lstripBlocks);

}  // namespace lumen::inference::jinja::detail
