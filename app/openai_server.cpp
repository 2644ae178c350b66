#include "app/openai_server.h"

#include <httplib.h>

#include <QByteArray>
#include <QCryptographicHash>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "app/llm_host.h"
#include "inference/llm/multimodal.h"
#include "inference/formats/text.h"
#include "inference/llm/reasoning.h"
#include "vision/embedding_cache.h"
#include "vision/clip_model.h"
#include "vision/image_decode.h"
#include "vision/vit.h"

namespace lumen::app {
namespace {

using Json = nlohmann::ordered_json;
// Requests are read as plain JSON (keys in a map: an ordered map looks keys up one by one, which
// a body of many keys would turn into minutes), nested at most kMaxRequestDepth deep.
using In = nlohmann::json;
constexpr std::size_t kMaxRequestDepth = 64;
constexpr std::size_t kMaxImages = 16;
constexpr std::size_t kMaxStops = 16;
constexpr std::size_t kConnectionThreads = 64;
constexpr std::size_t kMaxEmbeddingInputs = 256;

ApiError invalid(const std::string& message, const std::string& param = {}) { return {400, "invalid_request_error", {}, message, param}; }

// A member that is there and not null.
const In* member(const In& object, const char* key) {
    const auto it = object.find(key);
    return it == object.end() || it->is_null() ? nullptr : &*it;
}

std::optional<double> number(const In& doc, const char* key, double min, double max) {
    const In* v = member(doc, key);
    if (!v) return std::nullopt;
    if (!v->is_number()) throw invalid(std::string("'") + key + "' must be a number", key);
    const double x = v->get<double>();
    if (!(x >= min && x <= max)) throw invalid(std::string("'") + key + "' must be between " + Json(min).dump() + " and " + Json(max).dump(), key);
    return x;
}

std::optional<std::int64_t> integer(const In& doc, const char* key, std::int64_t min, std::int64_t max) {
    const In* v = member(doc, key);
    if (!v) return std::nullopt;
    if (!v->is_number_integer() && !v->is_number_unsigned()) throw invalid(std::string("'") + key + "' must be an integer", key);
    if (v->is_number_unsigned() && v->get<std::uint64_t>() > static_cast<std::uint64_t>(max))
        throw invalid(std::string("'") + key + "' must be at most " + std::to_string(max), key);
    const std::int64_t x = v->get<std::int64_t>();
    if (x < min || x > max) throw invalid(std::string("'") + key + "' must be between " + std::to_string(min) + " and " + std::to_string(max), key);
    return x;
}

bool boolean(const In& doc, const char* key) {
    const In* v = member(doc, key);
    if (!v) return false;
    if (!v->is_boolean()) throw invalid(std::string("'") + key + "' must be true or false", key);
    return v->get<bool>();
}

// An image_url part's bytes: only data URLs (the server fetches nothing from the network).
std::string imageBytes(const In& part) {
    const In* image = member(part, "image_url");
    const In* url = image && image->is_object() ? member(*image, "url") : image;
    if (!url || !url->is_string()) throw invalid("an image_url part needs image_url.url", "messages");
    const std::string& text = url->get_ref<const std::string&>();
    if (!text.starts_with("data:")) throw invalid("images must be given inline as data: URLs (data:image/png;base64,...); this server fetches no URLs", "messages");
    const auto comma = text.find(',');
    if (comma == std::string::npos || text.substr(0, comma).find(";base64") == std::string::npos)
        throw invalid("an image's data: URL must be base64 (data:image/png;base64,...)", "messages");
    const auto decoded = QByteArray::fromBase64Encoding(QByteArray::fromRawData(text.data() + comma + 1, static_cast<qsizetype>(text.size() - comma - 1)),
                                                        QByteArray::AbortOnBase64DecodingErrors);
    if (!decoded || decoded.decoded.isEmpty()) throw invalid("an image's data: URL is not valid base64", "messages");
    return decoded.decoded.toStdString();
}

void readMessages(const In& doc, ApiRequest& r) {
    const In* messages = member(doc, "messages");
    if (!messages || !messages->is_array() || messages->empty()) throw invalid("'messages' must be a non-empty array", "messages");
    for (const In& m : *messages) {
        if (!m.is_object()) throw invalid("each message must be an object", "messages");
        const In* role = member(m, "role");
        if (!role || !role->is_string()) throw invalid("each message needs a 'role'", "messages");
        std::string name = role->get<std::string>();
        if (name == "developer") name = "system";  // (OpenAI's newer name for it)
        if (name != "system" && name != "user" && name != "assistant" && name != "tool")
            throw invalid("unknown role '" + name + "' (system, developer, user, assistant, tool)", "messages");
        std::string content;
        if (const In* c = member(m, "content")) {
            if (c->is_string()) {
                content = c->get<std::string>();
            } else if (c->is_array()) {
                for (const In& part : *c) {
                    const In* type = part.is_object() ? member(part, "type") : nullptr;
                    if (!type || !type->is_string()) throw invalid("each content part needs a 'type'", "messages");
                    if (*type == "text") {
                        const In* text = member(part, "text");
                        if (!text || !text->is_string()) throw invalid("a text part needs 'text'", "messages");
                        content += text->get<std::string>();
                    } else if (*type == "image_url") {
                        if (r.images.size() == kMaxImages) throw invalid("at most " + std::to_string(kMaxImages) + " images in a request", "messages");
                        r.images.push_back(imageBytes(part));
                        content += std::string(inference::kImageMarker) + "\n";
                    } else {
                        throw invalid("content parts of type '" + type->get<std::string>() + "' are not supported (text, image_url)", "messages");
                    }
                }
            } else {
                throw invalid("a message's content must be a string or an array of parts", "messages");
            }
        } else if (name != "assistant") {
            throw invalid("a " + name + " message needs 'content'", "messages");
        }
        Json out{{"role", name}, {"content", content}};
        if (const In* reasoning = member(m, "reasoning_content"); reasoning && reasoning->is_string()) out["reasoning_content"] = reasoning->get<std::string>();
        r.messages.push_back(std::move(out));
    }
    if (const In* kwargs = member(doc, "chat_template_kwargs")) {  // (llama-server's: {"enable_thinking": false})
        if (!kwargs->is_object()) throw invalid("'chat_template_kwargs' must be an object", "chat_template_kwargs");
        r.templateExtras = Json(*kwargs);
    }
}

void readPrompt(const In& doc, ApiRequest& r) {
    const In* prompt = member(doc, "prompt");
    if (!prompt) throw invalid("'prompt' is required", "prompt");
    const auto ids = [&](const In& list) {
        std::vector<std::int32_t> out;
        for (const In& t : list) {
            if (!t.is_number_integer() && !t.is_number_unsigned()) throw invalid("a prompt given as tokens must be integers", "prompt");
            const auto id = t.get<std::int64_t>();
            if (id < 0 || id > INT32_MAX) throw invalid("token id " + std::to_string(id) + " is out of range", "prompt");
            out.push_back(static_cast<std::int32_t>(id));
        }
        return out;
    };
    if (prompt->is_string()) {
        r.prompt = prompt->get<std::string>();
    } else if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) {
        r.prompt = (*prompt)[0].get<std::string>();
    } else if (prompt->is_array() && !prompt->empty() && ((*prompt)[0].is_number() || (prompt->size() == 1 && (*prompt)[0].is_array()))) {
        r.promptIds = ids((*prompt)[0].is_array() ? (*prompt)[0] : *prompt);
    } else {
        throw invalid("'prompt' must be a string or a list of token ids (one prompt per request)", "prompt");
    }
    if (r.prompt.empty() && (!r.promptIds || r.promptIds->empty())) throw invalid("'prompt' is empty", "prompt");
    r.echo = boolean(doc, "echo");
}

}  // namespace

