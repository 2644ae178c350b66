#include "app/library.h"

#include "app/logging.h"
#include "storage/chat_export.h"

namespace lumen::app {

Library::Library(const QString& databasePath, Recovery recovery, bool readOnly)
    : path_(databasePath),
      db_(std::make_unique<storage::Database>(storage::Database::open(databasePath.toStdString(), storage::OpenOptions{.readOnly = readOnly}))),
      chats_(*db_),
      images_(*db_),
      templates_(*db_),
      labelSets_(*db_),
      embeddings_(*db_),
      settings_(*db_) {
    if (db_->backupPath())
        qCInfo(lcStorage) << "upgraded the database; the previous version is kept at"
                          << QString::fromStdString(db_->backupPath()->string());
    if (recovery == Recovery::None || readOnly) return;
    recovered_ = chats_.closeInterruptedMessages();
    if (recovered_ > 0)
        qCInfo(lcStorage) << recovered_ << "reply(ies) interrupted by an earlier crash were marked stopped";
}

std::string Library::exportChat(std::int64_t chatId, ChatFormat format) {
    return format == ChatFormat::Markdown ? storage::exportChatMarkdown(chats_, images_, chatId) : storage::exportChatJson(chats_, images_, chatId);
}

std::int64_t Library::importChat(std::string_view json) { return storage::importChatJson(*db_, json); }

LibraryReader::LibraryReader(QString databasePath) : path_(std::move(databasePath)) {}
LibraryReader::~LibraryReader() = default;
LibraryReader::LibraryReader(LibraryReader&&) noexcept = default;

void LibraryReader::open() {
    if (db_) return;
    db_ = std::make_unique<storage::Database>(storage::Database::open(path_.toStdString(), storage::OpenOptions{.readOnly = true}));
    images_ = std::make_unique<storage::ImageStore>(*db_);
    embeddings_ = std::make_unique<storage::EmbeddingCache>(*db_);
}

std::optional<QByteArray> LibraryReader::imageBytes(const std::string& sha256) {
    open();
    const auto bytes = images_->bytes(sha256);
    if (!bytes) return std::nullopt;
    return QByteArray(reinterpret_cast<const char*>(bytes->data()), static_cast<qsizetype>(bytes->size()));
}

std::optional<std::vector<float>> LibraryReader::embedding(storage::EmbeddingKind kind, const std::string& key, const std::string& modelId) {
    open();
    return embeddings_->get(kind, key, modelId);
}

}  // namespace lumen::app
