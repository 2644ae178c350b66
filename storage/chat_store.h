#pragma once
// Chats and their messages. Messages are ordered by id (insertion order). An assistant reply is
// written while it streams: created `partial`, appended to, then finished as complete, stopped
// or error (see StreamingMessageWriter).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/database.h"

namespace lumen::storage {

enum class Role { System, User, Assistant };
enum class MessageStatus { Partial, Complete, Stopped, Error };

std::string_view toString(Role role);
std::string_view toString(MessageStatus status);
// Parse the stored spelling; nullopt for anything else.
std::optional<Role> roleFromString(std::string_view text);
std::optional<MessageStatus> statusFromString(std::string_view text);

struct Chat {
    std::int64_t id = 0;
    std::string title;
    std::int64_t createdAt = 0;  // ms since the epoch
    std::int64_t updatedAt = 0;
};

struct GenerationMetrics {
    std::optional<std::int64_t> promptTokens;
    std::optional<std::int64_t> generatedTokens;
    std::optional<double> ttftMs;
    std::optional<double> tokensPerSecond;
    std::optional<std::string> model;
    std::optional<double> reasoningMs;  // how long a reasoning model thought before answering

    bool operator==(const GenerationMetrics&) const = default;
};

struct Message {
    std::int64_t id = 0;
    std::int64_t chatId = 0;
    Role role = Role::User;
    std::string content;
    MessageStatus status = MessageStatus::Complete;
    std::optional<std::string> error;
    std::int64_t createdAt = 0;
    std::int64_t updatedAt = 0;
    GenerationMetrics metrics;
    std::vector<std::string> images;  // SHA-256 of attached images, in order
    std::string reasoning;            // a reasoning model's thinking before `content` (empty for others)
};

struct NewMessage {
    Role role = Role::User;
    std::string content;
    MessageStatus status = MessageStatus::Complete;
    GenerationMetrics metrics;
    std::vector<std::string> images;  // must already be in the ImageStore
    std::optional<std::string> error;
    std::optional<std::int64_t> createdAt;  // now when unset (import keeps the original)
    std::string reasoning;
};

struct SearchHit {
    std::int64_t chatId = 0;
    std::string chatTitle;
    std::optional<std::int64_t> messageId;  // unset when the title matched
    std::string snippet;                    // the matching text with markers around the hits
};

struct SnippetMarkers {
    std::string open = "[";
    std::string close = "]";
    std::string ellipsis = "…";
};

class ChatStore {
public:
    explicit ChatStore(Database& db) : c_(db.connection()) {}

    Chat createChat(std::string_view title);
    std::optional<Chat> chat(std::int64_t id);
    // Most recently updated first.
    std::vector<Chat> chats();
    void renameChat(std::int64_t id, std::string_view title);
    // Sets both times as given (import keeps the original ones).
    void setTimestamps(std::int64_t id, std::int64_t createdAt, std::int64_t updatedAt);
    // Deletes the chat with its messages and their attachments (the images themselves stay
    // until ImageStore::pruneUnreferenced).
    void deleteChat(std::int64_t id);

    // A chat's own settings (generation parameters that differ from the general ones): they go
    // when the chat does, and chat exports carry them.
    std::optional<std::string> setting(std::int64_t chatId, std::string_view key);
    std::map<std::string, std::string> settings(std::int64_t chatId);
    void setSetting(std::int64_t chatId, std::string_view key, std::string_view value);
    void removeSetting(std::int64_t chatId, std::string_view key);

    std::int64_t addMessage(std::int64_t chatId, const NewMessage& message);
    std::optional<Message> message(std::int64_t id);
    std::vector<Message> messages(std::int64_t chatId);
    void setContent(std::int64_t messageId, std::string_view content);
    void appendContent(std::int64_t messageId, std::string_view piece);
    // Appends to the answer and to the reasoning in one statement.
    void appendContent(std::int64_t messageId, std::string_view piece, std::string_view reasoning);
    void finishMessage(std::int64_t messageId, MessageStatus status, const GenerationMetrics& metrics,
                       std::optional<std::string_view> error = std::nullopt);
    void deleteMessage(std::int64_t messageId);
    // Deletes this message and every later one in its chat (regenerate, edit and resend).
    void truncateFrom(std::int64_t messageId);
    // Marks replies left `partial` by a crash or kill as `stopped`; returns how many.
    int closeInterruptedMessages();

    // Full-text search over chat titles and message text. `query` is what the user typed: its
    // words must all appear (the last one as a prefix, for search-as-you-type). Title matches
    // come first, then messages by relevance.
    std::vector<SearchHit> search(std::string_view query, int limit = 50,
                                  const SnippetMarkers& markers = {});

private:
    void touchChat(std::int64_t chatId, std::int64_t now);
    Connection& c_;
};

// The FTS5 query for what a user typed: each word quoted (so FTS5 syntax characters are plain
// text), all required, the last one a prefix. Empty when the text has no words.
std::string ftsQueryFromUserText(std::string_view text);

}  // namespace lumen::storage