nlohmann::json ApiError::body() const {
    nlohmann::json error{{"message", what()}, {"type", type}};
    error["param"] = param.empty() ? nlohmann::json() : nlohmann::json(param);
    error["code"] = code.empty() ? nlohmann::json() : nlohmann::json(code);
    return {{"error", error}};
}

ApiRequest parseApiRequest(const std::string& body, bool chat, const std::string& modelId) {
    if (inference::jsonNestingDepth(body) > kMaxRequestDepth) throw invalid("the request body nests deeper than " + std::to_string(kMaxRequestDepth) + " levels");
    const In doc = In::parse(body, nullptr, false);
    if (doc.is_discarded()) throw invalid("the request body is not valid JSON");
    if (!doc.is_object()) throw invalid("the request body must be a JSON object");
    ApiRequest r;
    r.chat = chat;
    if (const In* model = member(doc, "model")) {
        if (!model->is_string()) throw invalid("'model' must be a string", "model");
        if (*model != modelId)
            throw ApiError(404, "invalid_request_error", "model_not_found", "The model '" + model->get<std::string>() + "' does not exist; this server has '" + modelId + "'", "model");
    }
    if (chat) readMessages(doc, r);
    else readPrompt(doc, r);
    if (const auto n = integer(doc, "n", 1, 1000); n && *n != 1) throw invalid("only one choice per request ('n': 1)", "n");
    // (chat: logprobs true/false; completions: how many, 0 for none)
    const bool logprobs = chat ? boolean(doc, "logprobs") : integer(doc, "logprobs", 0, 20).value_or(0) > 0;
    if (logprobs || member(doc, "top_logprobs")) throw invalid("logprobs are not supported", "logprobs");
    if (const In* tools = member(doc, "tools"); tools && !(tools->is_array() && tools->empty())) throw invalid("tools (function calling) are not supported", "tools");
    if (const In* format = member(doc, "response_format")) {
        const In* type = format->is_object() ? member(*format, "type") : nullptr;
        if (!type || *type != "text") throw invalid("only text responses are supported ('response_format': {\"type\": \"text\"})", "response_format");
    }
    if (member(doc, "suffix")) throw invalid("'suffix' (fill in the middle) is not supported", "suffix");

    auto& s = r.params.sampling;
    if (const auto t = number(doc, "temperature", 0, 2)) s.temperature = static_cast<float>(*t);
    if (const auto p = number(doc, "top_p", 0, 1)) s.topP = *p <= 0 ? 1e-6f : static_cast<float>(*p);
    if (const auto k = integer(doc, "top_k", 0, 1 << 30)) s.topK = static_cast<int>(*k);
    if (const auto p = number(doc, "min_p", 0, 1)) s.minP = static_cast<float>(*p);
    if (const auto p = number(doc, "frequency_penalty", -2, 2)) s.frequencyPenalty = static_cast<float>(*p);
    if (const auto p = number(doc, "presence_penalty", -2, 2)) s.presencePenalty = static_cast<float>(*p);
    if (const auto p = number(doc, "repeat_penalty", 0.01, 10)) s.repeatPenalty = static_cast<float>(*p);
    if (const In* seed = member(doc, "seed")) {
        if (!seed->is_number_integer() && !seed->is_number_unsigned()) throw invalid("'seed' must be an integer", "seed");
        s.seed = seed->is_number_unsigned() ? seed->get<std::uint64_t>() : static_cast<std::uint64_t>(seed->get<std::int64_t>());
    } else {
        s.seed = std::random_device{}();
    }
    std::optional<std::int64_t> maxTokens = integer(doc, "max_completion_tokens", 1, INT32_MAX);
    if (!maxTokens) maxTokens = integer(doc, "max_tokens", 1, INT32_MAX);
    if (maxTokens) {
        r.params.maxTokens = static_cast<int>(*maxTokens);
        r.maxTokensGiven = true;
    }
    if (const In* stop = member(doc, "stop")) {
        if (stop->is_string()) {
            if (!stop->get_ref<const std::string&>().empty()) r.params.stopStrings.push_back(stop->get<std::string>());
        } else if (stop->is_array() && stop->size() <= kMaxStops) {
            for (const In& one : *stop) {
                if (!one.is_string()) throw invalid("'stop' must be a string or a list of strings", "stop");
                if (!one.get_ref<const std::string&>().empty()) r.params.stopStrings.push_back(one.get<std::string>());
            }
        } else {
            throw invalid("'stop' must be a string or a list of at most " + std::to_string(kMaxStops) + " strings", "stop");
        }
    }
    r.stream = boolean(doc, "stream");
    if (const In* options = member(doc, "stream_options")) {
        if (!options->is_object()) throw invalid("'stream_options' must be an object", "stream_options");
        r.includeUsage = boolean(*options, "include_usage");
    }
    return r;
}

