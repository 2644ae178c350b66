#include "storage/chat_export.h"

#include <algorithm>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "storage/base64.h"
#include "storage/sha256.h"

namespace lumen::storage {
namespace {

using Json = nlohmann::ordered_json;

constexpr int kFormatVersion = 1;

Chat requireChat(ChatStore& chats, std::int64_t chatId) {
    auto chat = chats.chat(chatId);
    if (!chat) throw Error("chat " + std::to_string(chatId) + " does not exist");
    return *chat;
}

std::string formatUtc(std::int64_t ms) {
    const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    char buffer[32];
    std::strftime(buffer, sizeof buffer, "%Y-%m-%d %H:%M UTC", &tm);
    return buffer;
}

std::string formatNumber(double value, int decimals) {
    std::ostringstream out;
    out.setf(std::ios::fixed);
    out.precision(decimals);
    out << value;
    return out.str();
}

std::string roleTitle(Role role) {
    switch (role) {
        case Role::System: return "System";
        case Role::User: return "User";
        case Role::Assistant: return "Assistant";
    }
    return "User";
}

// ---- JSON reading with errors that say where ----

[[noreturn]] void bad(const std::string& where, const std::string& what) {
    throw Error("not a valid Lumen chat export: " + where + ": " + what);
}

const Json& field(const Json& object, const char* key, const std::string& where) {
    const auto it = object.find(key);
    if (it == object.end()) bad(where, std::string("missing \"") + key + "\"");
    return *it;
}

std::string stringField(const Json& object, const char* key, const std::string& where) {
    const Json& v = field(object, key, where);
    if (!v.is_string()) bad(where, std::string("\"") + key + "\" must be a string");
    return v.get<std::string>();
}

std::int64_t intField(const Json& object, const char* key, const std::string& where) {
    const Json& v = field(object, key, where);
    if (!v.is_number_integer()) bad(where, std::string("\"") + key + "\" must be an integer");
    return v.get<std::int64_t>();
}

template <typename T>
std::optional<T> optionalNumber(const Json& object, const char* key, const std::string& where) {
    const auto it = object.find(key);
    if (it == object.end() || it->is_null()) return std::nullopt;
    if constexpr (std::is_integral_v<T>) {
        if (!it->is_number_integer()) bad(where, std::string("\"") + key + "\" must be an integer");
    } else {
        if (!it->is_number()) bad(where, std::string("\"") + key + "\" must be a number");
    }
    return it->get<T>();
}

std::optional<std::string> optionalString(const Json& object, const char* key, const std::string& where) {
    const auto it = object.find(key);
    if (it == object.end() || it->is_null()) return std::nullopt;
    if (!it->is_string()) bad(where, std::string("\"") + key + "\" must be a string");
    return it->get<std::string>();
}

Bytes base64Field(const std::string& text, const std::string& where) {
    auto bytes = base64Decode(text);
    if (!bytes) bad(where, "invalid base64 data");
    return std::move(*bytes);
}

}  // namespace

std::string exportChatMarkdown(ChatStore& chats, ImageStore& images, std::int64_t chatId) {
    const Chat chat = requireChat(chats, chatId);
    std::string md = "# " + chat.title + "\n\n";
    md += "_Exported from Lumen. Started " + formatUtc(chat.createdAt) + "._\n";
    for (const Message& m : chats.messages(chatId)) {
        md += "\n## " + roleTitle(m.role) + " · " + formatUtc(m.createdAt) + "\n\n";
        if (!m.reasoning.empty()) {
            // The reasoning as a quote above the answer.
            md += "> *Reasoning*\n>\n";
            std::size_t start = 0;
            while (start <= m.reasoning.size()) {
                const std::size_t end = std::min(m.reasoning.find('\n', start), m.reasoning.size());
                md += "> " + m.reasoning.substr(start, end - start) + "\n";
                start = end + 1;
            }
            md += "\n";
        }
        md += m.content;
        if (!m.content.empty() && m.content.back() != '\n') md += '\n';
        for (const std::string& sha : m.images) {
            const auto info = images.info(sha);
            md += "\n*[image";
            if (info)
                md += ": " + std::to_string(info->width) + "×" + std::to_string(info->height) + " " +
                      info->mimeType;
            md += ", sha256 " + sha.substr(0, 12) + "]*\n";
        }
        std::vector<std::string> footer;
        if (m.metrics.model) footer.push_back(*m.metrics.model);
        if (m.metrics.ttftMs) footer.push_back("TTFT " + formatNumber(*m.metrics.ttftMs, 0) + " ms");
        if (m.metrics.tokensPerSecond)
            footer.push_back(formatNumber(*m.metrics.tokensPerSecond, 1) + " tokens/s");
        if (m.metrics.generatedTokens) footer.push_back(std::to_string(*m.metrics.generatedTokens) + " tokens");
        if (m.status == MessageStatus::Stopped) footer.push_back("stopped");
        if (m.status == MessageStatus::Partial) footer.push_back("incomplete");
        if (m.status == MessageStatus::Error) footer.push_back("error: " + m.error.value_or("unknown"));
        if (!footer.empty()) {
            md += "\n*";
            for (std::size_t i = 0; i < footer.size(); ++i) md += (i ? " · " : "") + footer[i];
            md += "*\n";
        }
    }
    return md;
}

std::string exportChatJson(ChatStore& chats, ImageStore& images, std::int64_t chatId) {
    const Chat chat = requireChat(chats, chatId);
    Json root;
    root["format"] = "lumen-chat";
    root["version"] = kFormatVersion;
    root["title"] = chat.title;
    root["created_at_ms"] = chat.createdAt;
    root["updated_at_ms"] = chat.updatedAt;
    Json messages = Json::array();
    std::map<std::string, bool> imageHashes;
    for (const Message& m : chats.messages(chatId)) {
        Json jm;
        jm["role"] = toString(m.role);
        jm["content"] = m.content;
        if (!m.reasoning.empty()) jm["reasoning"] = m.reasoning;
        jm["status"] = toString(m.status);
        jm["created_at_ms"] = m.createdAt;
        if (m.error) jm["error"] = *m.error;
        if (!m.images.empty()) {
            jm["images"] = m.images;
            for (const auto& sha : m.images) imageHashes[sha] = true;
        }
        Json metrics = Json::object();
        if (m.metrics.promptTokens) metrics["prompt_tokens"] = *m.metrics.promptTokens;
        if (m.metrics.generatedTokens) metrics["generated_tokens"] = *m.metrics.generatedTokens;
        if (m.metrics.ttftMs) metrics["ttft_ms"] = *m.metrics.ttftMs;
        if (m.metrics.tokensPerSecond) metrics["tokens_per_second"] = *m.metrics.tokensPerSecond;
        if (m.metrics.model) metrics["model"] = *m.metrics.model;
        if (m.metrics.reasoningMs) metrics["reasoning_ms"] = *m.metrics.reasoningMs;
        if (!metrics.empty()) jm["metrics"] = std::move(metrics);
        messages.push_back(std::move(jm));
    }
    root["messages"] = std::move(messages);
    if (const auto own = chats.settings(chatId); !own.empty()) root["settings"] = own;  // (the chat's own generation settings)
    Json jimages = Json::object();
    for (const auto& [sha, used] : imageHashes) {
        const auto info = images.info(sha);
        const auto bytes = images.bytes(sha);
        if (!info || !bytes) throw Error("image " + sha + " is missing from the database");
        Json ji;
        ji["mime_type"] = info->mimeType;
        ji["width"] = info->width;
        ji["height"] = info->height;
        ji["data"] = base64Encode(*bytes);
        if (const auto thumb = images.thumbnail(sha)) ji["thumbnail"] = base64Encode(*thumb);
        jimages[sha] = std::move(ji);
    }
    root["images"] = std::move(jimages);
    return root.dump(2) + "\n";
}

std::int64_t importChatJson(Database& db, std::string_view text) {
    Json root;
    // Deeper than any export: refused while parsing (the walks below recurse once per level).
    constexpr int kMaxDepth = 64;
    const Json::parser_callback_t depthLimit = [](int depth, Json::parse_event_t, Json&) {
        if (depth > kMaxDepth) throw Error("not a valid Lumen chat export: it nests deeper than " + std::to_string(kMaxDepth) + " levels");
        return true;
    };
    try {
        root = Json::parse(text.begin(), text.end(), depthLimit);
    } catch (const Json::exception& e) {
        throw Error(std::string("not a valid Lumen chat export: the file is not JSON (") + e.what() + ")");
    }
    if (!root.is_object()) bad("top level", "must be an object");
    if (stringField(root, "format", "top level") != "lumen-chat") bad("top level", "\"format\" is not \"lumen-chat\"");
    const std::int64_t version = intField(root, "version", "top level");
    if (version != kFormatVersion)
        bad("top level", "version " + std::to_string(version) + " is not supported (this Lumen reads version " +
                             std::to_string(kFormatVersion) + ")");
    const std::string title = stringField(root, "title", "top level");
    const std::int64_t createdAt = intField(root, "created_at_ms", "top level");
    const std::int64_t updatedAt = intField(root, "updated_at_ms", "top level");
    const Json& jmessages = field(root, "messages", "top level");
    if (!jmessages.is_array()) bad("top level", "\"messages\" must be an array");
    const Json& jimages = field(root, "images", "top level");
    if (!jimages.is_object()) bad("top level", "\"images\" must be an object");

    Transaction tx(db.connection());
    ChatStore chats(db);
    ImageStore images(db);
    for (const auto& [sha, ji] : jimages.items()) {
        const std::string where = "image " + sha;
        if (!ji.is_object()) bad(where, "must be an object");
        const Bytes data = base64Field(stringField(ji, "data", where), where);
        if (sha256Hex(data) != sha) bad(where, "its data does not match its SHA-256");
        const auto thumbText = optionalString(ji, "thumbnail", where);
        const Bytes thumb = thumbText ? base64Field(*thumbText, where) : Bytes();
        const std::int64_t width = intField(ji, "width", where), height = intField(ji, "height", where);
        if (width < 0 || height < 0 || width > 1'000'000 || height > 1'000'000) bad(where, "impossible size");
        images.put({data, stringField(ji, "mime_type", where), static_cast<int>(width),
                    static_cast<int>(height), thumb});
    }

    const Chat chat = chats.createChat(title);
    if (const auto it = root.find("settings"); it != root.end()) {
        if (!it->is_object()) bad("top level", "\"settings\" must be an object");
        for (const auto& [key, value] : it->items()) {
            if (!value.is_string()) bad("setting \"" + key + "\"", "must be a string");
            chats.setSetting(chat.id, key, value.get<std::string>());
        }
    }
    for (std::size_t i = 0; i < jmessages.size(); ++i) {
        const Json& jm = jmessages[i];
        const std::string where = "message " + std::to_string(i + 1);
        if (!jm.is_object()) bad(where, "must be an object");
        NewMessage m;
        const std::string role = stringField(jm, "role", where);
        const auto parsedRole = roleFromString(role);
        if (!parsedRole) bad(where, "unknown role \"" + role + "\"");
        m.role = *parsedRole;
        m.content = stringField(jm, "content", where);
        m.reasoning = optionalString(jm, "reasoning", where).value_or("");
        const std::string status = stringField(jm, "status", where);
        const auto parsedStatus = statusFromString(status);
        if (!parsedStatus) bad(where, "unknown status \"" + status + "\"");
        m.status = *parsedStatus;
        m.createdAt = intField(jm, "created_at_ms", where);
        m.error = optionalString(jm, "error", where);
        if (const auto it = jm.find("images"); it != jm.end()) {
            if (!it->is_array()) bad(where, "\"images\" must be an array");
            for (const Json& sha : *it) {
                if (!sha.is_string()) bad(where, "image references must be strings");
                if (!jimages.contains(sha.get<std::string>()))
                    bad(where, "refers to image " + sha.get<std::string>() + " which the file does not contain");
                m.images.push_back(sha.get<std::string>());
            }
        }
        if (const auto it = jm.find("metrics"); it != jm.end()) {
            if (!it->is_object()) bad(where, "\"metrics\" must be an object");
            m.metrics.promptTokens = optionalNumber<std::int64_t>(*it, "prompt_tokens", where);
            m.metrics.generatedTokens = optionalNumber<std::int64_t>(*it, "generated_tokens", where);
            m.metrics.ttftMs = optionalNumber<double>(*it, "ttft_ms", where);
            m.metrics.tokensPerSecond = optionalNumber<double>(*it, "tokens_per_second", where);
            m.metrics.model = optionalString(*it, "model", where);
            m.metrics.reasoningMs = optionalNumber<double>(*it, "reasoning_ms", where);
        }
        chats.addMessage(chat.id, m);
    }
    chats.setTimestamps(chat.id, createdAt, updatedAt);
    tx.commit();
    return chat.id;
}

}  // namespace lumen::storage
