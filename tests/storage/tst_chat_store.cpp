// Chats and messages: CRUD, ordering, cascades, streaming writes, full-text search.

#include <QtTest>
#include <algorithm>
#include <thread>

#include "storage/chat_store.h"
#include "storage/image_store.h"
#include "storage/streaming_writer.h"
#include "test_util.h"

using namespace lumen::storage;
using lumen::test::str;

class TestChatStore : public QObject {
    Q_OBJECT
private slots:
    void init() {
        QVERIFY(dir_.isValid());
        db_ = std::make_unique<Database>(Database::open(str(dir_.filePath(QTest::currentTestFunction() + QStringLiteral(".db")))));
        chats_ = std::make_unique<ChatStore>(*db_);
    }
    void cleanup() {
        chats_.reset();
        db_.reset();
    }

    void createReadRenameDelete() {
        const Chat a = chats_->createChat("First");
        QVERIFY(a.id > 0);
        QCOMPARE(QString::fromStdString(chats_->chat(a.id)->title), QStringLiteral("First"));
        chats_->renameChat(a.id, "Renamed ✓");
        QCOMPARE(QString::fromStdString(chats_->chat(a.id)->title), QStringLiteral("Renamed ✓"));
        chats_->deleteChat(a.id);
        QVERIFY(!chats_->chat(a.id));
        QVERIFY_THROWS_EXCEPTION(Error, chats_->renameChat(a.id, "gone"));
    }

    void chatsOrderedByLastActivity() {
        const Chat a = chats_->createChat("a");
        const Chat b = chats_->createChat("b");
        const Chat c = chats_->createChat("c");
        // Same millisecond: the newer id comes first.
        QCOMPARE(chats_->chats().front().id, c.id);
        std::this_thread::sleep_for(std::chrono::milliseconds(3));
        chats_->addMessage(a.id, {Role::User, "bump a"});
        const auto order = chats_->chats();
        QCOMPARE(order.size(), std::size_t(3));
        QCOMPARE(order[0].id, a.id);
        QCOMPARE(order[1].id, c.id);
        QCOMPARE(order[2].id, b.id);
    }

    void messagesKeepOrderAndFields() {
        const Chat chat = chats_->createChat("fields");
        chats_->addMessage(chat.id, {Role::System, "be brief"});
        chats_->addMessage(chat.id, {Role::User, "héllo\nworld"});
        NewMessage reply{Role::Assistant, "hi", MessageStatus::Complete, {7, 2, 95.5, 31.25, std::string("m.gguf")}};
        const auto replyId = chats_->addMessage(chat.id, reply);
        const auto messages = chats_->messages(chat.id);
        QCOMPARE(messages.size(), std::size_t(3));
        QVERIFY(messages[0].role == Role::System);
        QCOMPARE(QString::fromStdString(messages[1].content), QStringLiteral("héllo\nworld"));
        QCOMPARE(messages[2].id, replyId);
        QCOMPARE(messages[2].metrics, reply.metrics);
        QVERIFY(messages[2].status == MessageStatus::Complete);
        QVERIFY(!messages[1].metrics.model);
        QVERIFY_THROWS_EXCEPTION(Error, chats_->addMessage(999999, {Role::User, "no chat"}));
    }

    void editTruncateAndDelete() {
        const Chat chat = chats_->createChat("edit");
        const auto m1 = chats_->addMessage(chat.id, {Role::User, "one"});
        const auto m2 = chats_->addMessage(chat.id, {Role::Assistant, "two"});
        const auto m3 = chats_->addMessage(chat.id, {Role::User, "three"});
        chats_->addMessage(chat.id, {Role::Assistant, "four"});
        const Chat other = chats_->createChat("other");
        chats_->addMessage(other.id, {Role::User, "untouched"});

        chats_->setContent(m1, "one, edited");
        QCOMPARE(QString::fromStdString(chats_->message(m1)->content), QStringLiteral("one, edited"));
        chats_->truncateFrom(m3);
        QCOMPARE(chats_->messages(chat.id).size(), std::size_t(2));
        chats_->deleteMessage(m2);
        QCOMPARE(chats_->messages(chat.id).size(), std::size_t(1));
        QCOMPARE(chats_->messages(other.id).size(), std::size_t(1));
    }

    void deletingChatCascades() {
        ImageStore images(*db_);
        const std::vector<std::uint8_t> bytes = {1, 2, 3, 4};
        const std::string sha = images.put({bytes, "image/png", 1, 1, {}});
        const Chat chat = chats_->createChat("cascade");
        NewMessage m{Role::User, "look"};
        m.images = {sha};
        const auto id = chats_->addMessage(chat.id, m);
        QCOMPARE(images.attachments(id).size(), std::size_t(1));
        chats_->deleteChat(chat.id);
        QVERIFY(!chats_->message(id));
        QVERIFY(images.attachments(id).empty());
        QVERIFY(chats_->search("look").empty());
        // The image stays until pruned, then goes.
        QVERIFY(images.contains(sha));
        QCOMPARE(images.pruneUnreferenced(), 1);
        QVERIFY(!images.contains(sha));
    }

