#include "app/remote_client.h"

#include <QElapsedTimer>
#include <QEventLoop>
#include <QNetworkAccessManager>
#include <QNetworkProxyFactory>
#include <QNetworkReply>
#include <QNetworkRequest>
#include <QTimer>
#include <exception>
#include <utility>

namespace lumen::app {
namespace {

using Json = nlohmann::ordered_json;
constexpr std::size_t kMaxLine = std::size_t{16} << 20;  // one event's line (a chunk is far smaller)
constexpr qint64 kMaxBody = qint64{16} << 20;  // a non-streamed answer (models, errors)
constexpr qint64 kMaxStream = qint64{256} << 20;  // one streamed reply

std::string text(const QString& s) { return s.toStdString(); }

QUrl endpoint(const RemoteConfig& config, const char* path) {
    QUrl url = config.baseUrl;
    url.setPath(url.path() + QLatin1String(path));
    return url;
}

QNetworkRequest request(const RemoteConfig& config, const QUrl& url) {
    QNetworkRequest r(url);
    r.setHeader(QNetworkRequest::UserAgentHeader, QStringLiteral("lumen/" LUMEN_VERSION_STRING));
    r.setHeader(QNetworkRequest::ContentTypeHeader, QStringLiteral("application/json"));
    // (redirects only within the server's origin: the key is never sent to another host)
    r.setAttribute(QNetworkRequest::RedirectPolicyAttribute, QNetworkRequest::SameOriginRedirectPolicy);
    if (!config.apiKey.isEmpty()) r.setRawHeader("Authorization", "Bearer " + config.apiKey.toUtf8());
    return r;
}

// Runs one request: `onData` takes the body as it comes (false: stop reading, not an error).
// Returns the HTTP status; throws RemoteError for no answer, a timeout, a cancel or a dropped
// connection.
struct Exchange {
    int status = 0;
    QByteArray errorBody;  // the body of a status >= 400 (capped)
};

Exchange exchange(const RemoteConfig& config, const QUrl& url, const QByteArray* post, const std::function<bool(const QByteArray&)>& onData,
                  const std::atomic<bool>* cancel) {
    static const bool proxies = [] {
        QNetworkProxyFactory::setUseSystemConfiguration(true);
        return true;
    }();
    (void)proxies;
    QNetworkAccessManager manager;
    const QNetworkRequest r = request(config, url);
    QNetworkReply* reply = post ? manager.post(r, *post) : manager.get(r);
    Exchange out;
    bool answered = false, timedOut = false, cancelled = false, stopped = false;
    std::exception_ptr failure;
    QEventLoop loop;
    QTimer timeout, poll;
    timeout.setSingleShot(true);
    const auto headers = [&] {
        if (answered) return;
        const int status = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
        if (status == 0) return;  // (meta data without a status line yet)
        answered = true;
        out.status = status;
        timeout.start(config.stallTimeoutMs);  // (a long prompt's prefill may follow before any byte)
    };
    QObject::connect(reply, &QNetworkReply::metaDataChanged, &loop, headers);
    QObject::connect(reply, &QNetworkReply::readyRead, &loop, [&] {
        headers();
        timeout.start(config.stallTimeoutMs);
        const QByteArray chunk = reply->readAll();
        if (stopped) return;
        if (out.status >= 400) {
            if (out.errorBody.size() < kMaxBody) out.errorBody += chunk.left(kMaxBody - out.errorBody.size());
        } else {
            // (an exception must not cross the event loop: it is kept, and thrown after it)
            bool more = false;
            try {
                more = onData(chunk);
            } catch (...) {
                failure = std::current_exception();
            }
            if (!more) {
                stopped = true;
                reply->abort();
            }
        }
    });
    QObject::connect(&timeout, &QTimer::timeout, &loop, [&] {
        timedOut = true;
        reply->abort();
    });
    QObject::connect(&poll, &QTimer::timeout, &loop, [&] {
        if (cancel && cancel->load()) {
            cancelled = true;
            reply->abort();
        }
    });
    QObject::connect(reply, &QNetworkReply::finished, &loop, &QEventLoop::quit);
    timeout.start(config.connectTimeoutMs);
    poll.start(50);
    if (!reply->isFinished()) loop.exec();
    headers();
    const QString where = url.toDisplayString(QUrl::RemoveUserInfo);
    if (failure) std::rethrow_exception(failure);
    if (cancelled) throw RemoteError("cancelled", true);
    const auto seconds = [](int ms) { return QString::number(ms / 1000.0, 'g', 3).toStdString() + " s"; };
    if (timedOut)
        throw RemoteError(answered ? text(where) + " stopped sending for " + seconds(config.stallTimeoutMs)
                                   : text(where) + " did not answer within " + seconds(config.connectTimeoutMs));
    if (!stopped && reply->error() != QNetworkReply::NoError && out.status == 0)
        throw RemoteError("cannot reach " + text(where) + ": " + text(reply->errorString()));
    if (!stopped && reply->error() != QNetworkReply::NoError && out.status < 400)
        throw RemoteError("the connection to " + text(where) + " dropped: " + text(reply->errorString()));
    return out;
}

RemoteError refusal(const Exchange& e, const QUrl& url) {
    const std::string message = errorMessageOf(e.errorBody);
    std::string what = text(url.toDisplayString(QUrl::RemoveUserInfo)) + " refused the request (HTTP " + std::to_string(e.status) + ")";
    if (!message.empty()) what += ": " + message;
    if (e.status == 401 || e.status == 403) what += " (check the API key)";
    return RemoteError(what);
}

const Json* member(const Json& object, const char* key) {
    if (!object.is_object()) return nullptr;
    const auto it = object.find(key);
    return it == object.end() || it->is_null() ? nullptr : &*it;
}

std::string stringOr(const Json* v) { return v && v->is_string() ? v->get<std::string>() : std::string(); }

int countOr(const Json& usage, const char* key) {
    const Json* v = member(usage, key);
    if (!v || !v->is_number_integer()) return -1;
    const auto n = v->get<std::int64_t>();
    return n < 0 || n > INT32_MAX ? -1 : static_cast<int>(n);
}

}  // namespace

std::optional<QUrl> normalizeBaseUrl(const QString& input) {
    QUrl url = QUrl::fromUserInput(input.trimmed());
    if (!url.isValid() || url.host().isEmpty() || (url.scheme() != QLatin1String("http") && url.scheme() != QLatin1String("https"))) return std::nullopt;
    url.setQuery(QString());
    url.setFragment(QString());
    url.setUserInfo(QString());  // (a key goes as the API key, never in an address that is stored)
    QString path = url.path();
    while (path.endsWith(QLatin1Char('/'))) path.chop(1);
    for (const char* tail : {"/chat/completions", "/completions", "/models"})
        if (path.endsWith(QLatin1String(tail))) path.chop(static_cast<int>(qstrlen(tail)));
    if (!path.endsWith(QLatin1String("/v1"))) path += QStringLiteral("/v1");
    url.setPath(path);
    return url;
}

std::vector<std::string> SseParser::feed(std::string_view bytes) {
    std::vector<std::string> out;
    if (!started_) {  // (a byte-order mark before the first line is not part of it)
        pending_.append(bytes);
        if (pending_.size() < 3 && std::string_view("\xEF\xBB\xBF").starts_with(pending_)) return out;
        started_ = true;
        std::string first = std::move(pending_);
        if (first.starts_with("\xEF\xBB\xBF")) first.erase(0, 3);
        return feed(first);
    }
    // Lines end with CRLF, LF or CR alone (a CRLF cut between two reads counts once).
    while (!bytes.empty()) {
        if (afterCr_ && bytes.front() == '\n') bytes.remove_prefix(1);
        afterCr_ = false;
        const auto end = bytes.find_first_of("\r\n");
        if (end == std::string_view::npos) {
            partial_.append(bytes);
            if (partial_.size() > kMaxLine) throw RemoteError("the server's event stream has a line longer than 16 MiB");
            break;
        }
        partial_.append(bytes.substr(0, end));
        afterCr_ = bytes[end] == '\r';
        bytes.remove_prefix(end + 1);
        line(partial_, out);
        partial_.clear();
    }
    return out;
}

std::vector<std::string> SseParser::finish() {
    std::vector<std::string> out;
    if (!started_) {
        started_ = true;
        out = feed(std::exchange(pending_, std::string()));
    }
    if (!partial_.empty()) line(partial_, out);
    partial_.clear();
    line({}, out);
    return out;
}

void SseParser::line(std::string_view text, std::vector<std::string>& out) {
    if (text.empty()) {  // the end of an event
        if (hasData_) out.push_back(std::move(data_));
        data_.clear();
        hasData_ = false;
        return;
    }
    if (text.front() == ':') return;  // a comment (keep-alive)
    const auto colon = text.find(':');
    const std::string_view field = text.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? std::string_view() : text.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (field != "data") return;  // event, id, retry: not used by these servers
    if (hasData_) data_ += '\n';
    data_.append(value);
    hasData_ = true;
    if (data_.size() > kMaxLine) throw RemoteError("the server's event stream has an event longer than 16 MiB");
}

StreamDelta parseStreamChunk(std::string_view json, bool chat) {
    const Json doc = Json::parse(json, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) throw RemoteError("the server sent an event that is not a JSON object");
    if (const Json* error = member(doc, "error")) {
        std::string message = error->is_string() ? error->get<std::string>() : stringOr(member(*error, "message"));
        throw RemoteError("the server stopped with an error: " + (message.empty() ? std::string("(no message)") : message));
    }
    StreamDelta d;
    if (const Json* usage = member(doc, "usage"); usage && usage->is_object()) {
        d.promptTokens = countOr(*usage, "prompt_tokens");
        d.completionTokens = countOr(*usage, "completion_tokens");
    }
    const Json* choices = member(doc, "choices");
    if (!choices) return d;
    if (!choices->is_array()) throw RemoteError("the server sent an event whose 'choices' is not a list");
    if (choices->empty()) return d;
    const Json& choice = (*choices)[0];
    if (!choice.is_object()) throw RemoteError("the server sent an event whose choice is not an object");
    if (const Json* finish = member(choice, "finish_reason")) {
        if (!finish->is_string()) throw RemoteError("the server sent a finish_reason that is not text");
        d.finishReason = finish->get<std::string>();
    }
    if (chat) {
        const Json* delta = member(choice, "delta");
        if (!delta) delta = member(choice, "message");
        if (delta) {
            if (!delta->is_object()) throw RemoteError("the server sent a delta that is not an object");
            const Json* content = member(*delta, "content");
            if (content && !content->is_string()) throw RemoteError("the server sent content that is not text");
            d.content = stringOr(content);
            // (vLLM and llama-server: reasoning_content; Ollama and OpenRouter: reasoning)
            const Json* reasoning = member(*delta, "reasoning_content");
            if (!reasoning) reasoning = member(*delta, "reasoning");
            d.reasoning = stringOr(reasoning);
        }
    } else {
        const Json* text = member(choice, "text");
        if (text && !text->is_string()) throw RemoteError("the server sent text that is not text");
        d.content = stringOr(text);
    }
    return d;
}

std::string errorMessageOf(const QByteArray& body) {
    const Json doc = Json::parse(body.constBegin(), body.constEnd(), nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) return {};
    const Json* error = member(doc, "error");
    if (!error) return stringOr(member(doc, "message"));
    if (error->is_string()) return error->get<std::string>();
    return stringOr(member(*error, "message"));
}

RemoteClient::RemoteClient(RemoteConfig config) : config_(std::move(config)) {
    if (const auto url = normalizeBaseUrl(config_.baseUrl.toString())) config_.baseUrl = *url;
}

std::vector<QString> RemoteClient::listModels(const std::atomic<bool>* cancel) const {
    const QUrl url = endpoint(config_, "/models");
    QByteArray body;
    bool tooLarge = false;
    const Exchange e = exchange(config_, url, nullptr, [&](const QByteArray& chunk) {
        if (body.size() + chunk.size() > kMaxBody) return !(tooLarge = true);
        body += chunk;
        return true;
    }, cancel);
    if (e.status >= 400) throw refusal(e, url);
    if (tooLarge) throw RemoteError(text(url.toDisplayString()) + " sent a list of models over 16 MiB");
    const Json doc = Json::parse(body.constBegin(), body.constEnd(), nullptr, false);
    const Json* data = doc.is_discarded() ? nullptr : member(doc, "data");
    if (!data || !data->is_array()) throw RemoteError(text(url.toDisplayString()) + " did not answer with a list of models: is it an OpenAI-compatible server?");
    std::vector<QString> names;
    for (const Json& m : *data)
        if (const std::string id = stringOr(member(m, "id")); !id.empty()) names.push_back(QString::fromStdString(id));
    return names;
}

RemoteReply RemoteClient::stream(Json body, bool chat, const std::function<void(const std::string&, const std::string&)>& onPiece,
                                 const std::atomic<bool>* cancel) const {
    const QUrl url = endpoint(config_, chat ? "/chat/completions" : "/completions");
    body["model"] = text(config_.model);
    body["stream"] = true;
    body["stream_options"] = {{"include_usage", true}};
    const QByteArray payload = QByteArray::fromStdString(body.dump(-1, ' ', false, Json::error_handler_t::replace));
    RemoteReply reply;
    SseParser sse;
    QElapsedTimer clock;
    clock.start();
    qint64 firstNs = -1, lastNs = -1, reasoningEndNs = -1;
    int chunks = 0;
    bool done = false;
    qint64 received = 0;
    const auto take = [&](const std::vector<std::string>& events) {
        for (const std::string& data : events) {
            if (data == "[DONE]") {
                done = true;
                continue;
            }
            if (data.empty()) continue;  // (an event with no data: nothing to read)
            const StreamDelta d = parseStreamChunk(data, chat);
            if (d.promptTokens >= 0) reply.promptTokens = d.promptTokens;
            if (d.completionTokens >= 0) reply.completionTokens = d.completionTokens;
            if (d.finishReason) reply.finishReason = *d.finishReason;
            if (d.content.empty() && d.reasoning.empty()) continue;
            lastNs = clock.nsecsElapsed();
            if (firstNs < 0) firstNs = lastNs;
            if (!d.content.empty() && !reply.reasoning.empty() && reasoningEndNs < 0) reasoningEndNs = lastNs;
            ++chunks;
            reply.text += d.content;
            reply.reasoning += d.reasoning;
            if (onPiece) onPiece(d.reasoning, d.content);
        }
    };
    Exchange e;
    try {
        e = exchange(config_, url, &payload, [&](const QByteArray& chunk) {
            received += chunk.size();
            if (received > kMaxStream) throw RemoteError(text(url.toDisplayString()) + " sent more than 256 MiB for one reply");
            take(sse.feed(std::string_view(chunk.constData(), static_cast<std::size_t>(chunk.size()))));
            return !done;  // (after [DONE] nothing more is read, even if the connection stays open)
        }, cancel);
    } catch (const RemoteError& error) {
        if (!error.cancelled()) throw;
        reply.cancelled = true;
    }
    if (e.status >= 400) throw refusal(e, url);
    if (!reply.cancelled) {
        take(sse.finish());
        if (!done && reply.finishReason.empty()) throw RemoteError(text(url.toDisplayString()) + " ended the reply before it was finished");
    }
    // Speed from the first piece of text to the last (not to the end of the connection, after
    // the usage and [DONE]); tokens as the server counted them, else the pieces that came.
    if (reply.completionTokens < 0 && chunks > 0) reply.completionTokens = chunks;
    if (firstNs >= 0) {
        reply.ttftMs = static_cast<double>(firstNs) / 1e6;
        const double seconds = static_cast<double>(lastNs - firstNs) / 1e9;
        if (reply.completionTokens > 1 && seconds > 0) reply.tokensPerSecond = (reply.completionTokens - 1) / seconds;
    }
    // How long it thought: from the request to the first answer text, as for a local model.
    if (!reply.reasoning.empty()) reply.reasoningMs = static_cast<double>(reasoningEndNs >= 0 ? reasoningEndNs : lastNs) / 1e6;
    return reply;
}

Json samplingFields(float temperature, float topP, int topK, float minP, float repeatPenalty, float frequencyPenalty, float presencePenalty,
                    std::uint64_t seed, int maxTokens, const std::vector<std::string>& stop) {
    Json f = Json::object();
    f["temperature"] = temperature;
    f["top_p"] = topP >= 1 ? 1.0f : topP;
    if (topK > 0) f["top_k"] = topK;
    if (minP > 0) f["min_p"] = minP;
    if (repeatPenalty != 1.0f) f["repeat_penalty"] = f["repetition_penalty"] = repeatPenalty;  // (llama-server's name, vLLM's)
    if (frequencyPenalty != 0) f["frequency_penalty"] = frequencyPenalty;
    if (presencePenalty != 0) f["presence_penalty"] = presencePenalty;
    f["seed"] = static_cast<std::int64_t>(seed & 0x7fffffffffffffffULL);  // (servers read a signed 64-bit seed)
    if (maxTokens > 0) f["max_tokens"] = maxTokens;
    if (!stop.empty()) f["stop"] = stop;
    return f;
}

std::string imageDataUrl(const QByteArray& bytes) {
    const char* type = bytes.startsWith("\x89PNG") ? "image/png"
                       : bytes.startsWith("\xff\xd8\xff") ? "image/jpeg"
                       : (bytes.startsWith("RIFF") && bytes.mid(8, 4) == "WEBP") ? "image/webp"
                       : bytes.startsWith("GIF8") ? "image/gif"
                       : bytes.startsWith("BM") ? "image/bmp"
                                                : "application/octet-stream";
    return std::string("data:") + type + ";base64," + bytes.toBase64().toStdString();
}

}  // namespace lumen::app
