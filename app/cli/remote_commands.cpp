// generate, chat and describe through an OpenAI-compatible server (--remote URL): vLLM,
// llama-server, Ollama, LM Studio or another lumen-cli serve run the model; the prompts, images
// and metrics are handled here as for a local model.

#include <QElapsedTimer>
#include <csignal>

#include "app/cli/commands.h"
#include "app/read_file.h"
#include "app/remote_client.h"

namespace lumen::app::cli {
namespace {

std::atomic<bool> gRemoteInterrupted{false};
extern "C" void onRemoteInterrupt(int) { gRemoteInterrupted.store(true); }

// --remote URL [--remote-model NAME] [--api-key KEY]: the client, with the model named or, when
// the server has just one, that one. nullopt with the reason printed.
std::optional<RemoteClient> remoteClient(Context& ctx) {
    const auto url = normalizeBaseUrl(ctx.parser.value(QStringLiteral("remote")));
    if (!url) {
        ctx.err << "lumen-cli: --remote takes the server's address, such as http://127.0.0.1:8000/v1, not '"
                << ctx.parser.value(QStringLiteral("remote")) << "'\n";
        return std::nullopt;
    }
    RemoteConfig config;
    config.baseUrl = *url;
    config.apiKey = ctx.parser.isSet(QStringLiteral("api-key")) ? ctx.parser.value(QStringLiteral("api-key")) : qEnvironmentVariable("OPENAI_API_KEY");
    config.model = ctx.parser.value(QStringLiteral("remote-model"));
    RemoteClient client(config);
    if (config.model.isEmpty()) {
        const auto models = client.listModels();
        if (models.size() != 1) {
            ctx.err << "lumen-cli: " << url->toDisplayString() << " has " << models.size() << " models; name one with --remote-model:";
            for (const QString& m : models) ctx.err << " " << m;
            ctx.err << "\n";
            return std::nullopt;
        }
        config.model = models.front();
        client = RemoteClient(config);
    }
    return client;
}

nlohmann::ordered_json fieldsOf(const inference::GenerationParams& p) {
    const auto& s = p.sampling;
    return samplingFields(s.temperature, s.topP, s.topK, s.minP, s.repeatPenalty, s.frequencyPenalty, s.presencePenalty, s.seed, p.maxTokens, p.stopStrings);
}

// Streams a reply to standard output (reasoning to standard error unless hidden); Ctrl+C stops it.
RemoteReply streamToTerminal(Context& ctx, const RemoteClient& client, nlohmann::ordered_json body, bool chat, bool showReasoning) {
    gRemoteInterrupted.store(false);
    const auto previous = std::signal(SIGINT, onRemoteInterrupt);
    bool thinking = false;
    RemoteReply reply;
    try {
        reply = client.stream(std::move(body), chat, [&](const std::string& reasoning, const std::string& answer) {
            if (!reasoning.empty() && showReasoning) {
                ctx.err << QString::fromStdString(reasoning);
                ctx.err.flush();
                thinking = true;
            }
            if (!answer.empty()) {
                if (thinking) ctx.err << "\n";
                thinking = false;
                ctx.out << QString::fromStdString(answer);
                ctx.out.flush();
            }
        }, &gRemoteInterrupted);
    } catch (...) {
        std::signal(SIGINT, previous);
        throw;
    }
    std::signal(SIGINT, previous);
    if (thinking) ctx.err << "\n";
    ctx.out << "\n";
    ctx.out.flush();
    return reply;
}

void printRemoteMetrics(Context& ctx, const RemoteClient& client, const RemoteReply& r) {
    ctx.err << QStringLiteral("%1 at %2 · prompt %3 tokens · TTFT %4 ms · %5 tokens at %6 tokens/s · stopped: %7\n")
                   .arg(client.config().model, client.config().baseUrl.toDisplayString(QUrl::RemoveUserInfo))
                   .arg(r.promptTokens >= 0 ? QString::number(r.promptTokens) : QStringLiteral("?"))
                   .arg(r.ttftMs, 0, 'f', 1)
                   .arg(r.completionTokens >= 0 ? QString::number(r.completionTokens) : QStringLiteral("?"))
                   .arg(r.tokensPerSecond, 0, 'f', 1)
                   .arg(r.cancelled ? QStringLiteral("cancelled") : QString::fromStdString(r.finishReason));
}

int remoteErrors(Context& ctx, const std::function<int()>& body) {
    try {
        return body();
    } catch (const RemoteError& e) {
        return fail(ctx, e);
    }
}

bool showReasoning(Context& ctx) { return ctx.parser.value(QStringLiteral("reasoning")).trimmed().toLower() != QLatin1String("hide"); }

nlohmann::ordered_json noThink(Context& ctx) {
    nlohmann::ordered_json extra = nlohmann::ordered_json::object();
    if (ctx.parser.isSet(QStringLiteral("no-think"))) extra["chat_template_kwargs"] = {{"enable_thinking", false}};
    return extra;
}

}  // namespace

int remoteGenerate(Context& ctx, const inference::GenerationParams& params) {
    if (!ctx.parser.isSet(QStringLiteral("prompt")) || ctx.parser.isSet(QStringLiteral("image"))) {
        ctx.err << "lumen-cli: generate --remote URL takes --prompt TEXT (for images: describe --remote URL IMAGE...)\n";
        return kUsage;
    }
    return remoteErrors(ctx, [&] {
        const auto client = remoteClient(ctx);
        if (!client) return kFailed;
        auto body = fieldsOf(params);
        body["prompt"] = ctx.parser.value(QStringLiteral("prompt")).toStdString();
        ctx.out << ctx.parser.value(QStringLiteral("prompt"));
        const auto reply = streamToTerminal(ctx, *client, std::move(body), false, true);
        printRemoteMetrics(ctx, *client, reply);
        return kOk;
    });
}

int remoteDescribe(Context& ctx, const inference::GenerationParams& params) {
    if (ctx.positional.isEmpty()) {
        ctx.err << "lumen-cli: describe --remote URL needs image files\n";
        return kUsage;
    }
    const std::string question = ctx.parser.isSet(QStringLiteral("prompt")) ? ctx.parser.value(QStringLiteral("prompt")).toStdString() : "Describe this image.";
    return remoteErrors(ctx, [&] {
        const auto client = remoteClient(ctx);
        if (!client) return kFailed;
        int failures = 0;
        for (const QString& path : ctx.positional) {
            QString readError;
            const auto bytes = readUserFile(path, kMaxImageFileBytes, readError);
            if (!bytes) {
                ctx.err << "lumen-cli: " << path << ": " << readError << "\n";
                ++failures;
                continue;
            }
            auto body = fieldsOf(params);
            body.update(noThink(ctx));
            nlohmann::ordered_json messages = nlohmann::ordered_json::array();
            if (const QString system = ctx.parser.value(QStringLiteral("system")); !system.isEmpty())
                messages.push_back({{"role", "system"}, {"content", system.toStdString()}});
            messages.push_back({{"role", "user"},
                                {"content", nlohmann::ordered_json::array({{{"type", "image_url"}, {"image_url", {{"url", imageDataUrl(*bytes)}}}},
                                                                           {{"type", "text"}, {"text", question}}})}});
            body["messages"] = std::move(messages);
            ctx.out << path << ":\n";
            ctx.out.flush();
            const auto reply = streamToTerminal(ctx, *client, std::move(body), true, showReasoning(ctx));
            printRemoteMetrics(ctx, *client, reply);
            if (reply.cancelled) break;
        }
        return failures ? kFailed : kOk;
    });
}

int remoteChat(Context& ctx, const inference::GenerationParams& params) {
    return remoteErrors(ctx, [&] {
        const auto client = remoteClient(ctx);
        if (!client) return kFailed;
        chatLoop(ctx, client->config().model + QStringLiteral(" at ") + client->config().baseUrl.toDisplayString(QUrl::RemoveUserInfo),
                 [&](nlohmann::ordered_json& messages) {
                     auto body = fieldsOf(params);
                     body.update(noThink(ctx));
                     body["messages"] = messages;
                     RemoteReply reply;
                     try {
                         reply = streamToTerminal(ctx, *client, std::move(body), true, showReasoning(ctx));
                     } catch (const RemoteError& e) {  // (the chat goes on: the turn is taken back)
                         ctx.err << "lumen-cli: " << QString::fromUtf8(e.what()) << "\n";
                         messages.erase(messages.end() - 1);
                         return;
                     }
                     printRemoteMetrics(ctx, *client, reply);
                     messages.push_back({{"role", "assistant"}, {"content", reply.text}});
                 });
        return kOk;
    });
}

}  // namespace lumen::app::cli