    void streamingWriterFlushesOnInterval() {
        const Chat chat = chats_->createChat("stream");
        auto now = std::chrono::steady_clock::time_point{};
        StreamingMessageWriter writer(*chats_, chat.id, std::string("model.gguf"), std::chrono::seconds(1),
                                      [&] { return now; });
        const auto id = writer.messageId();
        QVERIFY(chats_->message(id)->status == MessageStatus::Partial);
        writer.append("Once ");
        writer.append("upon ");
        QCOMPARE(QString::fromStdString(chats_->message(id)->content), QString());  // buffered
        now += std::chrono::milliseconds(1000);
        writer.append("a ");
        QCOMPARE(QString::fromStdString(chats_->message(id)->content), QStringLiteral("Once upon a "));
        writer.append("time");
        now += std::chrono::milliseconds(1500);
        writer.flushIfDue();
        QCOMPARE(QString::fromStdString(chats_->message(id)->content), QStringLiteral("Once upon a time"));
        writer.appendReasoning("(a fairy tale)");  // a reasoning piece is written with the next flush
        writer.append(".");
        writer.finish(MessageStatus::Complete, {5, 4, 120.0, 33.0, std::nullopt, 250.0});
        const Message done = *chats_->message(id);
        QCOMPARE(QString::fromStdString(done.content), QStringLiteral("Once upon a time."));
        QCOMPARE(QString::fromStdString(done.reasoning), QStringLiteral("(a fairy tale)"));
        QCOMPARE(done.metrics.reasoningMs.value_or(0), 250.0);
        QVERIFY(done.status == MessageStatus::Complete);
        QCOMPARE(QString::fromStdString(done.metrics.model.value_or("")), QStringLiteral("model.gguf"));
        QCOMPARE(done.metrics.ttftMs.value_or(0), 120.0);
    }

    // A full disk while a reply streams (SQLite's max_page_count reached): the write fails once
    // (Error), the text stays buffered, the next tries wait an interval (pieces in between do
    // not touch the disk), and when space comes back the whole reply is stored.
    void streamingWriterKeepsTextWhenTheDiskIsFull() {
        const Chat chat = chats_->createChat("full disk");
        auto now = std::chrono::steady_clock::time_point{};
        StreamingMessageWriter writer(*chats_, chat.id, std::nullopt, std::chrono::seconds(1), [&] { return now; });
        const std::string piece(20000, 'z');  // (more than the free space of the pages it has)
        const std::int64_t pages = db_->connection().pragmaInt("page_count");
        db_->connection().exec("PRAGMA max_page_count = " + std::to_string(pages));
        now += std::chrono::seconds(2);
        QVERIFY_THROWS_EXCEPTION(Error, writer.append(piece));
        QVERIFY(writer.hasUnsaved());
        for (int i = 0; i < 5; ++i) writer.append(piece);  // within the interval: buffered, no write tried
        now += std::chrono::seconds(2);
        QVERIFY_THROWS_EXCEPTION(Error, writer.append("!"));
        QVERIFY_THROWS_EXCEPTION(Error, writer.finish(MessageStatus::Complete, {}));
        QVERIFY(!writer.finished());
        db_->connection().exec("PRAGMA max_page_count = 1000000");
        writer.finish(MessageStatus::Complete, {});
        QVERIFY(writer.finished() && !writer.hasUnsaved());
        const Message m = *chats_->message(writer.messageId());
        QVERIFY(m.status == MessageStatus::Complete);
        QCOMPARE(m.content.size(), 6 * piece.size() + 1);
    }

    void unfinishedWriterMarksStopped() {
        const Chat chat = chats_->createChat("abandoned");
        std::int64_t id = 0;
        {
            StreamingMessageWriter writer(*chats_, chat.id, std::nullopt);
            id = writer.messageId();
            writer.append("half");
        }
        const Message m = *chats_->message(id);
        QVERIFY(m.status == MessageStatus::Stopped);
        QCOMPARE(QString::fromStdString(m.content), QStringLiteral("half"));
    }

    void errorStatusKeepsMessage() {
        const Chat chat = chats_->createChat("err");
        StreamingMessageWriter writer(*chats_, chat.id, std::nullopt);
        writer.append("partial text");
        writer.finish(MessageStatus::Error, {}, "out of memory");
        const Message m = *chats_->message(writer.messageId());
        QVERIFY(m.status == MessageStatus::Error);
        QCOMPARE(QString::fromStdString(m.error.value_or("")), QStringLiteral("out of memory"));
    }

    void closeInterruptedMessages() {
        const Chat chat = chats_->createChat("crash");
        chats_->addMessage(chat.id, {Role::Assistant, "cut off", MessageStatus::Partial});
        chats_->addMessage(chat.id, {Role::Assistant, "fine"});
        QCOMPARE(chats_->closeInterruptedMessages(), 1);
        QVERIFY(chats_->messages(chat.id)[0].status == MessageStatus::Stopped);
        QCOMPARE(chats_->closeInterruptedMessages(), 0);
    }

