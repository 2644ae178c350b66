#pragma once
// Prompt templates in a conversation: a template's system prompt and few-shot examples go before
// the chat's messages (the examples as earlier user/assistant turns), and its body, with
// {{variables}} filled in ({{input}} is what the user typed), becomes the user's message. The
// renderer turns a conversation into the exact text and tokens the model sees; the template
// editor's preview and the chat engine both use it.

#include <QStringList>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "inference/llm/chat_template.h"
#include "inference/llm/tokenizer.h"

namespace lumen::app {

struct FewShotTurn {
    std::string input;
    std::string output;
    std::optional<std::string> image;  // SHA-256 of an image shown with the input
};

struct TemplateSpec {
    std::string systemPrompt;
    std::string body;
    std::vector<FewShotTurn> examples;
};

// The {{variables}} of a text in order of first appearance ("{{ name }}" allowed).
QStringList templateVariables(const std::string& text);
// Replaces each {{name}} with values[name]; unknown names stay as they are.
std::string fillVariables(const std::string& text, const std::map<std::string, std::string>& values);

// system prompt, examples as turns (marked "keep": a chat fitted to the context keeps them), then
// `history` ([{role, content}...], the newest last).
nlohmann::ordered_json buildConversation(const std::optional<TemplateSpec>& spec, const nlohmann::ordered_json& history);

// A model's chat template with its tokenizer: immutable once made, so the UI may use it while
// the engine generates.
class PromptRenderer {
public:
    PromptRenderer(inference::ChatTemplate chatTemplate, std::shared_ptr<const inference::Tokenizer> tokenizer)
        : template_(std::move(chatTemplate)), tokenizer_(std::move(tokenizer)) {}
    // The text the model sees, with the generation prompt (the assistant's turn) appended.
    // Messages may carry "images": [sha256...]: each becomes an image marker before their text;
    // and "reasoning_content", a reasoning reply's thinking, which the template keeps or drops.
    // `extras` are more template variables (enable_thinking).
    // `cancel`, set from another thread, stops a template that runs long (TemplateError).
    std::string render(const nlohmann::ordered_json& conversation,
                       const nlohmann::ordered_json& extras = nlohmann::ordered_json::object(),
                       const std::atomic<bool>* cancel = nullptr) const;
    // Its tokens (BOS added when the template does not write it).
    std::vector<inference::TokenId> tokenize(const std::string& prompt) const;
    const inference::ChatTemplate& chatTemplate() const { return template_; }
    const inference::Tokenizer& tokenizer() const { return *tokenizer_; }

private:
    inference::ChatTemplate template_;
    std::shared_ptr<const inference::Tokenizer> tokenizer_;
};

}  // namespace lumen::app
