#pragma once
// The user's library: the open database and the typed stores over it. One per window (or CLI
// run); everything that reads or writes user data goes through it. Not thread-safe: it lives on
// the thread that opened it (worker jobs open their own connection to the same file).

#include <QByteArray>
#include <QString>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <string_view>

#include "storage/chat_store.h"
#include "storage/database.h"
#include "storage/embedding_cache.h"
#include "storage/image_store.h"
#include "storage/label_set_store.h"
#include "storage/settings_store.h"
#include "storage/template_store.h"

namespace lumen::app {

enum class ChatFormat { Markdown, Json };

class Library {
public:
    enum class Recovery { None, CloseInterrupted };
    // Opens (creating or upgrading) the database; throws storage::Error with a user-facing message
    // (storage::DamagedDatabase for a file that fails the check on open).
    // The desktop app passes CloseInterrupted: replies left `partial` by a crash become `stopped`.
    // Short-lived readers (lumen-cli) pass None so they never touch a reply another process streams.
    // readOnly: a damaged file the user chose to read anyway; every write fails.
    explicit Library(const QString& databasePath, Recovery recovery = Recovery::None, bool readOnly = false);
    bool readOnly() const { return db_->readOnly(); }

    storage::Database& database() { return *db_; }
    storage::ChatStore& chats() { return chats_; }
    storage::ImageStore& images() { return images_; }
    storage::TemplateStore& templates() { return templates_; }
    storage::LabelSetStore& labelSets() { return labelSets_; }
    storage::EmbeddingCache& embeddings() { return embeddings_; }
    storage::SettingsStore& settings() { return settings_; }
    QString path() const { return path_; }

    // A chat as a file's text: Markdown to read, or Lumen's JSON export (messages, images and the
    // chat's own settings), which importChat reads back whole as a new chat (undo-delete does so).
    // Throw storage::Error (for JSON that is not an export: what is wrong with it).
    std::string exportChat(std::int64_t chatId, ChatFormat format);
    std::int64_t importChat(std::string_view json);
    // Replies left partial by a crash, marked stopped when the library was opened.
    int recoveredMessages() const { return recovered_; }

private:
    QString path_;
    std::unique_ptr<storage::Database> db_;
    storage::ChatStore chats_;
    storage::ImageStore images_;
    storage::TemplateStore templates_;
    storage::LabelSetStore labelSets_;
    storage::EmbeddingCache embeddings_;
    storage::SettingsStore settings_;
    int recovered_ = 0;
};

// Reads the library on a worker thread (a job): a read-only connection of its own to the same
// file, opened on first use on the thread that uses it, since a connection stays on one thread.
// Image blobs and cached embeddings are read this way, never on the window's thread.
class LibraryReader {
public:
    explicit LibraryReader(QString databasePath);
    ~LibraryReader();
    LibraryReader(LibraryReader&&) noexcept;
    // nullopt when the library has no such image; throws storage::Error.
    std::optional<QByteArray> imageBytes(const std::string& sha256);
    std::optional<std::vector<float>> embedding(storage::EmbeddingKind kind, const std::string& key, const std::string& modelId);

private:
    void open();
    QString path_;
    std::unique_ptr<storage::Database> db_;
    std::unique_ptr<storage::ImageStore> images_;
    std::unique_ptr<storage::EmbeddingCache> embeddings_;
};

}  // namespace lumen::app
