#pragma once
// An OpenAI-compatible HTTP server over a loaded model, for other programs (editors, scripts,
// agents): GET /health, GET /v1/models, POST /v1/chat/completions and POST /v1/completions,
// streamed as server-sent events or not, and POST /v1/embeddings (text and image embeddings of
// a CLIP model, image embeddings of DINOv2). Requests queue on the engine in the order they came
// (the KV cache of the longest common prefix with the previous request is reused); a streaming
// client that goes away cancels its generation. Errors take OpenAI's JSON shape and status codes.
// HTTP is cpp-httplib's (Debian's libcpp-httplib); the request parsing is here, apart from the
// sockets, so that tests and the fuzz target reach it without a server.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "inference/llm/generator.h"

namespace lumen::vision {
class ImageEncoder;
}

namespace lumen::app {

struct LoadedLlm;
struct Projector;

// An error for the client, as OpenAI writes them: {"error": {"message", "type", "param", "code"}}.
class ApiError : public std::runtime_error {
public:
    ApiError(int httpStatus, std::string errorType, std::string errorCode, const std::string& message, std::string errorParam = {})
        : std::runtime_error(message), status(httpStatus), type(std::move(errorType)), code(std::move(errorCode)), param(std::move(errorParam)) {}
    nlohmann::json body() const;
    // 503: the server is stopping (a request waiting for its turn, or cut short).
    static ApiError shuttingDown() { return {503, "server_error", "server_shutting_down", "the server is shutting down"}; }
    int status;
    std::string type;  // invalid_request_error, authentication_error, not_found_error, server_error
    std::string code;  // model_not_found, context_length_exceeded, invalid_api_key, … (may be empty)
    std::string param;
};

// What a request asks of the engine, once read and checked.
struct ApiRequest {
    bool chat = true;  // /v1/chat/completions (else /v1/completions)
    // chat: the messages as the chat template takes them (content as text; an image part becomes
    // the image marker, its bytes in `images` in order; an assistant message's reasoning_content kept)
    nlohmann::ordered_json messages = nlohmann::ordered_json::array();
    nlohmann::ordered_json templateExtras = nlohmann::ordered_json::object();  // chat_template_kwargs
    std::vector<std::string> images;  // the images' file bytes (from data: URLs)
    // completions: the prompt as text, or as token ids
    std::string prompt;
    std::optional<std::vector<std::int32_t>> promptIds;
    bool echo = false;
    inference::GenerationParams params;
    bool maxTokensGiven = false;  // else: until the context is full
    bool stream = false;
    bool includeUsage = false;  // stream_options.include_usage
};

// Reads a request body for `chat` or completions. `modelId` is the served model's name: a
// request naming another is model_not_found. Throws ApiError (never anything else).
ApiRequest parseApiRequest(const std::string& body, bool chat, const std::string& modelId);

// What /v1/embeddings is asked: texts and images (data: URLs, as strings or image_url items).
struct EmbeddingRequest {
    struct Input {
        bool image = false;
        std::string data;  // the text, or the image's file bytes
    };
    std::vector<Input> inputs;
    bool base64 = false;  // encoding_format "base64": little-endian float32, base64
};
// Throws ApiError (never anything else); `modelId` is the embedding model's name.
EmbeddingRequest parseEmbeddingRequest(const std::string& body, const std::string& modelId);

struct ServerOptions {
    std::string host = "127.0.0.1";
    int port = 8080;  // 0: any free port
    std::string apiKey;  // required for a host other than the loopback
    std::string modelId;  // the name clients use (default: the file name)
    std::string embeddingModelId;  // the embedding model's (default: its folder's name)
    std::size_t maxBodyBytes = std::size_t{32} << 20;  // (images come inline, as base64)
    int readTimeoutSeconds = 60;
    // How long an idle connection is kept for its next request; stopping waits for these too.
    int keepAliveSeconds = 5;
    // Told each finished or cancelled request ("chat.completions 200 12 prompt + 40 tokens, 5.1 s")
    std::function<void(const std::string&)> log;
    // Where the models are used, when not on the server's own threads: runs `work` there (one
    // request's generation, image projection or embeddings) and returns when it has run,
    // rethrowing what it threw; given up (ApiError 503) when `stopping` turns true before the
    // work has started. The app runs it on its LLM lane, between the chat's own replies.
    std::function<void(const std::function<void()>& work, const std::atomic<bool>& stopping)> onEngine;
};

// Whether `host` is a loopback address (127.0.0.0/8, ::1, "localhost").
bool isLoopbackHost(const std::string& host);

class OpenAiServer {
public:
    // Any of the three may be null (their endpoints then say so): the language model, its image
    // projector (without one, image parts are refused) and an embedding model (CLIP or DINOv2,
    // used from the server's threads one request at a time). They must outlive the server.
    OpenAiServer(const LoadedLlm* llm, const Projector* projector, vision::ImageEncoder* embedder, ServerOptions options);
    ~OpenAiServer();
    OpenAiServer(const OpenAiServer&) = delete;
    OpenAiServer& operator=(const OpenAiServer&) = delete;

    // Binds the address (std::runtime_error with the reason when it cannot); returns the port.
    int bind();
    // Serves until stop() (from any thread; a stop before run() makes run() return at once).
    // Requests under way or waiting end (a stream with an error event, others with 503).
    void run();
    void stop();
    // Whether run() has started listening (stop() before that is seen only by run()'s start).
    bool isListening() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace lumen::app
