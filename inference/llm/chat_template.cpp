#include "inference/llm/chat_template.h"

#include <ctime>
#include <stdexcept>

#include "inference/formats/gguf.h"
#include "inference/llm/vocabulary.h"

namespace lumen::inference {
namespace {

// Shared by the built-ins: content as a string, or its parts with an image marker.
constexpr std::string_view kContentMacro =
    "{%- macro content(c) -%}"
    "{%- if c is string -%}{{ c }}"
    "{%- elif c is iterable -%}{%- for p in c -%}"
    "{%- if p.type == 'text' -%}{{ p.text }}{%- elif p.type == 'image' -%}{{ image_marker | default('<image>') }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{%- endmacro -%}";

struct Builtin {
    std::string_view name;
    std::string_view body;
};

constexpr Builtin kBuiltins[] = {
    {"chatml",
     "{%- for message in messages -%}"
     "{{ '<|im_start|>' + message.role + '\\n' + content(message.content) + '<|im_end|>\\n' }}"
     "{%- endfor -%}"
     "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"},
    {"llama2",
     "{%- if messages and messages[0].role == 'system' -%}"
     "{%- set system = '<<SYS>>\\n' + content(messages[0].content) | trim + '\\n<</SYS>>\\n\\n' -%}{%- set turns = messages[1:] -%}"
     "{%- else -%}{%- set system = '' -%}{%- set turns = messages -%}{%- endif -%}"
     "{%- for message in turns -%}"
     "{%- if (message.role == 'user') != (loop.index0 % 2 == 0) -%}"
     "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{%- endif -%}"
     "{%- set text = (system if loop.first else '') + content(message.content) -%}"
     "{%- if message.role == 'user' -%}{{ bos_token + '[INST] ' + text | trim + ' [/INST]' }}"
     "{%- else -%}{{ ' ' + text | trim + ' ' + eos_token }}{%- endif -%}"
     "{%- endfor -%}"},
    {"llama3",
     "{{ bos_token }}"
     "{%- for message in messages -%}"
     "{{ '<|start_header_id|>' + message.role + '<|end_header_id|>\\n\\n' + content(message.content) | trim + '<|eot_id|>' }}"
     "{%- endfor -%}"
     "{%- if add_generation_prompt -%}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif -%}"},
    {"mistral",
     "{{ bos_token }}"
     "{%- set ns = namespace(system='') -%}"
     "{%- for message in messages -%}"
     "{%- if message.role == 'system' -%}{%- set ns.system = content(message.content) + '\\n\\n' -%}"
     "{%- elif message.role == 'user' -%}{{ '[INST] ' + ns.system + content(message.content) + '[/INST]' }}{%- set ns.system = '' -%}"
     "{%- else -%}{{ content(message.content) + eos_token }}{%- endif -%}"
     "{%- endfor -%}"},
    {"gemma",
     "{{ bos_token }}"
     "{%- set ns = namespace(system='') -%}"
     "{%- for message in messages -%}"
     "{%- if message.role == 'system' -%}{%- set ns.system = content(message.content) + '\\n\\n' -%}"
     "{%- else -%}"
     "{%- set role = 'model' if message.role == 'assistant' else message.role -%}"
     "{{ '<start_of_turn>' + role + '\\n' + ns.system + content(message.content) | trim + '<end_of_turn>\\n' }}"
     "{%- set ns.system = '' -%}"
     "{%- endif -%}"
     "{%- endfor -%}"
     "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\\n' }}{%- endif -%}"},
    {"phi3",
     "{%- for message in messages -%}"
     "{{ '<|' + message.role + '|>\\n' + content(message.content) + '<|end|>\\n' }}"
     "{%- endfor -%}"
     "{%- if add_generation_prompt -%}{{ '<|assistant|>\\n' }}{%- else -%}{{ eos_token }}{%- endif -%}"},
    {"zephyr",
     "{%- for message in messages -%}"
     "{{ '<|' + message.role + '|>\\n' + content(message.content) + eos_token + '\\n' }}"
     "{%- endfor -%}"
     "{%- if add_generation_prompt -%}{{ '<|assistant|>\\n' }}{%- endif -%}"},
    {"llava",  // LLaVA 1.5 (Vicuna v1 turns)
     "{%- for message in messages -%}"
     "{%- if message.role == 'system' -%}{{ content(message.content) + '\\n' }}"
     "{%- elif message.role == 'user' -%}{{ 'USER: ' + content(message.content) + '\\n' }}"
     "{%- else -%}{{ 'ASSISTANT: ' + content(message.content) + eos_token + '\\n' }}{%- endif -%}"
     "{%- endfor -%}"
     "{%- if add_generation_prompt -%}{{ 'ASSISTANT:' }}{%- endif -%}"},
    {"completion",
     "{%- for message in messages -%}"
     "{%- if message.role == 'system' -%}{{ content(message.content) + '\\n\\n' }}"
     "{%- elif message.role == 'user' -%}{{ 'User: ' + content(message.content) + '\\n' }}"
     "{%- else -%}{{ 'Assistant: ' + content(message.content) + '\\n' }}{%- endif -%}"
     "{%- endfor -%}"
     "{%- if add_generation_prompt -%}{{ 'Assistant:' }}{%- endif -%}"},
};

std::string today() {
    char buffer[32];
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    return std::string(buffer, std::strftime(buffer, sizeof buffer, "%d %b %Y", &tm));
}

std::string tokenText(const Vocabulary* v, const std::optional<TokenId>& id) {
    if (!v || !id) return {};
    return v->tokens[static_cast<std::size_t>(*id)];
}

}  // namespace

ChatTemplate ChatTemplate::fromSource(std::string source, std::string name) {
    ChatTemplate t;
    t.template_ = jinja::Template::parse(source);
    t.source_ = std::move(source);
    t.name_ = std::move(name);
    return t;
}

std::optional<ChatTemplate> ChatTemplate::fromGguf(const GgufFile& file) {
    if (!file.contains("tokenizer.chat_template")) return std::nullopt;
    try {
        return fromSource(file.getString("tokenizer.chat_template"), "the model's template");
    } catch (const jinja::TemplateError& e) {
        throw FormatError(file.displayName() + ": its chat template does not parse: " + e.what());
    }
}

ChatTemplate ChatTemplate::builtin(std::string_view name) {
    for (const auto& b : kBuiltins)
        if (b.name == name) return fromSource(std::string(kContentMacro) + std::string(b.body), std::string(b.name));
    std::string names;
    for (const auto& b : kBuiltins) names += (names.empty() ? "" : ", ") + std::string(b.name);
    throw std::invalid_argument("no built-in chat template named '" + std::string(name) + "' (there are: " + names + ")");
}

std::vector<std::string_view> ChatTemplate::builtinNames() {
    std::vector<std::string_view> names;
    for (const auto& b : kBuiltins) names.push_back(b.name);
    return names;
}

std::string ChatTemplate::render(const nlohmann::ordered_json& context, const jinja::RenderOptions& options) const {
    return template_.render(context, options);
}

std::string ChatTemplate::apply(const nlohmann::ordered_json& messages, bool addGenerationPrompt, const Vocabulary* vocabulary,
                                const nlohmann::ordered_json& extra, const jinja::RenderOptions& options) const {
    nlohmann::ordered_json context = nlohmann::ordered_json::object();
    context["messages"] = messages;
    context["add_generation_prompt"] = addGenerationPrompt;
    context["bos_token"] = tokenText(vocabulary, vocabulary ? vocabulary->bos : std::nullopt);
    context["eos_token"] = tokenText(vocabulary, vocabulary ? vocabulary->eos : std::nullopt);
    context["date_string"] = today();
    if (extra.is_object())
        for (const auto& [k, v] : extra.items()) context[k] = v;
    return render(context, options);
}

}  // namespace lumen::inference
