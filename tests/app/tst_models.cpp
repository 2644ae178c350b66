// The chat list and message models, checked by QAbstractItemModelTester and through signals.

#include <QAbstractItemModelTester>
#include <QSignalSpy>
#include <QtTest>

#include "app/assistant.h"
#include "app/chat_list_model.h"
#include "app/library.h"
#include "app/message_list_model.h"
#include "test_util.h"

using namespace lumen;

class TestModels : public QObject {
    Q_OBJECT
private slots:
    void init() {
        QVERIFY(dir_.isValid());
        library_ = std::make_unique<app::Library>(dir_.filePath(QTest::currentTestFunction() + QStringLiteral(".db")));
    }
    void cleanup() { library_.reset(); }

    void chatListModel() {
        app::ChatListModel model(library_->chats());
        QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
        QCOMPARE(model.rowCount(), 0);
        const auto a = model.createChat("Alpha");
        const auto b = model.createChat("Beta");
        QCOMPARE(model.rowCount(), 2);
        QCOMPARE(model.chatId(0), b);
        QCOMPARE(model.index(1).data().toString(), QStringLiteral("Alpha"));

        QSignalSpy changed(&model, &QAbstractItemModel::dataChanged);
        QVERIFY(model.setData(model.index(1), QStringLiteral("  Alpha renamed  ")));
        QCOMPARE(changed.count(), 1);
        QCOMPARE(model.index(1).data().toString(), QStringLiteral("Alpha renamed"));
        QVERIFY(!model.setData(model.index(1), QStringLiteral("   ")));  // blank titles refused
        QCOMPARE(QString::fromStdString(library_->chats().chat(a)->title), QStringLiteral("Alpha renamed"));

        library_->chats().addMessage(b, {storage::Role::User, "a question about penguins"});
        model.setFilter(QStringLiteral("pengu"));
        QCOMPARE(model.rowCount(), 1);
        QCOMPARE(model.chatId(0), b);
        QVERIFY(model.index(0).data(app::ChatListModel::SnippetRole).toString().contains("penguins"));
        model.setFilter(QStringLiteral("renamed"));
        QCOMPARE(model.chatId(0), a);
        model.setFilter({});
        QCOMPARE(model.rowCount(), 2);

        model.deleteChat(a);
        QCOMPARE(model.rowCount(), 1);
        QCOMPARE(model.rowOf(a), -1);
    }

    // The sidebar's groups: pinned first, then by date; search results are not grouped. A pin
    // is the chat's own setting (it goes with it).
    void chatListGroupsAndPins() {
        const QDate today(2026, 12, 6);
        const auto at = [&](int daysAgo) { return QDateTime(today.addDays(-daysAgo), QTime(9, 0)); };
        QCOMPARE(app::ChatListModel::dateGroup(at(0), today), QStringLiteral("Today"));
        QCOMPARE(app::ChatListModel::dateGroup(at(1), today), QStringLiteral("Yesterday"));
        QCOMPARE(app::ChatListModel::dateGroup(at(6), today), QStringLiteral("Previous 7 days"));
        QCOMPARE(app::ChatListModel::dateGroup(at(29), today), QStringLiteral("Previous 30 days"));
        QCOMPARE(app::ChatListModel::dateGroup(at(60), today), QLocale().standaloneMonthName(10));
        QCOMPARE(app::ChatListModel::dateGroup(QDateTime(QDate(2024, 5, 1), QTime(1, 0)), today), QStringLiteral("2024"));

        app::ChatListModel model(library_->chats());
        QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
        const auto a = model.createChat("Alpha"), b = model.createChat("Beta"), c = model.createChat("Gamma");
        QCOMPARE(model.index(0).data(app::ChatListModel::GroupRole).toString(), QStringLiteral("Today"));
        QVERIFY(model.index(0).data(app::ChatListModel::GroupStartRole).toBool());
        QVERIFY(!model.index(1).data(app::ChatListModel::GroupStartRole).toBool());
        model.setPinned(a, true);
        QCOMPARE(model.chatId(0), a);
        QCOMPARE(model.index(0).data(app::ChatListModel::GroupRole).toString(), QStringLiteral("Pinned"));
        QVERIFY(model.index(0).data(app::ChatListModel::GroupStartRole).toBool() && model.index(1).data(app::ChatListModel::GroupStartRole).toBool());
        QCOMPARE(model.chatId(1), c);
        // A new chat goes first after the pinned ones.
        const auto d = model.createChat("Delta");
        QCOMPARE(model.chatId(0), a);
        QCOMPARE(model.chatId(1), d);
        QVERIFY(model.index(1).data(app::ChatListModel::GroupStartRole).toBool() && !model.index(2).data(app::ChatListModel::GroupStartRole).toBool());
        QVERIFY(model.isPinned(a) && !model.isPinned(b));
        QCOMPARE(library_->chats().setting(a, "pinned").value_or(""), std::string("1"));
        app::ChatListModel again(library_->chats());  // (remembered)
        QCOMPARE(again.chatId(0), a);
        model.setFilter(QStringLiteral("Beta"));
        QCOMPARE(model.index(0).data(app::ChatListModel::GroupRole).toString(), QString());
        model.setFilter({});
        model.setPinned(a, false);
        QVERIFY(!model.isPinned(a));
        QCOMPARE(model.chatId(model.rowCount() - 1), a);  // (the oldest again)
    }

