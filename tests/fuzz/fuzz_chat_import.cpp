// Chat JSON import: any bytes give either a new chat or storage::Error, nothing else.
#include <cstdint>
#include <string_view>

#include "storage/chat_export.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace lumen::storage;
    static Database db = Database::open(":memory:");
    try {
        const auto id = importChatJson(db, std::string_view(reinterpret_cast<const char*>(data), size));
        // Whatever was accepted must export again.
        ChatStore chats(db);
        ImageStore images(db);
        exportChatJson(chats, images, id);
        exportChatMarkdown(chats, images, id);
        chats.deleteChat(id);
    } catch (const Error&) {
    }
    return 0;
}
