// Writes a database with one of everything, at this build's schema version, for the migration
// tests of later versions: lumen_make_db_fixture tests/storage/fixtures/lumen-v3.db
// Each released schema keeps its fixture; never regenerate an old one with a newer build.

#include <cstdio>
#include <filesystem>
#include <vector>

#include "storage/chat_store.h"
#include "storage/database.h"
#include "storage/embedding_cache.h"
#include "storage/image_store.h"
#include "storage/label_set_store.h"
#include "storage/settings_store.h"
#include "storage/template_store.h"

using namespace lumen::storage;

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s OUT.db\n", argv[0]);
        return 2;
    }
    const std::filesystem::path out = argv[1];
    std::filesystem::remove(out);
    Database db = Database::open(out);
    ChatStore chats(db);
    ImageStore images(db);
    const std::vector<std::uint8_t> imageBytes = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A, 1, 2, 3};
    const std::vector<std::uint8_t> thumb = {9, 9, 9};
    const std::string sha = images.put({imageBytes, "image/png", 2, 1, thumb});

    const Chat chat = chats.createChat("Fixture chat");
    NewMessage user;
    user.content = "Hello fixture, what is in this picture?";
    user.images = {sha};
    chats.addMessage(chat.id, user);
    NewMessage reply;
    reply.role = Role::Assistant;
    reply.content = "A very small image.";
    reply.reasoning = "The picture is two pixels wide.";  // (schema v2)
    reply.metrics = {12, 5, 81.5, 42.25, std::string("tiny-llama.gguf"), 850.0};
    chats.addMessage(chat.id, reply);
    NewMessage stopped;
    stopped.role = Role::Assistant;
    stopped.content = "Half a repl";
    stopped.status = MessageStatus::Stopped;
    chats.addMessage(chat.id, stopped);
    chats.setSetting(chat.id, "generation.temperature", "0.2");  // (schema v3)

    TemplateStore templates(db);
    const auto t = templates.create({0, "Summarise", "chat", "You are terse.", "Summarise: {{text}}", 0, 0});
    templates.addExample(t, "long text", "short");
    templates.addExample(t, "picture", "a cat", sha);

    LabelSetStore labels(db);
    const auto set = labels.create("Pets", ClassifyMode::Blended, {"a photo of a {}."}, {"cat", "dog"});
    labels.addExample(labels.get(set)->labels[0].id, sha);

    EmbeddingCache cache(db);
    const float vec[] = {0.5f, -1.0f, 2.0f};
    cache.put(EmbeddingKind::Image, sha, "clip-vit-b32", vec);
    SettingsStore(db).set("sampling.temperature", "0.7");

    // One self-contained file: no -wal beside it.
    db.connection().exec("PRAGMA journal_mode = DELETE");
    std::printf("wrote %s (schema v%d)\n", out.c_str(), db.schemaVersion());
    return 0;
}
