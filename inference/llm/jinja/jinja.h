#pragma once
// A sandboxed Jinja2 interpreter for chat templates: the subset real models' templates use,
// rendered the way Hugging Face's apply_chat_template does (Jinja2 with trim_blocks and
// lstrip_blocks, the loopcontrols extension, Python value semantics and printing, and a tojson
// that does not escape HTML). No file or environment access; output size, loop steps and
// call depth are bounded; errors carry the template's line and column.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>

namespace lumen::inference::jinja {

class TemplateError : public std::runtime_error {
public:
    TemplateError(const std::string& message, int line = 0, int column = 0);
    int line() const { return line_; }
    int column() const { return column_; }
    // The message without the position prefix.
    const std::string& reason() const { return reason_; }

private:
    std::string reason_;
    int line_, column_;
};

struct ParseOptions {
    bool trimBlocks = true;    // drop the first newline after a block tag
    bool lstripBlocks = true;  // strip spaces and tabs before a block tag on its line
};

struct RenderLimits {
    std::size_t maxOutputBytes = 4u << 20;
    std::int64_t maxSteps = 10'000'000;  // loop iterations + calls + output writes
    int maxCallDepth = 100;              // macro recursion
    double maxSeconds = 5.0;             // wall time (real templates render in milliseconds)
};

struct RenderOptions {
    RenderLimits limits;
    // Set from another thread to stop a render (TemplateError "the render was stopped"); checked
    // with the time budget, every few thousand steps.
    const std::atomic<bool>* cancel = nullptr;
    // strftime_now(format): the current local time formatted; tests fix it.
    std::function<std::string(const std::string& format)> strftimeNow;
};

namespace detail {
struct Node;
}

class Template {
public:
    // Throws TemplateError (with position) for syntax errors.
    static Template parse(std::string_view source, const ParseOptions& options = {});
    // Renders with the variables in `context` (a JSON object); throws TemplateError.
    // raise_exception(msg) in a template throws TemplateError with msg as its reason.
    std::string render(const nlohmann::ordered_json& context, const RenderOptions& options = {}) const;

private:
    std::shared_ptr<const detail::Node> root_;
};

}  // namespace lumen::inference::jinja
