#include "storage/chat_store.h"

#include <cctype>
#include <map>

#include "storage/clock.h"

namespace lumen::storage {
namespace {

constexpr std::string_view kMessageColumns =
    "id, chat_id, role, content, status, error, created_at, updated_at, prompt_tokens, "
    "generated_tokens, ttft_ms, tokens_per_second, model, reasoning, reasoning_ms";

Message readMessage(const Statement& s) {
    Message m;
    m.id = s.getInt(0);
    m.chatId = s.getInt(1);
    const std::string role = s.getText(2);
    const auto parsedRole = roleFromString(role);
    if (!parsedRole) throw Error("message " + std::to_string(m.id) + " has an unknown role '" + role + "'");
    m.role = *parsedRole;
    m.content = s.getText(3);
    const std::string status = s.getText(4);
    const auto parsedStatus = statusFromString(status);
    if (!parsedStatus)
        throw Error("message " + std::to_string(m.id) + " has an unknown status '" + status + "'");
    m.status = *parsedStatus;
    m.error = s.getOptionalText(5);
    m.createdAt = s.getInt(6);
    m.updatedAt = s.getInt(7);
    m.metrics.promptTokens = s.getOptionalInt(8);
    m.metrics.generatedTokens = s.getOptionalInt(9);
    m.metrics.ttftMs = s.getOptionalDouble(10);
    m.metrics.tokensPerSecond = s.getOptionalDouble(11);
    m.metrics.model = s.getOptionalText(12);
    m.reasoning = s.getText(13);
    m.metrics.reasoningMs = s.getOptionalDouble(14);
    return m;
}

Chat readChat(const Statement& s) {
    return Chat{s.getInt(0), s.getText(1), s.getInt(2), s.getInt(3)};
}

bool isSpace(unsigned char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v'; }

}  // namespace

std::string_view toString(Role role) {
    switch (role) {
        case Role::System: return "system";
        case Role::User: return "user";
        case Role::Assistant: return "assistant";
    }
    return "user";
}

std::string_view toString(MessageStatus status) {
    switch (status) {
        case MessageStatus::Partial: return "partial";
        case MessageStatus::Complete: return "complete";
        case MessageStatus::Stopped: return "stopped";
        case MessageStatus::Error: return "error";
    }
    return "complete";
}

std::optional<Role> roleFromString(std::string_view text) {
    if (text == "system") return Role::System;
    if (text == "user") return Role::User;
    if (text == "assistant") return Role::Assistant;
    return std::nullopt;
}

std::optional<MessageStatus> statusFromString(std::string_view text) {
    if (text == "partial") return MessageStatus::Partial;
    if (text == "complete") return MessageStatus::Complete;
    if (text == "stopped") return MessageStatus::Stopped;
    if (text == "error") return MessageStatus::Error;
    return std::nullopt;
}

Chat ChatStore::createChat(std::string_view title) {
    const std::int64_t now = nowMs();
    c_.prepare("INSERT INTO chats(title, created_at, updated_at) VALUES (?, ?, ?)")
        .bindAll(title, now, now)
        .run();
    return Chat{c_.lastInsertRowId(), std::string(title), now, now};
}

std::optional<Chat> ChatStore::chat(std::int64_t id) {
    Statement s = c_.prepare("SELECT id, title, created_at, updated_at FROM chats WHERE id = ?");
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    return readChat(s);
}

std::vector<Chat> ChatStore::chats() {
    Statement s = c_.prepare(
        "SELECT id, title, created_at, updated_at FROM chats ORDER BY updated_at DESC, id DESC");
    std::vector<Chat> result;
    while (s.step()) result.push_back(readChat(s));
    return result;
}

void ChatStore::renameChat(std::int64_t id, std::string_view title) {
    c_.prepare("UPDATE chats SET title = ?, updated_at = ? WHERE id = ?").bindAll(title, nowMs(), id).run();
    if (c_.changes() == 0) throw Error("chat " + std::to_string(id) + " does not exist");
}

void ChatStore::setTimestamps(std::int64_t id, std::int64_t createdAt, std::int64_t updatedAt) {
    c_.prepare("UPDATE chats SET created_at = ?, updated_at = ? WHERE id = ?")
        .bindAll(createdAt, updatedAt, id)
        .run();
}

void ChatStore::deleteChat(std::int64_t id) {
    c_.prepare("DELETE FROM chats WHERE id = ?").bind(1, id).run();
}

std::optional<std::string> ChatStore::setting(std::int64_t chatId, std::string_view key) {
    Statement s = c_.prepare("SELECT value FROM chat_settings WHERE chat_id = ? AND key = ?");
    s.bindAll(chatId, key);
    if (!s.step()) return std::nullopt;
    return s.getText(0);
}

std::map<std::string, std::string> ChatStore::settings(std::int64_t chatId) {
    Statement s = c_.prepare("SELECT key, value FROM chat_settings WHERE chat_id = ? ORDER BY key");
    s.bind(1, chatId);
    std::map<std::string, std::string> result;
    while (s.step()) result.emplace(s.getText(0), s.getText(1));
    return result;
}

void ChatStore::setSetting(std::int64_t chatId, std::string_view key, std::string_view value) {
    c_.prepare("INSERT INTO chat_settings(chat_id, key, value) VALUES (?, ?, ?) ON CONFLICT(chat_id, key) DO UPDATE SET value = excluded.value")
        .bindAll(chatId, key, value)
        .run();
}

void ChatStore::removeSetting(std::int64_t chatId, std::string_view key) {
    c_.prepare("DELETE FROM chat_settings WHERE chat_id = ? AND key = ?").bindAll(chatId, key).run();
}

void ChatStore::touchChat(std::int64_t chatId, std::int64_t now) {
    c_.prepare("UPDATE chats SET updated_at = max(updated_at, ?) WHERE id = ?").bindAll(now, chatId).run();
}

std::int64_t ChatStore::addMessage(std::int64_t chatId, const NewMessage& m) {
    const std::int64_t now = m.createdAt.value_or(nowMs());
    Transaction tx(c_);
    Statement insert = c_.prepare(
        "INSERT INTO messages(chat_id, role, content, status, error, created_at, updated_at, "
        "prompt_tokens, generated_tokens, ttft_ms, tokens_per_second, model, reasoning, reasoning_ms) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    insert.bindAll(chatId, toString(m.role), m.content, toString(m.status), m.error, now, now,
                   m.metrics.promptTokens, m.metrics.generatedTokens, m.metrics.ttftMs,
                   m.metrics.tokensPerSecond, m.metrics.model, m.reasoning, m.metrics.reasoningMs);
    try {
        insert.run();
    } catch (const Error& e) {
        if (e.isConstraint() && !chat(chatId))
            throw Error("chat " + std::to_string(chatId) + " does not exist", e.sqliteCode());
        throw;
    }
    const std::int64_t id = c_.lastInsertRowId();
    Statement attach =
        c_.prepare("INSERT INTO message_images(message_id, position, image_sha256) VALUES (?, ?, ?)");
    for (std::size_t i = 0; i < m.images.size(); ++i) {
        attach.reset();
        attach.bindAll(id, static_cast<std::int64_t>(i), m.images[i]);
        try {
            attach.run();
        } catch (const Error& e) {
            throw Error("image " + m.images[i] + " is not in the image store", e.sqliteCode());
        }
    }
    touchChat(chatId, now);
    tx.commit();
    return id;
}

std::optional<Message> ChatStore::message(std::int64_t id) {
    Statement s = c_.prepare("SELECT " + std::string(kMessageColumns) + " FROM messages WHERE id = ?");
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    Message m = readMessage(s);
    Statement images = c_.prepare(
        "SELECT image_sha256 FROM message_images WHERE message_id = ? ORDER BY position");
    images.bind(1, id);
    while (images.step()) m.images.push_back(images.getText(0));
    return m;
}

std::vector<Message> ChatStore::messages(std::int64_t chatId) {
    Statement s = c_.prepare("SELECT " + std::string(kMessageColumns) +
                             " FROM messages WHERE chat_id = ? ORDER BY id");
    s.bind(1, chatId);
    std::vector<Message> result;
    std::map<std::int64_t, std::size_t> index;
    while (s.step()) {
        result.push_back(readMessage(s));
        index[result.back().id] = result.size() - 1;
    }
    Statement images = c_.prepare(
        "SELECT mi.message_id, mi.image_sha256 FROM message_images mi "
        "JOIN messages m ON m.id = mi.message_id WHERE m.chat_id = ? "
        "ORDER BY mi.message_id, mi.position");
    images.bind(1, chatId);
    while (images.step()) {
        const auto it = index.find(images.getInt(0));
        if (it != index.end()) result[it->second].images.push_back(images.getText(1));
    }
    return result;
}

void ChatStore::setContent(std::int64_t messageId, std::string_view content) {
    const std::int64_t now = nowMs();
    c_.prepare("UPDATE messages SET content = ?, updated_at = ? WHERE id = ?")
        .bindAll(content, now, messageId)
        .run();
    if (c_.changes() == 0) throw Error("message " + std::to_string(messageId) + " does not exist");
}

void ChatStore::appendContent(std::int64_t messageId, std::string_view piece) {
    if (piece.empty()) return;
    c_.prepare("UPDATE messages SET content = content || ?, updated_at = ? WHERE id = ?")
        .bindAll(piece, nowMs(), messageId)
        .run();
    if (c_.changes() == 0) throw Error("message " + std::to_string(messageId) + " does not exist");
}

void ChatStore::appendContent(std::int64_t messageId, std::string_view piece, std::string_view reasoning) {
    if (reasoning.empty()) return appendContent(messageId, piece);
    c_.prepare("UPDATE messages SET content = content || ?, reasoning = reasoning || ?, updated_at = ? WHERE id = ?")
        .bindAll(piece, reasoning, nowMs(), messageId)
        .run();
    if (c_.changes() == 0) throw Error("message " + std::to_string(messageId) + " does not exist");
}

void ChatStore::finishMessage(std::int64_t messageId, MessageStatus status,
                              const GenerationMetrics& m, std::optional<std::string_view> error) {
    const std::int64_t now = nowMs();
    Transaction tx(c_);
    c_.prepare(
          "UPDATE messages SET status = ?, error = ?, updated_at = ?, prompt_tokens = ?, "
          "generated_tokens = ?, ttft_ms = ?, tokens_per_second = ?, model = coalesce(?, model), "
          "reasoning_ms = ? WHERE id = ?")
        .bindAll(toString(status), error ? std::optional<std::string>(*error) : std::nullopt, now,
                 m.promptTokens, m.generatedTokens, m.ttftMs, m.tokensPerSecond, m.model, m.reasoningMs, messageId)
        .run();
    if (c_.changes() == 0) throw Error("message " + std::to_string(messageId) + " does not exist");
    Statement chat = c_.prepare("SELECT chat_id FROM messages WHERE id = ?");
    chat.bind(1, messageId);
    if (chat.step()) touchChat(chat.getInt(0), now);
    tx.commit();
}

void ChatStore::deleteMessage(std::int64_t messageId) {
    c_.prepare("DELETE FROM messages WHERE id = ?").bind(1, messageId).run();
}

void ChatStore::truncateFrom(std::int64_t messageId) {
    c_.prepare(
          "DELETE FROM messages WHERE chat_id = (SELECT chat_id FROM messages WHERE id = ?1) "
          "AND id >= ?1")
        .bind(1, messageId)
        .run();
}

int ChatStore::closeInterruptedMessages() {
    c_.prepare("UPDATE messages SET status = 'stopped' WHERE status = 'partial'").run();
    return c_.changes();
}

std::string ftsQueryFromUserText(std::string_view text) {
    std::vector<std::string> words;
    std::size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && isSpace(static_cast<unsigned char>(text[i]))) ++i;
        const std::size_t start = i;
        while (i < text.size() && !isSpace(static_cast<unsigned char>(text[i]))) ++i;
        if (i > start) words.emplace_back(text.substr(start, i - start));
    }
    std::string query;
    for (std::size_t w = 0; w < words.size(); ++w) {
        // Words made only of separators ("?", "--") hold no token for FTS5 to match: skip them.
        bool hasToken = false;
        for (unsigned char ch : words[w]) hasToken |= ch >= 0x80 || std::isalnum(ch);
        if (!hasToken) continue;
        if (!query.empty()) query += ' ';
        query += '"';
        for (char ch : words[w]) {
            if (ch == '"') query += '"';
            query += ch;
        }
        query += '"';
        if (w + 1 == words.size()) query += '*';
    }
    return query;
}