EmbeddingRequest parseEmbeddingRequest(const std::string& body, const std::string& modelId) {
    if (inference::jsonNestingDepth(body) > kMaxRequestDepth) throw invalid("the request body nests deeper than " + std::to_string(kMaxRequestDepth) + " levels");
    const In doc = In::parse(body, nullptr, false);
    if (doc.is_discarded()) throw invalid("the request body is not valid JSON");
    if (!doc.is_object()) throw invalid("the request body must be a JSON object");
    if (const In* model = member(doc, "model")) {
        if (!model->is_string()) throw invalid("'model' must be a string", "model");
        if (*model != modelId)
            throw ApiError(404, "invalid_request_error", "model_not_found", "The model '" + model->get<std::string>() + "' does not exist; this server embeds with '" + modelId + "'", "model");
    }
    EmbeddingRequest r;
    if (const In* format = member(doc, "encoding_format")) {
        if (*format != "float" && *format != "base64") throw invalid("'encoding_format' is float or base64", "encoding_format");
        r.base64 = *format == "base64";
    }
    if (member(doc, "dimensions")) throw invalid("'dimensions' is not supported: the model's embeddings have one size", "dimensions");
    const In* input = member(doc, "input");
    if (!input) throw invalid("'input' is required", "input");
    const auto one = [&](const In& item) {
        EmbeddingRequest::Input in;
        if (item.is_string()) {
            const std::string& text = item.get_ref<const std::string&>();
            if (text.starts_with("data:image/")) {  // an image given as its data: URL
                in.image = true;
                in.data = imageBytes(In{{"image_url", text}});
            } else {
                if (text.empty()) throw invalid("an input is empty", "input");
                in.data = text;
            }
        } else if (item.is_object() && (member(item, "image_url") || member(item, "image"))) {
            in.image = true;
            in.data = imageBytes(member(item, "image_url") ? item : In{{"image_url", *member(item, "image")}});
        } else {
            throw invalid("each input is a text or an image (a data: URL, or {\"type\": \"image_url\", \"image_url\": {\"url\": ...}}); token ids are not taken", "input");
        }
        return in;
    };
    if (input->is_array()) {
        if (input->empty() || input->size() > kMaxEmbeddingInputs) throw invalid("'input' holds 1 to " + std::to_string(kMaxEmbeddingInputs) + " items", "input");
        for (const In& item : *input) r.inputs.push_back(one(item));
    } else {
        r.inputs.push_back(one(*input));
    }
    return r;
}

bool isLoopbackHost(const std::string& host) {
    if (host == "localhost" || host == "::1" || host == "[::1]") return true;
    if (!host.starts_with("127.")) return false;
    int dots = 0;
    for (char c : host) {
        if (c == '.') ++dots;
        else if (c < '0' || c > '9') return false;
    }
    return dots == 3;
}

// ---- the server ----


struct OpenAiServer::Impl {
    Impl(const LoadedLlm* model, const Projector* imageProjector, vision::ImageEncoder* embeddings, ServerOptions serverOptions)
        : llm(model), projector(imageProjector), embedder(embeddings), options(std::move(serverOptions)) {
        if (!llm) return;
        session = llm->newSession();
        generator.emplace(*session, *llm->llm.tokenizer);
        chatTemplate.emplace(llm->llm.templateOr("chatml"));
        markers = inference::reasoningMarkers(chatTemplate->source());
    }

