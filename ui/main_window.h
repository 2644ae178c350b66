#pragma once
// Lumen's main window: the chat list (with search), the transcript and the composer.

#include <QMainWindow>

#include "app/library.h"

class QAction;
class QLabel;
class QLineEdit;
class QListView;
class QPushButton;

namespace lumen::app {
class Assistant;
class ChatListModel;
class MessageListModel;
}  // namespace lumen::app

namespace lumen::ui {

class Composer;
class TranscriptView;

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(app::Library& library, QWidget* parent = nullptr);
    ~MainWindow() override;

    std::int64_t currentChatId() const;
    // Selects the chat in the list and shows its messages.
    void selectChat(std::int64_t chatId);

    app::ChatListModel& chatListModel() { return *chatList_; }
    app::MessageListModel& messageListModel() { return *messages_; }

public slots:
    void newChat();
    void renameCurrentChat();
    void deleteCurrentChat();
    void sendMessage();
    void exportCurrentChat(const QString& format);
    void importChat();

protected:
    void closeEvent(QCloseEvent* event) override;

private:
    void buildActions();
    void buildLayout();
    void showChat(std::int64_t chatId);
    void showError(const QString& message);
    void updateActions();

    app::Library& library_;
    app::Assistant* assistant_;
    app::ChatListModel* chatList_;
    app::MessageListModel* messages_;

    QLineEdit* search_ = nullptr;
    QListView* chatView_ = nullptr;
    QLabel* chatTitle_ = nullptr;
    TranscriptView* transcript_ = nullptr;
    Composer* composer_ = nullptr;
    QPushButton* sendButton_ = nullptr;

    QAction* newChatAction_ = nullptr;
    QAction* renameAction_ = nullptr;
    QAction* deleteAction_ = nullptr;
    QAction* exportMarkdownAction_ = nullptr;
    QAction* exportJsonAction_ = nullptr;
};

}  // namespace lumen::ui