std::vector<SearchHit> ChatStore::search(std::string_view userQuery, int limit,
                                         const SnippetMarkers& markers) {
    std::vector<SearchHit> hits;
    const std::string query = ftsQueryFromUserText(userQuery);
    if (query.empty() || limit <= 0) return hits;

    Statement titles = c_.prepare(
        "SELECT c.id, c.title, highlight(chats_fts, 0, ?, ?) FROM chats_fts "
        "JOIN chats c ON c.id = chats_fts.rowid WHERE chats_fts MATCH ? ORDER BY rank LIMIT ?");
    titles.bindAll(markers.open, markers.close, query, static_cast<std::int64_t>(limit));
    while (titles.step()) hits.push_back({titles.getInt(0), titles.getText(1), std::nullopt, titles.getText(2)});

    const auto remaining = static_cast<std::int64_t>(limit) - static_cast<std::int64_t>(hits.size());
    if (remaining <= 0) return hits;
    Statement messages = c_.prepare(
        "SELECT m.chat_id, c.title, m.id, snippet(messages_fts, 0, ?, ?, ?, 12) FROM messages_fts "
        "JOIN messages m ON m.id = messages_fts.rowid JOIN chats c ON c.id = m.chat_id "
        "WHERE messages_fts MATCH ? ORDER BY rank LIMIT ?");
    messages.bindAll(markers.open, markers.close, markers.ellipsis, query, remaining);
    while (messages.step())
        hits.push_back({messages.getInt(0), messages.getText(1), messages.getInt(2), messages.getText(3)});
    return hits;
}

}  // namespace lumen::storage
