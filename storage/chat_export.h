#pragma once
// Exporting a chat for people (Markdown) and for moving it between databases (JSON), and
// importing that JSON back. JSON files are untrusted input: import validates everything and
// either adds the whole chat or nothing.
//
// JSON layout (format "lumen-chat", version 1):
//   { "format": "lumen-chat", "version": 1, "title": str, "created_at_ms": int,
//     "updated_at_ms": int,
//     "messages": [ { "role": "user"|"assistant"|"system", "content": str,
//                     "status": "complete"|"partial"|"stopped"|"error", "created_at_ms": int,
//                     "error"?: str, "images"?: [sha256...],
//                     "metrics"?: { "prompt_tokens"?, "generated_tokens"?, "ttft_ms"?,
//                                   "tokens_per_second"?, "model"? } } ],
//     "images": { sha256: { "mime_type": str, "width": int, "height": int,
//                           "data": base64, "thumbnail"?: base64 } } }

#include <cstdint>
#include <string>
#include <string_view>

#include "storage/chat_store.h"
#include "storage/image_store.h"

namespace lumen::storage {

std::string exportChatMarkdown(ChatStore& chats, ImageStore& images, std::int64_t chatId);
std::string exportChatJson(ChatStore& chats, ImageStore& images, std::int64_t chatId);
// Adds the chat in `json` as a new chat and returns its id; throws Error naming what is wrong.
std::int64_t importChatJson(Database& db, std::string_view json);

}  // namespace lumen::storage