    // Requests take the engine in the order they came.
    class Turn {
    public:
        // Throws ApiError (503) when the server stops while the request waits.
        explicit Turn(Impl& impl) : impl_(impl) {
            std::unique_lock lock(impl_.turnMutex);
            const std::uint64_t ticket = impl_.nextTicket++;
            impl_.turnChanged.wait(lock, [&] { return impl_.serving == ticket || impl_.stopping.load(); });
            if (impl_.serving != ticket) {
                impl_.abandoned.insert(ticket);  // (its turn is skipped when it comes)
                throw ApiError::shuttingDown();
            }
        }
        ~Turn() {
            std::lock_guard lock(impl_.turnMutex);
            ++impl_.serving;
            while (impl_.abandoned.erase(impl_.serving)) ++impl_.serving;
            impl_.turnChanged.notify_all();
        }
        Turn(const Turn&) = delete;
        Turn& operator=(const Turn&) = delete;

    private:
        Impl& impl_;
    };

    // A request's prompt, ready for the generator.
    struct Prepared {
        std::vector<inference::TokenId> tokens;
        std::vector<ImageRows> images;  // (their rows stay alive while `rows` points at them)
        inference::EmbeddingRows rows;
        std::string promptText;  // the rendered chat prompt (its end may open the reasoning)
    };

    struct Outcome {
        inference::GenerationResult result;
        std::string reasoning, answer;
    };

    Prepared prepare(const ApiRequest& r);
    // Runs a prepared request; `onPiece(reasoning, answer)` sees the text as it comes and returns
    // false when the client went away (the generation is then cancelled).
    Outcome generate(const ApiRequest& r, const Prepared& p, const std::function<bool(const std::string&, const std::string&)>& onPiece);
    void routes();
    void chatOrCompletion(const std::string& body, httplib::Response& res, bool chat);

    void embeddings(const std::string& body, httplib::Response& res);

    const LoadedLlm* llm;
    const Projector* projector;
    vision::ImageEncoder* embedder;
    ServerOptions options;
    httplib::Server http;
    std::unique_ptr<inference::LanguageSession> session;
    std::optional<inference::Generator> generator;
    vision::EmbeddingCache imageCache{std::size_t{256} << 20};
    std::optional<inference::ChatTemplate> chatTemplate;
    std::optional<inference::ReasoningMarkers> markers;
    std::atomic<bool> stopping{false};
    std::atomic<std::uint64_t> requests{0};
    std::int64_t created = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();

    // Runs `work` where the models may be used (ServerOptions::onEngine), and returns when it has.
    void onEngine(const std::function<void()>& work) {
        if (options.onEngine) options.onEngine(work, stopping);
        else work();
    }

    void log(const std::string& line) {
        if (!options.log) return;
        std::lock_guard lock(logMutex);  // (requests finish on many threads)
        options.log(line);
    }
    // Whether a request may go on: the API key when there is one; without one (the loopback),
    // a Host naming the loopback and, for a POST, a JSON body, so that a web page the user
    // visits can neither post to the server nor read its answers through DNS rebinding.
    bool admitted(const httplib::Request& req, httplib::Response& res) const;

    std::mutex turnMutex;
    std::condition_variable turnChanged;
    std::uint64_t nextTicket = 0, serving = 0;
    std::set<std::uint64_t> abandoned;  // tickets whose requests gave up waiting
    std::atomic<bool>* running = nullptr;  // the cancel flag of the generation under way (runningMutex)
    std::mutex runningMutex;
    std::mutex logMutex;
    std::mutex runMutex;
    std::condition_variable runEnded;
    bool serving_ = false;  // run() is in progress
};

namespace {

std::string dump(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }
std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

void sendError(httplib::Response& res, const ApiError& e) {
    res.status = e.status;
    res.set_content(dump(e.body()), "application/json");
}

const char* finishReason(inference::StopReason reason) {
    switch (reason) {
        case inference::StopReason::EndOfGeneration:
        case inference::StopReason::StopString:
        case inference::StopReason::Cancelled:
            return "stop";
        case inference::StopReason::MaxTokens:
        case inference::StopReason::ContextFull:
            return "length";
    }
    return "stop";
}

std::int64_t now() { return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count(); }

bool sameKey(const std::string& given, const std::string& key) {  // (in time that does not depend on where they differ)
    if (given.size() != key.size()) return false;
    unsigned char diff = 0;
    for (std::size_t i = 0; i < key.size(); ++i) diff |= static_cast<unsigned char>(given[i] ^ key[i]);
    return diff == 0;
}

}  // namespace

