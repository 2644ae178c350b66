// The main window, driven through its real widgets under the offscreen platform.

#include <QAbstractItemView>
#include <QAction>
#include <QLineEdit>
#include <QListView>
#include <QMessageBox>
#include <QPushButton>
#include <QTimer>
#include <QtTest>

#include "app/chat_list_model.h"
#include "app/library.h"
#include "app/message_list_model.h"
#include "test_util.h"
#include "ui/composer.h"
#include "ui/main_window.h"
#include "ui/transcript_view.h"

using namespace lumen;

class TestMainWindow : public QObject {
    Q_OBJECT
private slots:
    void init() {
        QVERIFY(dir_.isValid());
        path_ = dir_.filePath(QTest::currentTestFunction() + QStringLiteral(".db"));
    }

    void typedMessageIsStoredAndShownAfterRestart() {
        {
            app::Library library(path_, app::Library::Recovery::CloseInterrupted);
            ui::MainWindow window(library);
            window.show();
            QVERIFY(QTest::qWaitForWindowExposed(&window));

            auto* newChat = window.findChild<QAction*>("newChatAction");
            QVERIFY(newChat);
            newChat->trigger();
            QCOMPARE(window.chatListModel().rowCount(), 1);

            auto* composer = window.findChild<ui::Composer*>("composer");
            QVERIFY(composer);
            composer->setFocus();
            QTest::keyClicks(composer, "Hello Lumen");
            QTest::keyClick(composer, Qt::Key_Return, Qt::ShiftModifier);  // new line, not send
            QTest::keyClicks(composer, "second line");
            QCOMPARE(composer->toPlainText(), QStringLiteral("Hello Lumen\nsecond line"));
            QTest::keyClick(composer, Qt::Key_Return);  // send
            QVERIFY(composer->toPlainText().isEmpty());

            const auto chatId = window.currentChatId();
            const auto stored = library.chats().messages(chatId);
            QCOMPARE(stored.size(), std::size_t(1));
            QCOMPARE(QString::fromStdString(stored[0].content), QStringLiteral("Hello Lumen\nsecond line"));
            QVERIFY(stored[0].role == storage::Role::User);
            auto* transcript = window.findChild<ui::TranscriptView*>("transcript");
            QVERIFY(transcript->toPlainText().contains("Hello Lumen"));
            window.close();
        }
        // Restart: the chat and its message are shown again.
        app::Library library(path_, app::Library::Recovery::CloseInterrupted);
        ui::MainWindow window(library);
        window.show();
        QVERIFY(QTest::qWaitForWindowExposed(&window));
        QCOMPARE(window.chatListModel().rowCount(), 1);
        QVERIFY(window.currentChatId() != 0);
        auto* transcript = window.findChild<ui::TranscriptView*>("transcript");
        QVERIFY(transcript->toPlainText().contains("Hello Lumen"));
        QVERIFY(transcript->toPlainText().contains("second line"));
    }

    void sendingWithoutChatCreatesOne() {
        app::Library library(path_);
        ui::MainWindow window(library);
        window.show();
        QVERIFY(QTest::qWaitForWindowExposed(&window));
        QCOMPARE(window.currentChatId(), 0);
        auto* send = window.findChild<QPushButton*>("sendButton");
        QVERIFY(!send->isEnabled());  // nothing typed yet
        auto* composer = window.findChild<ui::Composer*>("composer");
        QTest::keyClicks(composer, "What is the capital of Portugal?");
        QVERIFY(send->isEnabled());
        QTest::mouseClick(send, Qt::LeftButton);
        QVERIFY(window.currentChatId() != 0);
        QCOMPARE(QString::fromStdString(library.chats().chat(window.currentChatId())->title),
                 QStringLiteral("What is the capital of Portugal?"));
        QCOMPARE(window.messageListModel().rowCount(), 1);
    }

    void renameAndDeleteChats() {
        app::Library library(path_);
        ui::MainWindow window(library);
        window.show();
        QVERIFY(QTest::qWaitForWindowExposed(&window));
        window.newChat();
        window.newChat();
        QCOMPARE(window.chatListModel().rowCount(), 2);
        const auto id = window.currentChatId();

        // Rename in place through the list's editor.
        auto* list = window.findChild<QListView*>("chatList");
        const QModelIndex index = window.chatListModel().index(window.chatListModel().rowOf(id));
        list->setFocus();
        list->edit(index);
        auto* editor = qobject_cast<QLineEdit*>(list->indexWidget(index));
        if (!editor) editor = list->viewport()->findChild<QLineEdit*>();
        QVERIFY(editor);
        editor->setText(QString());
        QTest::keyClicks(editor, "Groceries");
        QCOMPARE(editor->text(), QStringLiteral("Groceries"));
        QTest::keyClick(editor, Qt::Key_Return);
        // The delegate commits from a queued call.
        QTRY_COMPARE(QString::fromStdString(library.chats().chat(id)->title), QStringLiteral("Groceries"));

        // Delete asks first; accept the question.
        QTimer::singleShot(0, this, [] {
            auto* box = qobject_cast<QMessageBox*>(QApplication::activeModalWidget());
            QVERIFY(box);
            auto* remove = box->findChild<QPushButton*>("confirmDeleteButton");
            QVERIFY(remove);
            remove->click();
        });
        window.findChild<QAction*>("deleteChatAction")->trigger();
        QVERIFY(!library.chats().chat(id));
        QCOMPARE(window.chatListModel().rowCount(), 1);
        QVERIFY(window.currentChatId() != 0);  // the next chat is selected
    }

    void searchFiltersChatList() {
        app::Library library(path_);
        const auto a = library.chats().createChat("Bread recipes").id;
        library.chats().addMessage(a, {storage::Role::User, "sourdough starter"});
        library.chats().createChat("Tax questions");
        ui::MainWindow window(library);
        window.show();
        QVERIFY(QTest::qWaitForWindowExposed(&window));
        auto* search = window.findChild<QLineEdit*>("chatSearch");
        QTest::keyClicks(search, "sourd");
        QCOMPARE(window.chatListModel().rowCount(), 1);
        QCOMPARE(window.chatListModel().chatId(0), a);
        search->clear();
        QCOMPARE(window.chatListModel().rowCount(), 2);
    }

private:
    QTemporaryDir dir_;
    QString path_;
};

QTEST_MAIN(TestMainWindow)
#include "tst_main_window.moc"
