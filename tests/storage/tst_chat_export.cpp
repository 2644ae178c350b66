// Exporting chats as Markdown and JSON, and importing the JSON back.

#include <QtTest>
#include <nlohmann/json.hpp>

#include "storage/chat_export.h"
#include "test_util.h"

using namespace lumen::storage;
using lumen::test::str;

class TestChatExport : public QObject {
    Q_OBJECT
private slots:
    void init() {
        QVERIFY(dir_.isValid());
        db_ = std::make_unique<Database>(Database::open(str(dir_.filePath(QTest::currentTestFunction() + QStringLiteral(".db")))));
        chats_ = std::make_unique<ChatStore>(*db_);
        images_ = std::make_unique<ImageStore>(*db_);
    }
    void cleanup() {
        images_.reset();
        chats_.reset();
        db_.reset();
    }

    void jsonRoundTripIsExact() {
        const std::int64_t id = makeChat();
        const std::string first = exportChatJson(*chats_, *images_, id);
        const std::int64_t imported = importChatJson(*db_, first);
        QVERIFY(imported != id);
        const std::string second = exportChatJson(*chats_, *images_, imported);
        QCOMPARE(QString::fromStdString(second), QString::fromStdString(first));
        QVERIFY(first.find("\"reasoning\"") != std::string::npos && first.find("The user wants detail.\\nI will be brief.") != std::string::npos);
        QCOMPARE(chats_->messages(imported)[2].metrics.reasoningMs.value_or(0), 1250.0);

        // And into a different, empty database.
        Database other = Database::open(str(dir_.filePath("other.db")));
        const std::int64_t there = importChatJson(other, first);
        ChatStore otherChats(other);
        ImageStore otherImages(other);
        QCOMPARE(QString::fromStdString(exportChatJson(otherChats, otherImages, there)), QString::fromStdString(first));
        QVERIFY(*otherImages.bytes(otherChats.messages(there)[0].images[0]) == imageBytes_);
    }

    // A chat's own settings travel with it: what Undo Delete brings back (an export, then an
    // import) has them; a chat without any exports none.
    void ownSettingsTravelWithTheChat() {
        const std::int64_t id = makeChat();
        QVERIFY(exportChatJson(*chats_, *images_, id).find("\"settings\"") == std::string::npos);
        chats_->setSetting(id, "generation.temperature", "0.25");
        chats_->setSetting(id, "generation.max_tokens", "64");
        const std::string json = exportChatJson(*chats_, *images_, id);
        chats_->deleteChat(id);
        QVERIFY(chats_->settings(id).empty());
        const std::int64_t back = importChatJson(*db_, json);
        QCOMPARE(chats_->settings(back), (std::map<std::string, std::string>{{"generation.max_tokens", "64"}, {"generation.temperature", "0.25"}}));
        for (const auto& bad : {nlohmann::json::array({1}), nlohmann::json{{"a", 1}}}) {
            nlohmann::json broken = nlohmann::json::parse(json);
            broken["settings"] = bad;
            QVERIFY_THROWS_EXCEPTION(Error, importChatJson(*db_, broken.dump()));
        }
    }

    void markdownReadsWell() {
        const std::int64_t id = makeChat();
        const QString md = QString::fromStdString(exportChatMarkdown(*chats_, *images_, id));
        QVERIFY2(md.startsWith("# Holiday photos\n"), qPrintable(md));
        QVERIFY(md.contains("## User · "));
        QVERIFY(md.contains("What is in this picture?\nBe *precise*."));
        QVERIFY(md.contains("## Assistant · "));
        QVERIFY(md.contains("*tiny.gguf · TTFT 120 ms · 33.3 tokens/s · 9 tokens*"));
        QVERIFY(md.contains("*[image: 3×2 image/png, sha256 "));
        QVERIFY(md.contains("stopped"));
        QVERIFY2(md.contains("> *Reasoning*\n>\n> The user wants detail.\n> I will be brief.\n\nCut"), qPrintable(md));
    }

    void exportOfMissingChatFails() {
        QVERIFY_THROWS_EXCEPTION(Error, exportChatJson(*chats_, *images_, 4242));
    }