    void searchFindsTitlesAndMessagesWithSnippets() {
        const Chat travel = chats_->createChat("Trip to Lisbon");
        const Chat code = chats_->createChat("Rust lifetimes");
        chats_->addMessage(travel.id, {Role::User, "Where should I eat pastéis de nata near the river?"});
        chats_->addMessage(code.id, {Role::User, "Explain borrow checking in one paragraph please"});
        chats_->addMessage(code.id, {Role::Assistant, "The borrow checker makes sure references never outlive data."});

        auto hits = chats_->search("lisbon");
        QCOMPARE(hits.size(), std::size_t(1));
        QCOMPARE(hits[0].chatId, travel.id);
        QVERIFY(!hits[0].messageId);
        QCOMPARE(QString::fromStdString(hits[0].snippet), QStringLiteral("Trip to [Lisbon]"));

        hits = chats_->search("borrow");
        QCOMPARE(hits.size(), std::size_t(2));
        for (const auto& hit : hits) {
            QCOMPARE(hit.chatId, code.id);
            QVERIFY(hit.messageId);
            QVERIFY2(QString::fromStdString(hit.snippet).contains("[borrow]"), hit.snippet.c_str());
        }
        // Diacritics are folded, the last word is a prefix, all words are required.
        QCOMPARE(chats_->search("pasteis").size(), std::size_t(1));
        QCOMPARE(chats_->search("riv").size(), std::size_t(1));
        QCOMPARE(chats_->search("borrow river").size(), std::size_t(0));
        // Edits and deletes reach the index.
        const auto id = chats_->messages(travel.id)[0].id;
        chats_->setContent(id, "Somewhere quiet");
        QCOMPARE(chats_->search("pasteis").size(), std::size_t(0));
        QCOMPARE(chats_->search("quiet").size(), std::size_t(1));
        chats_->renameChat(code.id, "Ownership");
        QCOMPARE(chats_->search("lifetimes").size(), std::size_t(0));
    }

    // A chat's own settings go when it does: a new chat that gets the deleted one's id (SQLite
    // hands out the largest id plus one) starts with none.
    void ownSettingsGoWithTheChat() {
        const Chat a = chats_->createChat("first");
        chats_->setSetting(a.id, "generation.temperature", "0.1");
        chats_->setSetting(a.id, "generation.temperature", "0.2");
        QCOMPARE(chats_->setting(a.id, "generation.temperature").value_or(""), std::string("0.2"));
        chats_->removeSetting(a.id, "generation.top_k");
        chats_->deleteChat(a.id);
        const Chat b = chats_->createChat("second");
        QCOMPARE(b.id, a.id);
        QVERIFY(chats_->settings(b.id).empty());
        QVERIFY(!chats_->setting(b.id, "generation.temperature"));
    }

    // What the user types is words, never FTS5 syntax: no query throws, and each finds the
    // message exactly when its words (the last as a prefix) are in it.
    void searchTreatsUserTextAsWords_data() {
        QTest::addColumn<QString>("query");
        QTest::addColumn<int>("hits");
        QTest::newRow("quote") << "\"unbalanced" << 1;
        QTest::newRow("operators") << "AND OR NOT" << 1;
        QTest::newRow("operators not in it") << "AND NEAR" << 0;
        QTest::newRow("column filter") << "content: x" << 1;
        QTest::newRow("parentheses") << "(a" << 1;
        QTest::newRow("star") << "*" << 0;
        QTest::newRow("only punctuation") << "?! --" << 0;
        QTest::newRow("caret") << "^start" << 1;
        QTest::newRow("caret, another word") << "^stop" << 0;
        QTest::newRow("empty") << "   " << 0;
    }
    void searchTreatsUserTextAsWords() {
        QFETCH(QString, query);
        QFETCH(int, hits);
        const Chat chat = chats_->createChat("syntax");
        chats_->addMessage(chat.id, {Role::User, "a content x unbalanced start AND OR NOT"});
        const auto found = chats_->search(str(query));  // must not throw an FTS5 syntax error
        // (the rows share one database: count this row's chat)
        const auto mine = std::count_if(found.begin(), found.end(), [&](const SearchHit& h) { return h.chatId == chat.id; });
        QCOMPARE(static_cast<int>(mine), hits);
        for (const SearchHit& h : found)
            if (h.chatId == chat.id) QVERIFY(h.messageId.has_value());
    }

    void ftsQueryQuotesWords() {
        QCOMPARE(QString::fromStdString(ftsQueryFromUserText("  hello   wor ")), QStringLiteral("\"hello\" \"wor\"*"));
        QCOMPARE(QString::fromStdString(ftsQueryFromUserText("say \"hi\"")), QStringLiteral("\"say\" \"\"\"hi\"\"\"*"));
        QCOMPARE(QString::fromStdString(ftsQueryFromUserText("?")), QString());
    }

private:
    QTemporaryDir dir_;
    std::unique_ptr<Database> db_;
    std::unique_ptr<ChatStore> chats_;
};

QTEST_GUILESS_MAIN(TestChatStore)
#include "tst_chat_store.moc"