OpenAiServer::Impl::Prepared OpenAiServer::Impl::prepare(const ApiRequest& r) {
    Prepared p;
    const auto& tokenizer = *llm->llm.tokenizer;
    if (!r.images.empty() && !projector)
        throw invalid("this server's model cannot see images: start it with --mmproj (an image projector for the model)", "messages");
    std::vector<std::vector<inference::TokenId>> placeholders;
    if (!r.images.empty()) {
        Turn turn(*this);  // (the projector runs on the engine's turn)
        onEngine([&] {
            for (const std::string& bytes : r.images) {
                const QByteArray hash =
                    QCryptographicHash::hash(QByteArray::fromRawData(bytes.data(), static_cast<qsizetype>(bytes.size())), QCryptographicHash::Sha256).toHex();
                try {
                    p.images.push_back(
                        projectImage(*projector, imageCache, std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()), hash.toStdString()));
                } catch (const vision::ImageError& e) {
                    throw invalid(std::string("an image could not be read: ") + e.what(), "messages");
                }
                addRows(*projector, p.images.back(), p.rows);
                placeholders.push_back(p.images.back().placeholders);
            }
        });
    }
    try {
        if (r.chat) {
            p.promptText = chatTemplate->apply(r.messages, true, &tokenizer.vocabulary(), r.templateExtras);
            p.tokens = promptTokens(tokenizer, p.promptText, placeholders);
        } else if (r.promptIds) {
            for (const auto id : *r.promptIds) {
                if (!tokenizer.vocabulary().valid(id)) throw invalid("token id " + std::to_string(id) + " is not in this model's vocabulary", "prompt");
                p.tokens.push_back(id);
            }
        } else {
            p.tokens = tokenizer.encode(r.prompt, true, false);
        }
    } catch (const ApiError&) {
        throw;
    } catch (const std::exception& e) {  // a template that fails on these messages, images that do not match their markers
        throw invalid(std::string("the prompt could not be made: ") + e.what(), r.chat ? "messages" : "prompt");
    }
    const auto context = llm->contextSize;
    const std::int64_t asked = static_cast<std::int64_t>(p.tokens.size()) + (r.maxTokensGiven ? r.params.maxTokens : 1);
    if (asked > context)
        throw ApiError(400, "invalid_request_error", "context_length_exceeded",
                       "This model's maximum context length is " + std::to_string(context) + " tokens. However, you requested " +
                           std::to_string(asked) + " tokens (" + std::to_string(p.tokens.size()) + " in the " + (r.chat ? "messages" : "prompt") +
                           (r.maxTokensGiven ? ", " + std::to_string(r.params.maxTokens) + " in the completion" : std::string()) +
                           "). Please reduce the length of the " + (r.chat ? "messages" : "prompt") + " or completion.",
                       r.chat ? "messages" : "prompt");
    return p;
}

OpenAiServer::Impl::Outcome OpenAiServer::Impl::generate(const ApiRequest& r, const Prepared& p,
                                                          const std::function<bool(const std::string&, const std::string&)>& onPiece) {
    Outcome out;
    inference::GenerationParams params = r.params;
    if (!r.maxTokensGiven) params.maxTokens = static_cast<int>(llm->contextSize - static_cast<std::int64_t>(p.tokens.size()));
    std::optional<inference::ReasoningSplitter> splitter;
    if (r.chat && markers) {
        splitter.emplace(*markers, inference::promptOpensReasoning(p.promptText, *markers));
        params.renderSpecial = markers->harmony;
    }
    std::atomic<bool> cancel{false};
    const auto pass = [&](const inference::ReasoningSplitter::Pieces& pieces) {
        out.reasoning += pieces.reasoning;
        out.answer += pieces.answer;
        if ((pieces.reasoning.empty() && pieces.answer.empty()) || !onPiece) return true;
        return onPiece(pieces.reasoning, pieces.answer);
    };
    Turn turn(*this);
    {
        std::lock_guard lock(runningMutex);  // (stop() cancels it: a long prefill ends too)
        running = &cancel;
        if (stopping) cancel = true;
    }
    struct Done {
        Impl& impl;
        ~Done() {
            std::lock_guard lock(impl.runningMutex);  // (stop() never writes to a flag that is gone)
            impl.running = nullptr;
        }
    } done{*this};
    onEngine([&] {
        out.result = generator->generate(p.tokens, params, [&](std::string_view piece) {
            const bool more = pass(splitter ? splitter->feed(piece) : inference::ReasoningSplitter::Pieces{{}, std::string(piece)});
            if (!more || stopping) cancel = true;
            return more && !stopping;
        }, &cancel, {}, p.rows.empty() ? nullptr : &p.rows);
    });
    if (splitter) pass(splitter->finish());
    if (!splitter) out.answer = out.result.text;  // (the text without a matched stop string)
    return out;
}

