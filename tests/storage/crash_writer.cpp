// The child of tst_crash_safety: streams chats into a database as fast as it can, reporting
// each commit on stdout (see crash_protocol.h), until the test kills it with SIGKILL.

#include <chrono>
#include <cstdio>
#include <random>

#include "crash_protocol.h"
#include "storage/chat_store.h"
#include "storage/database.h"
#include "storage/streaming_writer.h"

using namespace lumen::storage;
namespace crash = lumen::test::crash;

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s DB SEED\n", argv[0]);
        return 2;
    }
    try {
        Database db = Database::open(argv[1]);
        ChatStore chats(db);
        std::mt19937 rng(static_cast<unsigned>(std::stoul(argv[2])));
        std::printf("ready\n");
        std::fflush(stdout);
        for (int round = 0;; ++round) {
            const Chat chat = chats.createChat("crash round " + std::to_string(round));
            for (int turn = 0; turn < 4; ++turn) {
                NewMessage user{Role::User, ""};
                const auto userId = chats.addMessage(chat.id, user);
                chats.setContent(userId, crash::userText(userId));
                std::printf("U %lld\n", static_cast<long long>(userId));
                std::fflush(stdout);

                // A reply streamed in pieces, written every 2 ms (the app writes every second;
                // a short interval makes the kill land inside writes more often).
                StreamingMessageWriter writer(chats, chat.id, std::string("crash-model"), std::chrono::milliseconds(2));
                const int pieces = 20 + static_cast<int>(rng() % 200);
                std::size_t committed = 0;
                for (int i = 0; i < pieces; ++i) {
                    writer.append(crash::replyPiece(writer.messageId(), i));
                    if (rng() % 8 == 0) writer.flush();
                    const auto stored = chats.message(writer.messageId())->content.size();
                    if (stored != committed) {
                        committed = stored;
                        std::printf("P %lld %zu\n", static_cast<long long>(writer.messageId()), committed);
                        std::fflush(stdout);
                    }
                }
                writer.finish(MessageStatus::Complete, {1, pieces, 1.0, 1.0, std::nullopt});
                std::printf("F %lld %zu\n", static_cast<long long>(writer.messageId()), writer.text().size());
                std::fflush(stdout);
            }
        }
    } catch (const Error& e) {
        std::fprintf(stderr, "crash writer: %s\n", e.what());
        return 1;
    }
}