    void messageListModel() {
        app::MessageListModel model(library_->chats());
        QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
        const auto chat = library_->chats().createChat("m").id;
        library_->chats().addMessage(chat, {storage::Role::User, "hi"});
        library_->chats().addMessage(chat, {storage::Role::Assistant, "hello", storage::MessageStatus::Stopped,
                                            {3, 1, 250.0, 12.5, std::string("tiny.gguf")}});
        model.setChat(chat);
        QCOMPARE(model.rowCount(), 2);
        QCOMPARE(model.index(0).data(app::MessageListModel::RoleNameRole).toString(), QStringLiteral("user"));
        QCOMPARE(model.index(1).data(app::MessageListModel::FooterRole).toString(),
                 QStringLiteral("tiny.gguf · TTFT 250 ms · 12.5 tokens/s · stopped"));
        QVERIFY(model.index(0).data(app::MessageListModel::FooterRole).toString().isEmpty());

        QSignalSpy inserted(&model, &QAbstractItemModel::rowsInserted);
        const auto id = library_->chats().addMessage(chat, {storage::Role::User, "more"});
        model.appendStored(id);
        QCOMPARE(inserted.count(), 1);
        QCOMPARE(model.rowCount(), 3);
        model.setChat(0);
        QCOMPARE(model.rowCount(), 0);
    }

    void assistantStoresUserMessages() {
        app::JobRunner jobs;
        app::Assistant assistant(*library_, jobs);
        QSignalSpy created(&assistant, &app::Assistant::chatCreated);
        QSignalSpy stored(&assistant, &app::Assistant::messageStored);
        QCOMPARE(assistant.submitUserMessage(0, QStringLiteral("   ")), 0);  // nothing to send
        const auto chat = assistant.submitUserMessage(0, QStringLiteral("How do rainbows form?\nAsk me anything."));
        QVERIFY(chat != 0);
        QCOMPARE(created.count(), 1);
        QCOMPARE(stored.count(), 1);
        QCOMPARE(QString::fromStdString(library_->chats().chat(chat)->title), QStringLiteral("How do rainbows form?"));
        QCOMPARE(assistant.submitUserMessage(chat, QStringLiteral("And double ones?")), chat);
        QCOMPARE(created.count(), 1);
        QCOMPARE(library_->chats().messages(chat).size(), std::size_t(2));
    }

    void titleFromMessage_data() {
        QTest::addColumn<QString>("text");
        QTest::addColumn<QString>("title");
        QTest::newRow("short") << "Hello there" << "Hello there";
        QTest::newRow("first line") << "  Line one  \nLine two" << "Line one";
        QTest::newRow("blank") << " \n " << "New chat";
        QTest::newRow("long") << "Please explain in great detail how the transformer attention mechanism works"
                              << "Please explain in great detail how the…";
    }
    void titleFromMessage() {
        QFETCH(QString, text);
        QFETCH(QString, title);
        QCOMPARE(app::Assistant::titleFromMessage(text), title);
    }

    void libraryRecoversInterruptedReplies() {
        const QString path = dir_.filePath("recover.db");
        {
            app::Library lib(path);
            const auto chat = lib.chats().createChat("c").id;
            lib.chats().addMessage(chat, {storage::Role::Assistant, "cut", storage::MessageStatus::Partial});
        }
        {
            app::Library reader(path);  // a reader leaves it alone
            QCOMPARE(reader.recoveredMessages(), 0);
        }
        app::Library lib(path, app::Library::Recovery::CloseInterrupted);
        QCOMPARE(lib.recoveredMessages(), 1);
    }

private:
    QTemporaryDir dir_;
    std::unique_ptr<app::Library> library_;
};

QTEST_GUILESS_MAIN(TestModels)
#include "tst_models.moc"