void OpenAiServer::Impl::chatOrCompletion(const std::string& body, httplib::Response& res, bool chat) {
    const auto started = std::chrono::steady_clock::now();
    const std::string what = chat ? "chat.completions" : "completions";
    std::shared_ptr<const ApiRequest> request;
    std::shared_ptr<const Prepared> prepared;
    try {
        if (!llm) throw ApiError(404, "invalid_request_error", "model_not_found", "this server has no language model, only the embedding model '" + options.embeddingModelId + "'", "model");
        request = std::make_shared<const ApiRequest>(parseApiRequest(body, chat, options.modelId));
        prepared = std::make_shared<const Prepared>(prepare(*request));
    } catch (const ApiError& e) {
        sendError(res, e);
        log(what + " " + std::to_string(e.status) + ": " + e.what());
        return;
    }
    const std::string id = (chat ? "chatcmpl-" : "cmpl-") + std::to_string(created) + "-" + std::to_string(++requests);
    const std::int64_t when = now();
    const std::string echo = !chat && request->echo ? (request->promptIds ? llm->llm.tokenizer->decode(*request->promptIds) : request->prompt) : std::string();
    const auto usage = [](const Outcome& o) {
        const auto completion = static_cast<std::int64_t>(o.result.tokens.size());
        return Json{{"prompt_tokens", o.result.promptTokens}, {"completion_tokens", completion}, {"total_tokens", o.result.promptTokens + completion}};
    };
    const auto logDone = [this, what, started](const Outcome& o, const char* how) {
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        char line[200];
        std::snprintf(line, sizeof line, " %d prompt (%d reused) + %zu tokens, TTFT %.0f ms, %.1f tokens/s, %.2f s", o.result.promptTokens,
                      o.result.reusedPromptTokens, o.result.tokens.size(), o.result.ttftMs, o.result.decodeTokensPerSecond, seconds);
        log(what + " " + how + line);
    };

    if (!request->stream) {
        Outcome o;
        try {
            o = generate(*request, *prepared, {});
            if (o.result.stopReason == inference::StopReason::Cancelled) throw ApiError::shuttingDown();
        } catch (const ApiError& e) {
            sendError(res, e);
            return;
        } catch (const std::exception& e) {
            sendError(res, ApiError(500, "server_error", {}, std::string("generation failed: ") + e.what()));
            return;
        }
        Json reply{{"id", id}, {"object", chat ? "chat.completion" : "text_completion"}, {"created", when}, {"model", options.modelId}};
        Json choice{{"index", 0}};
        if (chat) {
            Json message{{"role", "assistant"}, {"content", o.answer}};
            if (!o.reasoning.empty()) message["reasoning_content"] = o.reasoning;
            choice["message"] = std::move(message);
        } else {
            choice["text"] = echo + o.answer;
        }
        choice["logprobs"] = nullptr;
        choice["finish_reason"] = finishReason(o.result.stopReason);
        reply["choices"] = Json::array({std::move(choice)});
        reply["usage"] = usage(o);
        res.set_content(dump(reply), "application/json");
        logDone(o, "200");
        return;
    }

    // Streamed: a chunk per piece of text as server-sent events, then the finish, the usage
    // when asked, and [DONE]. A client that goes away cancels the generation.
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider("text/event-stream", [this, request, prepared, id, when, chat, echo, usage, logDone](std::size_t, httplib::DataSink& sink) {
      // (nothing may leave the provider: the library calls it outside its own handlers)
      try {
        const auto send = [&](const Json& event) {
            const std::string data = "data: " + dump(event) + "\n\n";
            return sink.write(data.data(), data.size());
        };
        const auto chunk = [&](Json choice) {
            choice["index"] = 0;
            choice["logprobs"] = nullptr;
            if (!choice.contains("finish_reason")) choice["finish_reason"] = nullptr;
            return Json{{"id", id}, {"object", chat ? "chat.completion.chunk" : "text_completion"}, {"created", when}, {"model", options.modelId},
                        {"choices", Json::array({std::move(choice)})}};
        };
        bool open = chat ? send(chunk({{"delta", {{"role", "assistant"}, {"content", ""}}}})) : (echo.empty() || send(chunk({{"text", echo}})));
        Outcome o;
        try {
            if (open)
                o = generate(*request, *prepared, [&](const std::string& reasoning, const std::string& answer) {
                    if (chat) {
                        Json delta = Json::object();
                        if (!reasoning.empty()) delta["reasoning_content"] = reasoning;
                        if (!answer.empty()) delta["content"] = answer;
                        open = send(chunk({{"delta", std::move(delta)}}));
                    } else {
                        open = send(chunk({{"text", answer}}));
                    }
                    return open;
                });
        } catch (const ApiError& e) {
            if (open) send(e.body());
            sink.done();
            return true;
        } catch (const std::exception& e) {
            if (open) send(ApiError(500, "server_error", {}, std::string("generation failed: ") + e.what()).body());
            sink.done();
            return true;
        }
        if (!open) {
            logDone(o, "cancelled: the client went away,");
            return false;
        }
        if (o.result.stopReason == inference::StopReason::Cancelled) {  // (the server stops: no [DONE], the reply is not whole)
            send(ApiError::shuttingDown().body());
            sink.done();
            return true;
        }
        Json last = chat ? Json{{"delta", Json::object()}} : Json{{"text", ""}};
        last["finish_reason"] = finishReason(o.result.stopReason);
        if (send(chunk(std::move(last))) && request->includeUsage) {
            Json event{{"id", id}, {"object", chat ? "chat.completion.chunk" : "text_completion"}, {"created", when}, {"model", options.modelId},
                       {"choices", Json::array()}, {"usage", usage(o)}};
            send(event);
        }
        static constexpr char kDone[] = "data: [DONE]\n\n";
        sink.write(kDone, sizeof kDone - 1);
        sink.done();
        logDone(o, "200 (streamed)");
        return true;
      } catch (...) {
        return false;
      }
    });
}

