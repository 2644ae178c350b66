#pragma once
// Turning a conversation into the exact prompt text a model was trained on: the model's own
// Jinja template from its GGUF file (tokenizer.chat_template), or a built-in one by name when
// the file has none or the user overrides it.
//
// The context a template sees: messages (role + content, where content is a string or a list
// of parts {"type": "text", "text": ...} / {"type": "image"}), add_generation_prompt,
// bos_token, eos_token, date_string, plus anything the caller adds (tools, ...).

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "inference/llm/jinja/jinja.h"

namespace lumen::inference {

class GgufFile;
struct Vocabulary;

class ChatTemplate {
public:
    // Throws jinja::TemplateError for a template that does not parse.
    static ChatTemplate fromSource(std::string source, std::string name);
    // The file's tokenizer.chat_template, or nullopt when it has none.
    static std::optional<ChatTemplate> fromGguf(const GgufFile& file);
    // chatml, llama2, llama3, mistral, gemma, phi3, zephyr, llava, completion; std::invalid_argument
    // (listing the names) for anything else.
    static ChatTemplate builtin(std::string_view name);
    static std::vector<std::string_view> builtinNames();

    const std::string& name() const { return name_; }
    const std::string& source() const { return source_; }

    // Renders with `context` exactly as given (lumen-cli template). Throws jinja::TemplateError.
    std::string render(const nlohmann::ordered_json& context, const jinja::RenderOptions& options = {}) const;

    // Renders a conversation: fills add_generation_prompt, bos_token, eos_token (from the
    // vocabulary's BOS/EOS when given) and date_string (today) unless `extra` sets them.
    std::string apply(const nlohmann::ordered_json& messages, bool addGenerationPrompt, const Vocabulary* vocabulary = nullptr,
                      const nlohmann::ordered_json& extra = nlohmann::ordered_json::object(),
                      const jinja::RenderOptions& options = {}) const;

private:
    std::string name_;
    std::string source_;
    jinja::Template template_;
};

}  // namespace lumen::inference
