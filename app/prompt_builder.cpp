#include "app/prompt_builder.h"

#include <QRegularExpression>

#include "app/llm_host.h"
#include "inference/llm/multimodal.h"

namespace lumen::app {
namespace {

const QRegularExpression& variablePattern() {
    static const QRegularExpression re(QStringLiteral("\\{\\{\\s*([A-Za-z_][A-Za-z0-9_]*)\\s*\\}\\}"));
    return re;
}

}  // namespace

QStringList templateVariables(const std::string& text) {
    QStringList names;
    auto it = variablePattern().globalMatch(QString::fromStdString(text));
    while (it.hasNext()) {
        const QString name = it.next().captured(1);
        if (!names.contains(name)) names << name;
    }
    return names;
}

std::string fillVariables(const std::string& text, const std::map<std::string, std::string>& values) {
    const QString source = QString::fromStdString(text);
    QString out;
    qsizetype last = 0;
    auto it = variablePattern().globalMatch(source);
    while (it.hasNext()) {
        const auto m = it.next();
        out += source.mid(last, m.capturedStart() - last);
        const auto v = values.find(m.captured(1).toStdString());
        out += v != values.end() ? QString::fromStdString(v->second) : m.captured(0);
        last = m.capturedEnd();
    }
    out += source.mid(last);
    return out.toStdString();
}

nlohmann::ordered_json buildConversation(const std::optional<TemplateSpec>& spec, const nlohmann::ordered_json& history) {
    nlohmann::ordered_json conversation = nlohmann::ordered_json::array();
    if (spec) {
        if (!spec->systemPrompt.empty()) conversation.push_back({{"role", "system"}, {"content", spec->systemPrompt}});
        // (kept when a long chat is fitted to the context: only the chat's own turns are left out)
        for (const auto& e : spec->examples) {
            nlohmann::ordered_json user{{"role", "user"}, {"content", e.input}, {"keep", true}};
            if (e.image) user["images"] = nlohmann::ordered_json::array({*e.image});
            conversation.push_back(user);
            conversation.push_back({{"role", "assistant"}, {"content", e.output}, {"keep", true}});
        }
    }
    for (const auto& m : history) conversation.push_back(m);
    return conversation;
}

std::string PromptRenderer::render(const nlohmann::ordered_json& conversation, const nlohmann::ordered_json& extras,
                                   const std::atomic<bool>* cancel) const {
    inference::jinja::RenderOptions options;
    options.cancel = cancel;
    // Messages with images: the images as parts before the text, which templates render as image
    // markers; a text-only template gets the markers written into the message text instead.
    nlohmann::ordered_json parts = nlohmann::ordered_json::array(), plain = nlohmann::ordered_json::array();
    std::size_t images = 0;
    for (const auto& m : conversation) {
        const std::size_t count = m.contains("images") ? m["images"].size() : 0;
        images += count;
        nlohmann::ordered_json p{{"role", m["role"]}, {"content", m["content"]}};
        if (m.contains("reasoning_content")) p["reasoning_content"] = m["reasoning_content"];
        nlohmann::ordered_json t = p;
        if (count > 0) {
            nlohmann::ordered_json content = nlohmann::ordered_json::array();
            std::string markers;
            for (std::size_t i = 0; i < count; ++i) {
                content.push_back({{"type", "image"}});
                markers += std::string(inference::kImageMarker) + "\n";
            }
            content.push_back({{"type", "text"}, {"text", "\n" + m["content"].get<std::string>()}});
            p["content"] = content;
            t["content"] = markers + m["content"].get<std::string>();
        }
        parts.push_back(p);
        plain.push_back(t);
    }
    const auto& vocab = tokenizer_->vocabulary();
    if (images == 0) return template_.apply(plain, true, &vocab, extras, options);
    std::string prompt = template_.apply(parts, true, &vocab, extras, options);
    std::size_t found = 0;
    for (std::size_t at = prompt.find(inference::kImageMarker); at != std::string::npos; at = prompt.find(inference::kImageMarker, at + 1)) ++found;
    return found == images ? prompt : template_.apply(plain, true, &vocab, extras, options);
}

std::vector<inference::TokenId> PromptRenderer::tokenize(const std::string& prompt) const { return promptTokens(*tokenizer_, prompt); }

}  // namespace lumen::app