void OpenAiServer::Impl::embeddings(const std::string& body, httplib::Response& res) {
    const auto started = std::chrono::steady_clock::now();
    try {
        if (!embedder) throw ApiError(404, "invalid_request_error", "model_not_found", "this server has no embedding model: start it with --embed-model DIR (CLIP or DINOv2)", "model");
        const EmbeddingRequest r = parseEmbeddingRequest(body, options.embeddingModelId);
        auto* clip = dynamic_cast<vision::ClipModel*>(embedder);
        Json data = Json::array();
        std::int64_t tokens = 0;
        Turn turn(*this);  // (the encoder's backend serves one request at a time)
        onEngine([&] {
        for (std::size_t i = 0; i < r.inputs.size(); ++i) {
            const auto& in = r.inputs[i];
            std::vector<float> e;
            if (in.image) {
                try {
                    e = embedder->embedImage(vision::decodeImage(std::span(reinterpret_cast<const std::uint8_t*>(in.data.data()), in.data.size())));
                } catch (const vision::ImageError& error) {
                    throw invalid("input " + std::to_string(i) + " is not an image Lumen can read: " + error.what(), "input");
                }
            } else {
                if (!clip || !clip->hasText()) throw invalid("this embedding model embeds images only (texts need a CLIP model with its text encoder)", "input");
                e = clip->embedText(in.data);
                tokens += static_cast<std::int64_t>(clip->tokenizer().encode(in.data).size()) + 2;  // (with its two markers)
            }
            vision::normalize(e);  // (unit length, as OpenAI's embeddings are)
            Json item{{"object", "embedding"}, {"index", i}};
            if (r.base64) item["embedding"] = QByteArray(reinterpret_cast<const char*>(e.data()), static_cast<qsizetype>(e.size() * sizeof(float))).toBase64().toStdString();
            else item["embedding"] = e;
            data.push_back(std::move(item));
        }
        });
        res.set_content(dump(Json{{"object", "list"}, {"data", std::move(data)}, {"model", options.embeddingModelId},
                                  {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}}),
                        "application/json");
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        log("embeddings 200 " + std::to_string(r.inputs.size()) + " input(s), " + std::to_string(seconds).substr(0, 5) + " s");
    } catch (const ApiError& e) {
        sendError(res, e);
        log(std::string("embeddings ") + std::to_string(e.status) + ": " + e.what());
    }
}

bool OpenAiServer::Impl::admitted(const httplib::Request& req, httplib::Response& res) const {
    if (!options.apiKey.empty()) {
        const std::string header = req.get_header_value("Authorization");
        const std::string given = header.starts_with("Bearer ") ? header.substr(7) : std::string();
        if (sameKey(given, options.apiKey)) return true;
        sendError(res, ApiError(401, "invalid_request_error", "invalid_api_key",
                                given.empty() ? "This server needs an API key: send it as 'Authorization: Bearer KEY'" : "Incorrect API key provided"));
        return false;
    }
    std::string host = req.get_header_value("Host");
    if (host.starts_with("[")) host = host.substr(0, host.find(']') + 1);
    else host = host.substr(0, host.rfind(':') == std::string::npos ? host.size() : host.rfind(':'));
    if (!isLoopbackHost(host)) {
        sendError(res, ApiError(403, "invalid_request_error", "forbidden_host", "this server answers requests for the loopback address only"));
        return false;
    }
    if (req.method == "POST" && !req.get_header_value("Content-Type").starts_with("application/json")) {
        sendError(res, ApiError(415, "invalid_request_error", "unsupported_media_type", "the request body must be JSON (Content-Type: application/json)"));
        return false;
    }
    return true;
}

