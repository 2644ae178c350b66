#pragma once
// A client for OpenAI-compatible servers (vLLM, llama.cpp's llama-server, Ollama, LM Studio,
// another lumen-cli serve): the models a server has, and a chat or text completion streamed as
// server-sent events with the reasoning apart from the answer, TTFT and tokens/s measured here.
// Whatever the server sends is untrusted: a malformed stream or JSON is an error, never a crash;
// a server that does not answer, or stops sending, is given up on after a timeout.
//
// The calls block, running a local event loop: call them from a job (the runner's LLM lane) or
// from lumen-cli, never from the window's thread.

#include <QByteArray>
#include <QString>
#include <QUrl>
#include <atomic>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace lumen::app {

struct RemoteConfig {
    QUrl baseUrl;   // "http://gpu-box:8000/v1" (a URL without /v1 gets it)
    QString apiKey; // sent as "Authorization: Bearer KEY" when not empty
    QString model;  // the name the server knows the model by
    int connectTimeoutMs = 30000;   // until the server answers at all
    int stallTimeoutMs = 180000;    // without a byte once it has (a long prompt's prefill on a busy server)
};

// The base URL as the API is reached: http(s) only, ending in /v1. nullopt for anything else.
std::optional<QUrl> normalizeBaseUrl(const QString& text);

class RemoteError : public std::runtime_error {
public:
    explicit RemoteError(const std::string& what, bool cancelled = false) : std::runtime_error(what), cancelled_(cancelled) {}
    bool cancelled() const { return cancelled_; }

private:
    bool cancelled_;
};

// Server-sent events: bytes in any pieces, the data of each complete event out ("[DONE]"
// included). Lines end with CRLF, LF or CR; a leading byte-order mark is dropped. Lines are
// capped (a stream that never ends a line is an error).
class SseParser {
public:
    std::vector<std::string> feed(std::string_view bytes);
    // What is left when the stream ends: an event not ended by a blank line counts.
    std::vector<std::string> finish();

private:
    void line(std::string_view text, std::vector<std::string>& out);
    std::string partial_;  // a line not yet ended
    std::string data_;     // the current event's data lines
    bool hasData_ = false;
    bool afterCr_ = false;  // the last line ended with CR (an LF next is part of that ending)
    bool started_ = false;  // past a possible byte-order mark
    std::string pending_;  // the first bytes, until it is known whether they are one
};

// One event of a streamed completion.
struct StreamDelta {
    std::string content, reasoning;
    std::optional<std::string> finishReason;
    int promptTokens = -1, completionTokens = -1;  // from a usage event
};
// Reads a chunk's JSON (chat: choices[0].delta.content / reasoning_content / reasoning;
// completions: choices[0].text). Throws RemoteError for what is not such a chunk, and for an
// error event ({"error": {...}}) with the server's message.
StreamDelta parseStreamChunk(std::string_view json, bool chat);

// An OpenAI-style error body's message ("" when the body is not one).
std::string errorMessageOf(const QByteArray& body);

struct RemoteReply {
    std::string text, reasoning;
    std::string finishReason;  // "stop", "length", … ("" when the server named none)
    int promptTokens = -1, completionTokens = -1;  // -1: the server did not say
    double ttftMs = 0, tokensPerSecond = 0, reasoningMs = -1;
    bool cancelled = false;
};

class RemoteClient {
public:
    explicit RemoteClient(RemoteConfig config);
    const RemoteConfig& config() const { return config_; }

    // GET /models: the names the server offers. Throws RemoteError.
    std::vector<QString> listModels(const std::atomic<bool>* cancel = nullptr) const;

    // POST /chat/completions (chat) or /completions with `body` (model, stream and stream_options
    // are set here), streaming: `onPiece(reasoning, answer)` as text comes. A cancel ends it
    // early (cancelled, with what came). Throws RemoteError (the server's own message for a
    // refusal, a timeout, a malformed stream).
    RemoteReply stream(nlohmann::ordered_json body, bool chat, const std::function<void(const std::string&, const std::string&)>& onPiece,
                       const std::atomic<bool>* cancel = nullptr) const;

private:
    RemoteConfig config_;
};

// The request fields for sampling settings (temperature, top_p, top_k, min_p, penalties, seed,
// max_tokens, stop), as vLLM, llama-server and Ollama read them.
nlohmann::ordered_json samplingFields(float temperature, float topP, int topK, float minP, float repeatPenalty, float frequencyPenalty,
                                      float presencePenalty, std::uint64_t seed, int maxTokens, const std::vector<std::string>& stop);

// An image's bytes as a data: URL for an image_url part (its type from its first bytes).
std::string imageDataUrl(const QByteArray& bytes);

}  // namespace lumen::app
