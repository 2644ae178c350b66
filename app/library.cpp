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

}  // namespace lumen::app