    void importRejectsBadInput_data() {
        QTest::addColumn<QString>("json");
        QTest::addColumn<QString>("expected");
        const QString ok = QStringLiteral(R"("format":"lumen-chat","version":1,"title":"t","created_at_ms":1,"updated_at_ms":2)");
        QTest::newRow("not json") << "{nope" << "not JSON";
        QTest::newRow("array") << "[]" << "must be an object";
        QTest::newRow("wrong format") << R"({"format":"other"})" << "lumen-chat";
        QTest::newRow("future version") << R"({"format":"lumen-chat","version":7})" << "version 7";
        QTest::newRow("missing messages") << "{" + ok + R"(,"images":{}})" << "missing \"messages\"";
        QTest::newRow("bad role") << "{" + ok + R"(,"images":{},"messages":[{"role":"robot","content":"x","status":"complete","created_at_ms":1}]})"
                                  << "unknown role";
        QTest::newRow("bad status") << "{" + ok + R"(,"images":{},"messages":[{"role":"user","content":"x","status":"done","created_at_ms":1}]})"
                                    << "unknown status";
        QTest::newRow("content type") << "{" + ok + R"(,"images":{},"messages":[{"role":"user","content":5,"status":"complete","created_at_ms":1}]})"
                                      << "must be a string";
        QTest::newRow("dangling image") << "{" + ok + R"(,"images":{},"messages":[{"role":"user","content":"x","status":"complete","created_at_ms":1,"images":["abc"]}]})"
                                        << "does not contain";
        QTest::newRow("hash mismatch") << "{" + ok + R"(,"messages":[],"images":{"0000000000000000000000000000000000000000000000000000000000000000":{"mime_type":"image/png","width":1,"height":1,"data":"AAAA"}}})"
                                       << "does not match";
        QTest::newRow("bad base64") << "{" + ok + R"(,"messages":[],"images":{"x":{"mime_type":"image/png","width":1,"height":1,"data":"!!!"}}})"
                                    << "base64";
        QTest::newRow("nested 100000 deep") << "{" + ok + R"(,"images":{},"messages":)" + QString(100000, QLatin1Char('[')) + QString(100000, QLatin1Char(']')) + "}"
                                            << "nests deeper than 64 levels";
        QTest::newRow("metrics type") << "{" + ok + R"(,"images":{},"messages":[{"role":"user","content":"x","status":"complete","created_at_ms":1,"metrics":{"ttft_ms":"fast"}}]})"
                                      << "must be a number";
    }
    void importRejectsBadInput() {
        QFETCH(QString, json);
        QFETCH(QString, expected);
        try {
            importChatJson(*db_, str(json));
            QFAIL("bad input was imported");
        } catch (const Error& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains(expected), e.what());
        }
        QVERIFY(chats_->chats().empty());  // nothing half-imported
        Statement images = db_->connection().prepare("SELECT count(*) FROM images");
        QVERIFY(images.step());
        QCOMPARE(images.getInt(0), 0);
    }

private:
    std::int64_t makeChat() {
        imageBytes_ = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
        const std::vector<std::uint8_t> thumb = {1, 2, 3};
        const std::string sha = images_->put({imageBytes_, "image/png", 3, 2, thumb});
        const Chat chat = chats_->createChat("Holiday photos");
        NewMessage user{Role::User, "What is in this picture?\nBe *precise*."};
        user.images = {sha};
        chats_->addMessage(chat.id, user);
        chats_->addMessage(chat.id, {Role::Assistant, "A beach with \"quotes\" and unicode: 海.", MessageStatus::Complete,
                                     {20, 9, 120.0, 33.3333, std::string("tiny.gguf")}});
        NewMessage stopped{Role::Assistant, "Cut", MessageStatus::Stopped};
        stopped.reasoning = "The user wants detail.\nI will be brief.";
        stopped.metrics.reasoningMs = 1250.0;
        chats_->addMessage(chat.id, stopped);
        NewMessage failed{Role::Assistant, "", MessageStatus::Error};
        failed.error = "the model ran out of context";
        chats_->addMessage(chat.id, failed);
        return chat.id;
    }

    QTemporaryDir dir_;
    std::unique_ptr<Database> db_;
    std::unique_ptr<ChatStore> chats_;
    std::unique_ptr<ImageStore> images_;
    std::vector<std::uint8_t> imageBytes_;
};

QTEST_GUILESS_MAIN(TestChatExport)
#include "tst_chat_export.moc"
