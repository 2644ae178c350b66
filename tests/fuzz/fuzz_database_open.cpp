// Opening a database file: any bytes give either a usable database or storage::Error.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "storage/chat_store.h"
#include "storage/database.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace lumen::storage;
    static const std::filesystem::path path =
        std::filesystem::temp_directory_path() / ("lumen-fuzz-db-" + std::to_string(::getpid()) + ".db");
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + suffix);
    if (FILE* f = std::fopen(path.c_str(), "wb")) {
        if (size) std::fwrite(data, 1, size, f);
        std::fclose(f);
    }
    try {
        Database db = Database::open(path);
        ChatStore chats(db);
        for (const auto& chat : chats.chats()) chats.messages(chat.id);
        chats.search("hello");
        chats.createChat("written after open");
    } catch (const Error&) {
    }
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + suffix);
    return 0;
}
