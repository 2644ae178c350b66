#include "app/prompt_builder.h"

#include <QRegularExpression>

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
        for (const auto& [input, output] : spec->examples) {
            conversation.push_back({{"role", "user"}, {"content", input}});
            conversation.push_back({{"role", "assistant"}, {"content", output}});
        }
    }
    for (const auto& m : history) conversation.push_back(m);
    return conversation;
}

std::string PromptRenderer::render(const nlohmann::ordered_json& conversation) const {
    return template_.apply(conversation, true, &tokenizer_->vocabulary());
}

std::vector<inference::TokenId> PromptRenderer::tokenize(const std::string& prompt) const {
    const auto& vocab = tokenizer_->vocabulary();
    const std::string bos = vocab.bos ? vocab.tokens[static_cast<std::size_t>(*vocab.bos)] : std::string();
    const bool templateHasBos = !bos.empty() && prompt.rfind(bos, 0) == 0;
    return tokenizer_->encode(prompt, !templateHasBos, true);
}

}  // namespace lumen::app