void OpenAiServer::Impl::routes() {
    // A connection holds a worker while it is kept alive, so there are workers for many clients
    // (they wait for the engine's turn, not for a thread).
    http.new_task_queue = [] { return new httplib::ThreadPool(kConnectionThreads); };
    http.set_payload_max_length(options.maxBodyBytes);
    http.set_read_timeout(options.readTimeoutSeconds);
    http.set_keep_alive_timeout(options.keepAliveSeconds);
    // A request with neither a length nor chunks has no body (HTTP/1.1); the library would wait
    // for the connection to close instead, holding a worker until its read timeout.
    http.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
        if (req.method != "POST" || req.has_header("Content-Length") ||
            req.get_header_value("Transfer-Encoding").find("chunked") != std::string::npos)
            return httplib::Server::HandlerResponse::Unhandled;
        sendError(res, ApiError(411, "invalid_request_error", "length_required", "the request must say its body's length (Content-Length) or send it chunked"));
        return httplib::Server::HandlerResponse::Handled;
    });
    http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return;
        if (res.status == 404)
            sendError(res, ApiError(404, "invalid_request_error", "unknown_url", "Unknown request URL: " + req.method + " " + req.path));
        else if (res.status == 413)
            sendError(res, ApiError(413, "invalid_request_error", "request_too_large", "The request body is too large"));
        else
            sendError(res, ApiError(res.status, "invalid_request_error", {}, "The request could not be read (HTTP " + std::to_string(res.status) + ")"));
    });
    http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr error) {
        std::string message = "internal error";
        try {
            std::rethrow_exception(error);
        } catch (const std::exception& e) {
            message = e.what();
        } catch (...) {
        }
        sendError(res, ApiError(500, "server_error", {}, message));
    });
    http.Get("/health", [](const httplib::Request&, httplib::Response& res) { res.set_content(R"({"status":"ok"})", "application/json"); });
    const auto served = [this] {
        Json list = Json::array();
        if (llm) list.push_back({{"id", options.modelId}, {"object", "model"}, {"created", created}, {"owned_by", "lumen"}});
        if (embedder) list.push_back({{"id", options.embeddingModelId}, {"object", "model"}, {"created", created}, {"owned_by", "lumen"}});
        return list;
    };
    http.Get("/v1/models", [this, served](const httplib::Request& req, httplib::Response& res) {
        if (!admitted(req, res)) return;
        res.set_content(dump(Json{{"object", "list"}, {"data", served()}}), "application/json");
    });
    http.Get("/v1/models/(.+)", [this, served](const httplib::Request& req, httplib::Response& res) {
        if (!admitted(req, res)) return;
        for (const Json& model : served())
            if (model["id"] == req.matches[1].str()) {
                res.set_content(dump(model), "application/json");
                return;
            }
        sendError(res, ApiError(404, "invalid_request_error", "model_not_found", "The model '" + req.matches[1].str() + "' does not exist", "model"));
    });
    // The body is read here, not by the library: its limit (set_payload_max_length) holds only for
    // bodies that state their length, and a chunked one could otherwise grow without end.
    const auto post = [this](std::function<void(const std::string&, httplib::Response&)> handle) {
        return [this, handle](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& read) {
            // The whole body is read (past the limit it is read and dropped), so that the
            // connection's next request starts where this one ends.
            std::string body;
            bool tooLarge = false;
            const bool whole = read([&](const char* data, std::size_t size) {
                if (!tooLarge && body.size() + size > options.maxBodyBytes) {
                    tooLarge = true;
                    body.clear();
                    body.shrink_to_fit();
                }
                if (!tooLarge) body.append(data, size);
                return true;
            });
            if (tooLarge || res.status == 413) {
                sendError(res, ApiError(413, "invalid_request_error", "request_too_large",
                                        "The request body is larger than " + std::to_string(options.maxBodyBytes >> 20) + " MiB"));
                return;
            }
            if (!whole) {
                sendError(res, invalid("the request body could not be read"));
                return;
            }
            if (!admitted(req, res)) return;
            handle(body, res);
        };
    };
    http.Post("/v1/chat/completions", post([this](const std::string& body, httplib::Response& res) { chatOrCompletion(body, res, true); }));
    http.Post("/v1/completions", post([this](const std::string& body, httplib::Response& res) { chatOrCompletion(body, res, false); }));
    http.Post("/v1/embeddings", post([this](const std::string& body, httplib::Response& res) { embeddings(body, res); }));
}

OpenAiServer::OpenAiServer(const LoadedLlm* llm, const Projector* projector, vision::ImageEncoder* embedder, ServerOptions options)
    : impl_(std::make_unique<Impl>(llm, projector, embedder, std::move(options))) {
    if (impl_->options.modelId.empty() && llm) impl_->options.modelId = llm->llm.fileName;
    if (impl_->options.embeddingModelId.empty()) impl_->options.embeddingModelId = "embeddings";
    impl_->routes();
}

OpenAiServer::~OpenAiServer() {
    stop();
    std::unique_lock lock(impl_->runMutex);  // (run() on another thread ends before what it uses goes)
    impl_->runEnded.wait(lock, [&] { return !impl_->serving_; });
}

int OpenAiServer::bind() {
    const ServerOptions& o = impl_->options;
    if (!isLoopbackHost(o.host) && o.apiKey.empty())
        throw std::runtime_error("serving on " + o.host + " (beyond this machine) needs an API key: give one with --api-key");
    const int port = o.port == 0 ? impl_->http.bind_to_any_port(o.host) : (impl_->http.bind_to_port(o.host, o.port) ? o.port : -1);
    if (port <= 0) throw std::runtime_error("cannot listen on " + o.host + ":" + std::to_string(o.port) + " (the port is in use, or the address is not this machine's)");
    return port;
}

void OpenAiServer::run() {
    std::signal(SIGPIPE, SIG_IGN);  // (a client that went away is a failed write, not the end of the process)
    {
        std::lock_guard lock(impl_->runMutex);
        if (impl_->stopping) return;
        impl_->serving_ = true;
    }
    struct Ended {
        Impl& impl;
        ~Ended() {
            std::lock_guard lock(impl.runMutex);
            impl.serving_ = false;
            impl.runEnded.notify_all();
        }
    } ended{*impl_};
    impl_->http.listen_after_bind();
}

void OpenAiServer::stop() {
    impl_->stopping = true;
    {
        std::lock_guard lock(impl_->runningMutex);
        if (impl_->running) impl_->running->store(true);
    }
    {
        std::lock_guard lock(impl_->turnMutex);
        impl_->turnChanged.notify_all();
    }
    // The library's stop() does nothing before it listens: while run() is getting there, it is
    // asked again until it is listening (or run() has ended).
    while (true) {
        {
            std::lock_guard lock(impl_->runMutex);
            if (!impl_->serving_) break;
        }
        if (impl_->http.is_running()) {
            impl_->http.stop();
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    impl_->http.stop();
}

bool OpenAiServer::isListening() const { return impl_->http.is_running(); }

}  // namespace lumen::app
