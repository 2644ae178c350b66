#pragma once
// Lumen's main window: the chat list (with search), the transcript and the composer.

#include <QHash>
#include <QMainWindow>
#include <QPointer>

#include "app/job_runner.h"
#include "app/download_queue.h"
#include "app/library.h"
#include "app/remote_client.h"
#include "ui/icons.h"
#include "ui/theme.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

class QAction;
class QComboBox;
class QProgressBar;
class QToolButton;
class QLabel;
class QLineEdit;
class QListView;
class QPushButton;

namespace lumen::app {
struct ImportedImage;
class Assistant;
class ChatListModel;
class MessageListModel;
class VisionService;
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
    app::Assistant& assistant() { return *assistant_; }
    app::VisionService& vision() { return *vision_; }
    app::MessageListModel& messageListModel() { return *messages_; }

public slots:
    void newChat();
    void renameCurrentChat();
    // Deletes at once; Undo Delete (Ctrl+Shift+Z) restores the last deleted chat.
    void deleteCurrentChat();
    void undoDelete();
    void sendMessage();
    void exportCurrentChat(const QString& format);
    void importChat();
    // Loads an LLM GGUF on the engine's thread (the status bar says when it is ready).
    void openModel(const QString& path);
    // Shows what the file is and what it needs (memory against what is free), then loads it.
    void confirmAndOpenModel(const QString& path);
    // Replies from an OpenAI-compatible server instead (the status bar says when it answers);
    // keyFromKeychain: the API key kept for its address is used.
    void connectRemote(const app::RemoteConfig& config, bool seesImages, bool keyFromKeychain = false);
    // The image projector (mmproj GGUF) for the loaded model, and the CLIP folder for Classify.
    void openImageProjector(const QString& path);
    void openClipFolder(const QString& folder);

    // Refills the Template box from the store (after the templates were edited elsewhere).
    void reloadTemplateChoices();

protected:
    void closeEvent(QCloseEvent* event) override;
    void changeEvent(QEvent* event) override;

private:
    QIcon themedIcon(Icon which) const;
    // File > Connect to a Server…; connectRemote uses a server (its key from the keychain when asked).
    void connectToServer();
    void showModelsDialog();
    void showConnecting(const app::RemoteConfig& config);
    void buildActions();
    void buildLayout();
    void showChat(std::int64_t chatId);
    void showError(const QString& message);
    void updateActions();
    // Moves and shrinks the window to lie wholly on the screen it is mostly on (or the primary
    // one): a geometry saved at another scale factor, or beside a screen now gone, may not.
    void fitOnScreen();
    void attachImage(const app::ImportedImage& image);
    void rebuildAttachmentBar();
    void onImageAction(const QString& action, const QString& sha256);
    void classifyImage(const QString& sha256);
    void editMessage(qint64 messageId);
    void cancelEdit();
    // "1,234 / 4,096 tokens": the current chat's last reply against the loaded model's context.
    void updateContextMeter();
    // The header's model button: the loaded model's file name, or an invitation to choose one.
    void updateModelPicker();
    // Applies and remembers the theme, and checks its menu entry.
    void setTheme(Theme theme, bool remember = true);
    void rebuildModelMenu();

    app::Library& library_;
    // The background lanes (LLM, vision) and their shared CPU pool: made before, and gone after,
    // the assistant and the vision service whose jobs run there.
    std::unique_ptr<app::JobRunner> jobs_;
    // Model downloads (File > Download Models…), on the downloads lane: gone before the lanes.
    std::unique_ptr<app::DownloadQueue> downloads_;
    QPointer<class ModelsDialog> modelsDialog_;
    app::Assistant* assistant_;
    app::ChatListModel* chatList_;
    app::MessageListModel* messages_;
    app::VisionService* vision_;

    QLineEdit* search_ = nullptr;
    QListView* chatView_ = nullptr;
    QLabel* chatTitle_ = nullptr;
    QLabel* contextMeter_ = nullptr;
    QToolButton* modelPicker_ = nullptr;
    QAction* reloadAction_ = nullptr;
    QAction* pinAction_ = nullptr;
    QAction* unloadAction_ = nullptr;
    bool reloadWanted_ = false;  // settings that apply at the next load changed since it loaded
    TranscriptView* transcript_ = nullptr;
    Composer* composer_ = nullptr;
    QPushButton* sendButton_ = nullptr;
    QPushButton* stopButton_ = nullptr;
    QWidget* noModelBar_ = nullptr;
    QWidget* attachmentBar_ = nullptr;
    QComboBox* templateChoice_ = nullptr;
    std::vector<std::string> attachments_;  // images for the next message (SHA-256)
    // What was typed (and attached) in chats left before sending, by chat: each chat keeps its draft.
    struct Draft {
        QString text;
        std::vector<std::string> attachments;
    };
    std::map<std::int64_t, Draft> drafts_;
    std::int64_t editing_ = 0;              // the user message being edited, 0: none
    bool restoringProjector_ = false;
    QWidget* answerBar_ = nullptr;          // "your last message has no answer yet": answer it now       // the remembered image projector is loading (its failure is a note, not an error)
    QHash<QString, QString> templateValues_;  // the last values given to template variables
    QLabel* modelLabel_ = nullptr;
    QProgressBar* loadingBar_ = nullptr;
    QToolButton* cancelLoadButton_ = nullptr;

    QAction* newChatAction_ = nullptr;
    QAction* renameAction_ = nullptr;
    QAction* deleteAction_ = nullptr;
    QAction* exportMarkdownAction_ = nullptr;
    QAction* exportJsonAction_ = nullptr;
    QAction* stopAction_ = nullptr;
    QAction* undoDeleteAction_ = nullptr;
    QAction* chatSettingsAction_ = nullptr;
    std::string deletedChat_;  // the last deleted chat, exported as JSON
    QAction* regenerateAction_ = nullptr;
    QAction* thinkAction_ = nullptr;
};

}  // namespace lumen::ui
