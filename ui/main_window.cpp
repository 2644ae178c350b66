#include "ui/main_window.h"

#include <QAction>
#include <QActionGroup>
#include <tuple>
#include <QApplication>
#include <QCloseEvent>
#include <QComboBox>
#include <QDialog>
#include <QDialogButtonBox>
#include <QFormLayout>
#include <QTextCursor>
#include <QToolButton>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QInputDialog>
#include <QItemSelectionModel>
#include <QLabel>
#include <QLineEdit>
#include <QGuiApplication>
#include <QListView>
#include <QScreen>
#include <QMenuBar>
#include <QMessageBox>
#include <QProgressBar>
#include <QPushButton>
#include <QRegularExpression>
#include <QSaveFile>
#include <QSplitter>
#include <QStatusBar>
#include <QToolBar>
#include <QVBoxLayout>

#include "app/app_paths.h"
#include "app/assistant.h"
#include "app/chat_list_model.h"
#include "app/image_import.h"
#include "app/vision_service.h"
#include "app/message_list_model.h"
#include "app/read_file.h"
#include "ui/chat_list_delegate.h"
#include "ui/composer.h"
#include "ui/settings_dialog.h"
#include "ui/template_editor.h"
#include "ui/label_set_editor.h"
#include "app/prompt_builder.h"
#include "ui/theme.h"
#include "ui/connect_dialog.h"
#include "ui/models_dialog.h"
#include "ui/icons.h"
#include "ui/transcript_view.h"

namespace lumen::ui {
namespace {

constexpr const char* kGeometryKey = "ui.main_window.geometry";
constexpr const char* kLastChatKey = "ui.main_window.last_chat";
constexpr const char* kProjectorKey = "model.mmproj.path";

}  // namespace

MainWindow::MainWindow(app::Library& library, QWidget* parent)
    : QMainWindow(parent),
      library_(library),
      jobs_(std::make_unique<app::JobRunner>()),
      downloads_(std::make_unique<app::DownloadQueue>(*jobs_, app::modelsFolderBeside(library.path()), [this] { return assistant_->hubConfigNow(); })),
      assistant_(new app::Assistant(library, *jobs_, this)),
      chatList_(new app::ChatListModel(library.chats(), this)),
      messages_(new app::MessageListModel(library.chats(), this)),
      vision_(new app::VisionService(library, *jobs_, this)) {
    setObjectName(QStringLiteral("mainWindow"));
    setWindowTitle(QStringLiteral("Lumen"));
    buildActions();
    buildLayout();
    updateModelPicker();
    // The theme of the last session (the system's by default).
    try {
        const auto stored = library.settings().get(kThemeKey);
        const int theme = stored ? QString::fromStdString(*stored).toInt() : 0;
        setTheme(theme == 1 ? Theme::Light : theme == 2 ? Theme::Dark : Theme::System, false);
    } catch (const storage::Error&) {
        setTheme(Theme::System, false);
    }
    reloadTemplateChoices();
    if (library.readOnly()) {
        // A damaged database the user chose to read: say so for as long as the window is open.
        setWindowTitle(tr("Lumen (read-only)"));
        auto* banner = new QLabel(tr("The database is damaged and open read-only: you can read and copy your chats, but nothing new is saved."));
        banner->setObjectName(QStringLiteral("readOnlyBanner"));
        statusBar()->addPermanentWidget(banner, 1);
    }

    connect(chatList_, &app::ChatListModel::errorOccurred, this, &MainWindow::showError);
    connect(messages_, &app::MessageListModel::errorOccurred, this, &MainWindow::showError);
    connect(assistant_, &app::Assistant::errorOccurred, this, &MainWindow::showError);
    // A full disk while a reply streams: one warning; the status bar says when it is saved.
    connect(assistant_, &app::Assistant::replySaving, this, [this](qint64, qint64, bool saved, const QString& message) {
        if (saved) statusBar()->showMessage(message, 10000);
        else showError(message);
    });
    connect(assistant_, &app::Assistant::replyStarted, this, [this](qint64 chatId, qint64 messageId) {
        if (chatId == currentChatId()) messages_->appendStored(messageId);
        updateActions();
    });
    connect(assistant_, &app::Assistant::replyPiece, this, [this](qint64 chatId, qint64 messageId, const QString& piece) {
        if (chatId == currentChatId()) messages_->appendToMessage(messageId, piece);
    });
    connect(assistant_, &app::Assistant::replyReasoning, this, [this](qint64 chatId, qint64 messageId, const QString& piece) {
        if (chatId == currentChatId()) messages_->appendReasoningToMessage(messageId, piece);
    });
    connect(assistant_, &app::Assistant::replyFinished, this, [this](qint64 chatId, qint64 messageId) {
        if (chatId == currentChatId()) messages_->refreshMessage(messageId);
        chatList_->reload();
        updateActions();
        updateContextMeter();
    });
    connect(assistant_, &app::Assistant::notice, this, [this](qint64, const QString& message) { statusBar()->showMessage(message, 15000); });
    connect(assistant_, &app::Assistant::modelLoaded, this, [this](const QString& name) {
        loadingBar_->hide();
        cancelLoadButton_->hide();
        modelLabel_->setText(name);
        statusBar()->showMessage(tr("Model loaded: %1").arg(name), 5000);
        reloadWanted_ = false;
        updateActions();
        updateContextMeter();
        updateModelPicker();
    });
    connect(&assistant_->engine(), &app::ChatEngine::imageProjectorLoaded, this, [this](const QString& description) {
        statusBar()->showMessage(tr("Image projector loaded: %1").arg(description), 5000);
        try {
            library_.settings().set(kProjectorKey, assistant_->engine().imageProjectorPath().toStdString());
        } catch (const storage::Error&) {
        }
    });
    connect(vision_, &app::VisionService::clipLoaded, this, [this](const QString& description) {
        statusBar()->showMessage(tr("CLIP loaded: %1").arg(description), 5000);
    });
    connect(vision_, &app::VisionService::dinov2Loaded, this, [this](const QString& description) {
        statusBar()->showMessage(tr("DINOv2 loaded: %1 (few-shot label sets use it)").arg(description), 5000);
    });
    connect(vision_, &app::VisionService::failed, this, &MainWindow::showError);
    connect(&assistant_->engine(), &app::ChatEngine::loadNote, this, [this](const QString& note) { statusBar()->showMessage(note, 15000); });
    connect(vision_, &app::VisionService::cancelled, this, [this] { statusBar()->showMessage(tr("Classification stopped."), 5000); });
    // Vision jobs say what they do and how far they are in the status line; Esc stops them.
    connect(jobs_.get(), &app::JobRunner::started, this, [this](quint64, int lane, const QString& title) {
        if (lane != static_cast<int>(app::Lane::Vision)) return;
        statusBar()->showMessage(vision_->isClassifying() ? tr("%1… (Esc stops)").arg(title) : tr("%1…").arg(title));
        updateActions();
    });
    connect(jobs_.get(), &app::JobRunner::progressed, this, [this](quint64, int lane, double fraction, const QString& note) {
        if (lane != static_cast<int>(app::Lane::Vision)) return;
        statusBar()->showMessage(fraction >= 0 ? tr("%1 (%2%)… (Esc stops)").arg(note).arg(qRound(fraction * 100)) : tr("%1… (Esc stops)").arg(note));
    });
    connect(jobs_.get(), &app::JobRunner::finished, this, [this](quint64, int lane, bool) {
        if (lane == static_cast<int>(app::Lane::Vision)) updateActions();
    });
    connect(vision_, &app::VisionService::classified, this, [this](qint64 chatId, qint64 messageId) {
        if (chatId == currentChatId()) messages_->appendStored(messageId);
        chatList_->reload();
    });
    connect(assistant_, &app::Assistant::modelLoaded, this, [this] {
        // The projector of the last session goes with its LLM (a server's model sees by itself).
        if (assistant_->engine().isRemote()) return;
        try {
            if (const auto path = library_.settings().get(kProjectorKey); path && QFileInfo::exists(QString::fromStdString(*path))) {
                restoringProjector_ = true;
                assistant_->engine().loadImageProjector(QString::fromStdString(*path));
            }
        } catch (const storage::Error&) {
        }
    });
    connect(&assistant_->engine(), &app::ChatEngine::imageProjectorLoaded, this, [this] { restoringProjector_ = false; });
    connect(&assistant_->engine(), &app::ChatEngine::imageProjectorFailed, this, [this](const QString& message) {
        if (!restoringProjector_) return showError(message);  // one the user chose: say why
        // The projector remembered from last time does not fit this model: set aside quietly,
        // with a note, instead of an error at every start and every model load.
        restoringProjector_ = false;
        try {
            library_.settings().remove(kProjectorKey);
        } catch (const storage::Error&) {
        }
        statusBar()->showMessage(tr("The image projector from last time was set aside (%1). File ▸ Open Image Projector… chooses one for this model.")
                                     .arg(message),
                                 15000);
    });
    connect(&assistant_->engine(), &app::ChatEngine::loadFailed, this, [this] {
        loadingBar_->hide();
        cancelLoadButton_->hide();
        // (a file that cannot run leaves the model that was loaded in place)
        modelLabel_->setText(assistant_->engine().isLoaded() ? assistant_->engine().modelName() : tr("No model loaded"));
        updateActions();
        updateModelPicker();
    });
    connect(&assistant_->engine(), &app::ChatEngine::modelUnloaded, this, [this] {
        modelLabel_->setText(tr("No model loaded"));
        reloadWanted_ = false;
        updateActions();
        updateContextMeter();
        updateModelPicker();
    });

    try {
        const auto geometry = library_.settings().get(kGeometryKey);
        if (geometry) restoreGeometry(QByteArray::fromBase64(QByteArray::fromStdString(*geometry)));
        else resize(1100, 720);
        fitOnScreen();
        const auto last = library_.settings().get(kLastChatKey);
        const std::int64_t lastChat = last ? QString::fromStdString(*last).toLongLong() : 0;
        selectChat(chatList_->rowOf(lastChat) >= 0 ? lastChat : chatList_->chatId(0));
    } catch (const storage::Error& e) {
        showError(QString::fromUtf8(e.what()));
    }
    modelLabel_ = new QLabel(tr("No model loaded"));
    modelLabel_->setObjectName(QStringLiteral("modelLabel"));
    loadingBar_ = new QProgressBar;
    loadingBar_->setObjectName(QStringLiteral("loadingBar"));
    loadingBar_->setRange(0, 0);  // busy: mapping the file and building the tokenizer
    loadingBar_->setMaximumWidth(120);
    loadingBar_->hide();
    cancelLoadButton_ = new QToolButton;
    cancelLoadButton_->setObjectName(QStringLiteral("cancelLoadButton"));
    cancelLoadButton_->setText(tr("Cancel"));
    cancelLoadButton_->setToolTip(tr("Stop loading the model"));
    cancelLoadButton_->hide();
    connect(cancelLoadButton_, &QToolButton::clicked, this, [this] { assistant_->engine().cancelLoad(); });
    connect(&assistant_->engine(), &app::ChatEngine::loadCancelled, this, [this] {
        loadingBar_->hide();
        cancelLoadButton_->hide();
        const bool kept = assistant_->engine().isLoaded();  // (cancelled before the loaded model was let go)
        modelLabel_->setText(kept ? assistant_->engine().modelName() : tr("No model loaded"));
        statusBar()->showMessage(kept ? tr("Loading was cancelled; %1 stays loaded.").arg(assistant_->engine().modelName()) : tr("Loading was cancelled."), 5000);
        updateActions();
        updateModelPicker();
    });
    statusBar()->addPermanentWidget(loadingBar_);
    statusBar()->addPermanentWidget(cancelLoadButton_);
    statusBar()->addPermanentWidget(modelLabel_);
    // The local server's address while it serves (Settings > Local server).
    auto* serverLabel = new QLabel;
    serverLabel->setObjectName(QStringLiteral("serverLabel"));
    serverLabel->setTextInteractionFlags(Qt::TextSelectableByMouse);
    serverLabel->hide();
    statusBar()->addPermanentWidget(serverLabel);
    connect(&assistant_->engine(), &app::ChatEngine::serverStarted, this, [this, serverLabel](const QString& url) {
        serverLabel->setText(tr("Serving at %1").arg(url));
        serverLabel->setToolTip(tr("Other programs reach the model through the OpenAI API at %1").arg(url));
        serverLabel->show();
        statusBar()->showMessage(tr("The local server is serving the model at %1").arg(url), 8000);
    });
    connect(&assistant_->engine(), &app::ChatEngine::serverStopped, this, [serverLabel] { serverLabel->hide(); });
    statusBar()->showMessage(tr("Database: %1").arg(library_.path()));
    // The model of the last session, when its file is still there, or the server it used.
    try {
        if (const auto path = library_.settings().get(app::Assistant::kModelPathKey); path && QFileInfo::exists(QString::fromStdString(*path))) {
            openModel(QString::fromStdString(*path));
        } else if (const auto remote = assistant_->rememberedRemote()) {
            connectRemote(remote->config, remote->seesImages, true);
        }
        // CLIP, then DINOv2 (one load at a time).
        const auto dino = library_.settings().get(app::VisionService::kDinov2PathKey);
        const QString dinoPath = dino && QFileInfo::exists(QString::fromStdString(*dino)) ? QString::fromStdString(*dino) : QString();
        if (const auto clip = library_.settings().get(app::VisionService::kClipPathKey); clip && QFileInfo::exists(QString::fromStdString(*clip))) {
            vision_->loadClip(QString::fromStdString(*clip));
            if (!dinoPath.isEmpty())
                connect(vision_, &app::VisionService::clipLoaded, this, [this, dinoPath] {
                    if (!vision_->hasDinov2()) vision_->loadDinov2(dinoPath);
                }, Qt::SingleShotConnection);
        } else if (!dinoPath.isEmpty()) {
            vision_->loadDinov2(dinoPath);
        }
    } catch (const storage::Error& e) {
        showError(QString::fromUtf8(e.what()));
    }
    if (library_.recoveredMessages() > 0)
        statusBar()->showMessage(tr("%n reply(ies) interrupted when Lumen last closed were kept as stopped.", "",
                                    library_.recoveredMessages()),
                                 10000);
    updateActions();
    composer_->setFocus();
}

MainWindow::~MainWindow() {
    // The widgets' signals stop reaching the window (their slots use the services going below).
    for (QObject* child : findChildren<QObject*>()) QObject::disconnect(child, nullptr, this, nullptr);
    QObject::disconnect(&assistant_->engine(), nullptr, this, nullptr);
    QObject::disconnect(jobs_.get(), nullptr, this, nullptr);
    // What runs on the lanes ends; the services wait for their own jobs, then the lanes go.
    jobs_->cancelAll();
    delete modelsDialog_;  // (it uses the queue)
    downloads_.reset();  // (what arrived stays in the part files, for the next start)
    delete vision_;
    vision_ = nullptr;
    delete assistant_;
    assistant_ = nullptr;
}

// An icon of Lumen's set in this window's colours (another theme redraws them: changeEvent).
QIcon MainWindow::themedIcon(Icon which) const { return makeIcon(which, palette()); }

void MainWindow::changeEvent(QEvent* event) {
    QMainWindow::changeEvent(event);
    if (event->type() != QEvent::PaletteChange) return;
    for (QAction* action : findChildren<QAction*>())
        if (const auto which = iconOf(action->icon())) action->setIcon(themedIcon(*which));
    for (QAbstractButton* button : findChildren<QAbstractButton*>())
        if (const auto which = iconOf(button->icon())) button->setIcon(themedIcon(*which));
}

void MainWindow::buildActions() {
    QMenu* fileMenu = menuBar()->addMenu(tr("&File"));
    newChatAction_ = fileMenu->addAction(themedIcon(Icon::NewChat), tr("&New Chat"),
                                         this, &MainWindow::newChat);
    newChatAction_->setObjectName(QStringLiteral("newChatAction"));
    newChatAction_->setShortcut(QKeySequence::New);
    fileMenu->addSeparator();
    exportMarkdownAction_ = fileMenu->addAction(tr("Export Chat as &Markdown…"), this,
                                                [this] { exportCurrentChat(QStringLiteral("md")); });
    exportJsonAction_ = fileMenu->addAction(tr("Export Chat as &JSON…"), this,
                                            [this] { exportCurrentChat(QStringLiteral("json")); });
    fileMenu->addAction(tr("&Import Chat…"), this, &MainWindow::importChat);
    fileMenu->addSeparator();
    QAction* openModelAction = fileMenu->addAction(themedIcon(Icon::OpenModel), tr("&Open Model…"), this, [this] {
        const QString path = QFileDialog::getOpenFileName(this, tr("Open Model"), {}, tr("GGUF models (*.gguf)"));
        if (!path.isEmpty()) confirmAndOpenModel(path);
    });
    openModelAction->setObjectName(QStringLiteral("openModelAction"));
    openModelAction->setShortcut(QKeySequence::Open);
    QAction* downloadAction = fileMenu->addAction(tr("&Download Models…"), this, &MainWindow::showModelsDialog);
    downloadAction->setObjectName(QStringLiteral("downloadModelsAction"));
    downloadAction->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_M));
    QAction* connectAction = fileMenu->addAction(tr("Connect to a &Server…"), this, &MainWindow::connectToServer);
    connectAction->setObjectName(QStringLiteral("connectServerAction"));
    connectAction->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_O));
    connectAction->setToolTip(tr("Chat through a model on an OpenAI-compatible server (vLLM, llama-server, Ollama, LM Studio)"));
    reloadAction_ = fileMenu->addAction(tr("&Reload Model"), this, [this] {
        if (!assistant_->engine().isLoaded()) return;
        reloadWanted_ = false;
        openModel(assistant_->engine().modelPath());
    });
    reloadAction_->setObjectName(QStringLiteral("reloadModelAction"));
    reloadAction_->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_R));
    unloadAction_ = fileMenu->addAction(tr("&Unload Model"), this, [this] {
        if (!assistant_->engine().isLoaded()) return;
        const QString name = assistant_->engine().modelName();
        assistant_->unloadModel();
        statusBar()->showMessage(tr("%1 was unloaded; its memory is free.").arg(name), 8000);
    });
    unloadAction_->setObjectName(QStringLiteral("unloadModelAction"));
    auto* openProjectorAction = fileMenu->addAction(tr("Open Image &Projector…"), this, [this] {
        const QString path = QFileDialog::getOpenFileName(this, tr("Open Image Projector (mmproj)"), {}, tr("mmproj GGUF (*.gguf)"));
        if (!path.isEmpty()) openImageProjector(path);
    });
    openProjectorAction->setObjectName(QStringLiteral("openProjectorAction"));
    fileMenu->addAction(tr("Open &CLIP Folder…"), this, [this] {
        const QString dir = QFileDialog::getExistingDirectory(this, tr("Open CLIP Folder"));
        if (!dir.isEmpty()) openClipFolder(dir);
    });
    fileMenu->addAction(tr("Open &DINOv2 Folder…"), this, [this] {
        const QString dir = QFileDialog::getExistingDirectory(this, tr("Open DINOv2 Folder (few-shot features)"));
        if (!dir.isEmpty()) vision_->loadDinov2(dir);
    });
    fileMenu->addSeparator();
    QAction* quit = fileMenu->addAction(tr("&Quit"), this, &QWidget::close);
    quit->setShortcut(QKeySequence::Quit);

    QMenu* chatMenu = menuBar()->addMenu(tr("&Chat"));
    renameAction_ = chatMenu->addAction(tr("&Rename…"), this, &MainWindow::renameCurrentChat);
    renameAction_->setObjectName(QStringLiteral("renameChatAction"));
    renameAction_->setShortcut(Qt::Key_F2);
    pinAction_ = chatMenu->addAction(tr("&Pin to the Top"), this, [this] {
        const std::int64_t id = currentChatId();
        if (id == 0) return;
        chatList_->setPinned(id, !chatList_->isPinned(id));
        selectChat(id);  // (the list was sorted again)
    });
    pinAction_->setObjectName(QStringLiteral("pinChatAction"));
    pinAction_->setCheckable(true);
    pinAction_->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_P));
    deleteAction_ = chatMenu->addAction(themedIcon(Icon::Delete), tr("&Delete"), this,
                                        &MainWindow::deleteCurrentChat);
    deleteAction_->setObjectName(QStringLiteral("deleteChatAction"));
    deleteAction_->setShortcut(QKeySequence::Delete);
    deleteAction_->setShortcutContext(Qt::WidgetWithChildrenShortcut);
    undoDeleteAction_ = chatMenu->addAction(themedIcon(Icon::Undo), tr("&Undo Delete"), this, &MainWindow::undoDelete);
    undoDeleteAction_->setObjectName(QStringLiteral("undoDeleteAction"));
    undoDeleteAction_->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_Z));
    undoDeleteAction_->setEnabled(false);
    QAction* find = chatMenu->addAction(tr("&Search Chats"), this, [this] {
        search_->setFocus();
        search_->selectAll();
    });
    find->setShortcut(QKeySequence::Find);
    chatMenu->addSeparator();
    stopAction_ = chatMenu->addAction(themedIcon(Icon::Stop), tr("S&top Reply"), this, [this] {
        if (assistant_->isReplying()) assistant_->stop();
        else if (vision_->isClassifying()) vision_->cancel();
        else if (editing_ != 0) cancelEdit();
    });
    stopAction_->setObjectName(QStringLiteral("stopAction"));
    stopAction_->setShortcut(Qt::Key_Escape);
    regenerateAction_ = chatMenu->addAction(themedIcon(Icon::Regenerate), tr("Re&generate Reply"), this, [this] {
        if (assistant_->regenerate(currentChatId())) messages_->reload();
    });
    regenerateAction_->setObjectName(QStringLiteral("regenerateAction"));
    regenerateAction_->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_R));
    // Reasoning models (Qwen3 and others whose template reads enable_thinking) think first unless
    // this is off for the chat.
    thinkAction_ = chatMenu->addAction(tr("T&hink Before Answering"));
    thinkAction_->setObjectName(QStringLiteral("thinkAction"));
    thinkAction_->setCheckable(true);
    thinkAction_->setChecked(true);
    thinkAction_->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_K));
    thinkAction_->setToolTip(tr("Reasoning models show their thinking, collapsed, above the answer"));
    connect(thinkAction_, &QAction::triggered, this, [this](bool on) {
        if (currentChatId() != 0) assistant_->setChatThinks(currentChatId(), on);
    });

    QAction* templates = chatMenu->addAction(tr("Prompt &Templates…"), this, [this] {
        TemplateEditor editor(library_, *assistant_, this);
        editor.exec();
        reloadTemplateChoices();
    });
    templates->setObjectName(QStringLiteral("templatesAction"));
    templates->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_T));

    QAction* labelSets = chatMenu->addAction(tr("&Label Sets…"), this, [this] {
        LabelSetEditor editor(library_, this);
        editor.exec();
    });
    labelSets->setObjectName(QStringLiteral("labelSetsAction"));
    labelSets->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_L));

    QMenu* settingsMenu = menuBar()->addMenu(tr("&Settings"));
    QAction* settings = settingsMenu->addAction(themedIcon(Icon::Settings), tr("&Settings…"), this, [this] {
        const app::EngineOptions before = assistant_->engineOptions();
        SettingsDialog dialog(library_, *assistant_, 0, this);
        if (dialog.exec() != QDialog::Accepted || !assistant_->engine().isLoaded()) return;
        // Settings that take effect at the next load: the model picker offers the reload.
        const app::EngineOptions& after = assistant_->engineOptions();
        reloadWanted_ = after.threads != before.threads || after.contextSize != before.contextSize || after.gpuLayers != before.gpuLayers ||
                        after.kvType != before.kvType || after.snapshotMiB != before.snapshotMiB;
        if (reloadWanted_) statusBar()->showMessage(tr("The new settings apply when the model is loaded again: the model menu ▸ Reload (%1).")
                                                        .arg(reloadAction_->shortcut().toString(QKeySequence::NativeText)), 15000);
        updateModelPicker();
    });
    settings->setObjectName(QStringLiteral("settingsAction"));
    settings->setShortcut(QKeySequence::Preferences);
    // Light and dark: the system's look unless the user picks one (remembered).
    QMenu* themeMenu = settingsMenu->addMenu(tr("&Theme"));
    auto* themes = new QActionGroup(this);
    for (const auto& [theme, text, name] : {std::tuple{Theme::System, tr("Follow the &System"), "themeSystem"},
                                            std::tuple{Theme::Light, tr("&Light"), "themeLight"}, std::tuple{Theme::Dark, tr("&Dark"), "themeDark"}}) {
        QAction* a = themeMenu->addAction(text, this, [this, theme = theme] { setTheme(theme); });
        a->setObjectName(QString::fromLatin1(name));
        a->setCheckable(true);
        a->setData(static_cast<int>(theme));
        themes->addAction(a);
    }
    chatSettingsAction_ = settingsMenu->addAction(tr("Settings for This &Chat…"), this, [this] {
        const std::int64_t id = currentChatId();
        if (id == 0) return;
        SettingsDialog dialog(library_, *assistant_, id, this);
        if (dialog.exec() != QDialog::Accepted) return;
        chatList_->reload();  // (its badge)
        selectChat(id);
    });
    chatSettingsAction_->setObjectName(QStringLiteral("chatSettingsAction"));

    QMenu* helpMenu = menuBar()->addMenu(tr("&Help"));
    helpMenu->addAction(tr("&About Lumen"), this, [this] {
        QMessageBox::about(this, tr("About Lumen"),
                           tr("<h3>Lumen %1</h3><p>A local desktop assistant that sees. Everything runs on "
                              "this computer; nothing leaves it.</p>")
                               .arg(QApplication::applicationVersion()));
    });
}

void MainWindow::buildLayout() {
    auto* left = new QWidget;
    auto* leftLayout = new QVBoxLayout(left);
    leftLayout->setContentsMargins(6, 6, 0, 6);
    auto* newButton = new QPushButton(tr("New chat"));
    newButton->setObjectName(QStringLiteral("newChatButton"));
    newButton->setToolTip(tr("New chat (%1)").arg(QKeySequence(QKeySequence::New).toString(QKeySequence::NativeText)));
    connect(newButton, &QPushButton::clicked, this, &MainWindow::newChat);
    search_ = new QLineEdit;
    search_->setObjectName(QStringLiteral("chatSearch"));
    search_->setPlaceholderText(tr("Search chats and messages"));
    search_->setClearButtonEnabled(true);
    // Esc in the search box clears it (and goes back to the message box when it is empty).
    auto* clearSearch = new QAction(search_);
    clearSearch->setShortcut(Qt::Key_Escape);
    clearSearch->setShortcutContext(Qt::WidgetShortcut);
    connect(clearSearch, &QAction::triggered, this, [this] {
        if (search_->text().isEmpty()) composer_->setFocus();
        else search_->clear();
    });
    search_->addAction(clearSearch);
    connect(search_, &QLineEdit::textChanged, this, [this](const QString& text) {
        const std::int64_t current = currentChatId();
        chatList_->setFilter(text);
        if (chatList_->rowOf(current) >= 0) selectChat(current);
    });
    chatView_ = new QListView;
    chatView_->setObjectName(QStringLiteral("chatList"));
    chatView_->setModel(chatList_);
    chatView_->setItemDelegate(new ChatListDelegate(chatView_));  // (search hits show the words around them)
    chatView_->setEditTriggers(QAbstractItemView::DoubleClicked | QAbstractItemView::EditKeyPressed);
    chatView_->setContextMenuPolicy(Qt::ActionsContextMenu);
    chatView_->addAction(renameAction_);
    chatView_->addAction(deleteAction_);
    connect(chatView_->selectionModel(), &QItemSelectionModel::currentChanged, this,
            [this](const QModelIndex& current) { showChat(chatList_->chatId(current.row())); });
    leftLayout->addWidget(newButton);
    leftLayout->addWidget(search_);
    leftLayout->addWidget(chatView_);

    auto* right = new QWidget;
    auto* rightLayout = new QVBoxLayout(right);
    rightLayout->setContentsMargins(0, 6, 6, 6);
    chatTitle_ = new QLabel;
    chatTitle_->setObjectName(QStringLiteral("chatTitle"));
    QFont titleFont = chatTitle_->font();
    titleFont.setPointSizeF(titleFont.pointSizeF() * 1.25);
    titleFont.setBold(true);
    chatTitle_->setFont(titleFont);
    transcript_ = new TranscriptView(*messages_, [this](const QString& sha) {
        try {
            if (const auto bytes = library_.images().thumbnail(sha.toStdString()))
                return QByteArray(reinterpret_cast<const char*>(bytes->data()), static_cast<qsizetype>(bytes->size()));
        } catch (const storage::Error&) {
        }
        return QByteArray();
    });
    connect(transcript_, &TranscriptView::imageAction, this, &MainWindow::onImageAction);
    // A focus ring on the two large panes (issue 24, defect 10): where the keys go shows.
    for (QWidget* pane : {static_cast<QWidget*>(chatView_), static_cast<QWidget*>(transcript_)})
        pane->setStyleSheet(QStringLiteral("#%1:focus { border: 2px solid palette(highlight); }").arg(pane->objectName()));
    connect(transcript_, &TranscriptView::editRequested, this, &MainWindow::editMessage);
    connect(transcript_, &TranscriptView::regenerateRequested, this, [this] {
        if (regenerateAction_->isEnabled())
            regenerateAction_->trigger();
        else
            statusBar()->showMessage(assistant_->isReplying() ? tr("A reply is being written; stop it first.") : tr("Load a model to regenerate the reply."), 5000);
    });
    composer_ = new Composer;
    connect(composer_, &Composer::submitRequested, this, &MainWindow::sendMessage);
    connect(composer_, &Composer::imagesDropped, this, [this](const QStringList& paths, const QList<QByteArray>& blobs) {
        for (const QString& p : paths) attachImage(app::importImageFile(library_, p));
        for (const QByteArray& d : blobs) attachImage(app::importImage(library_, d, tr("pasted image")));
    });
    sendButton_ = new QPushButton(themedIcon(Icon::Send), tr("Send"));
    sendButton_->setObjectName(QStringLiteral("sendButton"));
    sendButton_->setDefault(true);
    connect(sendButton_, &QPushButton::clicked, this, &MainWindow::sendMessage);
    connect(composer_, &QPlainTextEdit::textChanged, this, &MainWindow::updateActions);
    stopButton_ = new QPushButton(themedIcon(Icon::Stop), tr("Stop"));
    stopButton_->setObjectName(QStringLiteral("stopButton"));
    stopButton_->setToolTip(tr("Stop the reply (Esc); what was written is kept"));
    connect(stopButton_, &QPushButton::clicked, this, [this] { assistant_->stop(); });
    auto* buttons = new QVBoxLayout;
    buttons->addStretch(1);
    buttons->addWidget(stopButton_);
    buttons->addWidget(sendButton_);
    auto* attachButton = new QPushButton(themedIcon(Icon::Attach), tr("Attach…"));
    attachButton->setObjectName(QStringLiteral("attachButton"));
    attachButton->setToolTip(tr("Attach images (or drop or paste them into the message)"));
    connect(attachButton, &QPushButton::clicked, this, [this] {
        const QStringList files = QFileDialog::getOpenFileNames(this, tr("Attach Images"), {}, tr("Images (*.png *.jpg *.jpeg *.webp *.bmp *.tif *.tiff)"));
        for (const QString& f : files) attachImage(app::importImageFile(library_, f));
    });
    buttons->insertWidget(1, attachButton);
    attachmentBar_ = new QWidget;
    attachmentBar_->setObjectName(QStringLiteral("attachmentBar"));
    new QHBoxLayout(attachmentBar_);
    attachmentBar_->layout()->setContentsMargins(0, 0, 0, 0);
    attachmentBar_->hide();
    auto* composerRow = new QHBoxLayout;
    composerRow->addWidget(composer_, 1);
    composerRow->addLayout(buttons);
    // With no model: what to get, and a way to open it.
    noModelBar_ = new QWidget;
    noModelBar_->setObjectName(QStringLiteral("noModelBar"));
    auto* noModelLayout = new QHBoxLayout(noModelBar_);
    noModelLayout->setContentsMargins(0, 0, 0, 0);
    auto* noModelText = new QLabel(tr("No language model is loaded, so messages are stored without replies. Get an instruction-tuned "
                                      "GGUF (for example a Q4_K_M of Llama 3.2 3B Instruct or Qwen2.5 7B Instruct), an mmproj GGUF to "
                                      "describe images, and a CLIP folder to classify them."));
    noModelText->setWordWrap(true);
    auto* noModelButton = new QPushButton(tr("Open model file…"));
    noModelButton->setObjectName(QStringLiteral("openModelButton"));
    connect(noModelButton, &QPushButton::clicked, this, [this] {
        const QString path = QFileDialog::getOpenFileName(this, tr("Open Model"), {}, tr("GGUF models (*.gguf)"));
        if (!path.isEmpty()) confirmAndOpenModel(path);
    });
    auto* downloadButton = new QPushButton(tr("Download a model…"));
    downloadButton->setObjectName(QStringLiteral("downloadModelButton"));
    connect(downloadButton, &QPushButton::clicked, this, &MainWindow::showModelsDialog);
    noModelLayout->addWidget(noModelText, 1);
    noModelLayout->addWidget(downloadButton, 0, Qt::AlignVCenter);
    noModelLayout->addWidget(noModelButton, 0, Qt::AlignVCenter);
    // A message sent while no model was loaded waits for its answer: once a model is, offer it.
    answerBar_ = new QWidget;
    answerBar_->setObjectName(QStringLiteral("answerWaitingBar"));
    auto* answerLayout = new QHBoxLayout(answerBar_);
    answerLayout->setContentsMargins(0, 0, 0, 0);
    auto* answerText = new QLabel(tr("Your last message in this chat has no answer yet."));
    auto* answerButton = new QPushButton(tr("Answer It Now"));
    answerButton->setObjectName(QStringLiteral("answerNowButton"));
    connect(answerButton, &QPushButton::clicked, this, [this] {
        if (assistant_->regenerate(currentChatId())) messages_->reload();
        updateActions();
    });
    answerLayout->addWidget(answerText, 1);
    answerLayout->addWidget(answerButton, 0, Qt::AlignVCenter);
    answerBar_->hide();
    // The chat's title, and how much of the model's context it takes.
    contextMeter_ = new QLabel;
    contextMeter_->setObjectName(QStringLiteral("contextMeter"));
    contextMeter_->setToolTip(tr("How much of the model's context this chat took at its last reply. When it is full, the oldest messages are "
                                 "left out, or the reply stops (Settings ▸ When a chat outgrows the context)."));
    // The model picker: what is loaded and where, the recent models, open, reload, unload.
    modelPicker_ = new QToolButton;
    modelPicker_->setObjectName(QStringLiteral("modelPicker"));
    modelPicker_->setPopupMode(QToolButton::InstantPopup);
    modelPicker_->setToolButtonStyle(Qt::ToolButtonTextOnly);
    auto* modelMenu = new QMenu(modelPicker_);
    modelMenu->setObjectName(QStringLiteral("modelMenu"));
    connect(modelMenu, &QMenu::aboutToShow, this, &MainWindow::rebuildModelMenu);
    modelPicker_->setMenu(modelMenu);
    auto* header = new QHBoxLayout;
    header->addWidget(chatTitle_, 1);
    header->addWidget(modelPicker_, 0, Qt::AlignRight | Qt::AlignVCenter);
    header->addWidget(contextMeter_, 0, Qt::AlignRight | Qt::AlignVCenter);
    rightLayout->addLayout(header);
    rightLayout->addWidget(transcript_, 1);
    rightLayout->addWidget(noModelBar_);
    rightLayout->addWidget(answerBar_);
    rightLayout->addWidget(attachmentBar_);
    templateChoice_ = new QComboBox;
    templateChoice_->setObjectName(QStringLiteral("templateChoice"));
    templateChoice_->setSizeAdjustPolicy(QComboBox::AdjustToContents);  // (whole names, not cut)
    templateChoice_->setToolTip(tr("A prompt template for this chat: its system prompt and examples go before your messages, and what you type fills its {{input}}"));
    connect(templateChoice_, &QComboBox::activated, this, [this] {
        if (currentChatId() != 0) assistant_->setChatTemplate(currentChatId(), templateChoice_->currentData().toLongLong());
    });
    auto* templateRow = new QHBoxLayout;
    templateRow->addWidget(new QLabel(tr("Template:")));
    templateRow->addWidget(templateChoice_);
    templateRow->addStretch(1);
    rightLayout->addLayout(templateRow);
    rightLayout->addLayout(composerRow);

    auto* splitter = new QSplitter;
    splitter->addWidget(left);
    splitter->addWidget(right);
    splitter->setStretchFactor(0, 0);
    splitter->setStretchFactor(1, 1);
    splitter->setSizes({260, 840});
    setCentralWidget(splitter);

    connect(chatList_, &QAbstractItemModel::dataChanged, this, [this] {
        if (const auto chat = library_.chats().chat(currentChatId()))
            chatTitle_->setText(QString::fromStdString(chat->title));
    });
}

std::int64_t MainWindow::currentChatId() const { return messages_->chatId(); }

void MainWindow::selectChat(std::int64_t chatId) {
    const int row = chatList_->rowOf(chatId);
    if (row < 0) {
        showChat(0);
        return;
    }
    chatView_->setCurrentIndex(chatList_->index(row));
    showChat(chatId);
}

void MainWindow::showChat(std::int64_t chatId) {
    if (chatId == messages_->chatId() && chatId != 0) return;
    // The draft stays with its chat: kept for the chat left, brought back for the one shown. (An
    // edit in progress belongs to the chat left: it is cancelled.)
    if (editing_ != 0) {
        cancelEdit();
    } else if (const std::int64_t left = messages_->chatId(); !composer_->toPlainText().isEmpty() || !attachments_.empty()) {
        drafts_[left] = {composer_->toPlainText(), attachments_};
    }
    Draft draft;
    if (const auto it = drafts_.find(chatId); it != drafts_.end()) {
        draft = std::move(it->second);
        drafts_.erase(it);
    }
    composer_->setPlainText(draft.text);
    composer_->moveCursor(QTextCursor::End);
    attachments_ = std::move(draft.attachments);
    rebuildAttachmentBar();
    messages_->setChat(chatId);
    QString title;
    if (chatId != 0) {
        try {
            if (const auto chat = library_.chats().chat(chatId)) title = QString::fromStdString(chat->title);
            library_.settings().set(kLastChatKey, std::to_string(chatId));
        } catch (const storage::Error& e) {
            showError(QString::fromUtf8(e.what()));
        }
    }
    chatTitle_->setText(title.isEmpty() ? tr("New chat") : title);
    reloadTemplateChoices();
    updateActions();
    updateContextMeter();
}

void MainWindow::setTheme(Theme theme, bool remember) {
    applyTheme(theme);
    for (QAction* a : findChildren<QAction*>())
        if (a->objectName().startsWith(QLatin1String("theme"))) a->setChecked(a->data().toInt() == static_cast<int>(theme));
    if (!remember) return;
    try {
        library_.settings().set(kThemeKey, std::to_string(static_cast<int>(theme)));
    } catch (const storage::Error& e) {
        statusBar()->showMessage(tr("The theme could not be remembered: %1").arg(QString::fromUtf8(e.what())), 8000);
    }
}

void MainWindow::updateModelPicker() {
    if (!modelPicker_) return;
    const auto& engine = assistant_->engine();
    const bool loaded = engine.isLoaded();
    const QString shown = engine.isRemote() ? tr("%1 (server)").arg(engine.remoteConfig().model) : QFileInfo(engine.modelPath()).fileName();
    modelPicker_->setText(loaded ? shown + (reloadWanted_ && !engine.isRemote() ? QStringLiteral(" ⟳") : QString()) : tr("Choose a model"));
    modelPicker_->setToolTip(loaded ? engine.modelName() : tr("No model is loaded: choose one to chat with"));
    reloadAction_->setEnabled(loaded && !engine.isRemote());
    reloadAction_->setText(reloadWanted_ ? tr("&Reload Model (New Settings)") : tr("&Reload Model"));
    unloadAction_->setEnabled(loaded);
}

void MainWindow::rebuildModelMenu() {
    QMenu* menu = modelPicker_->menu();
    menu->clear();
    const auto& engine = assistant_->engine();
    // What is loaded and where it runs (the engine's name says CPU, GPU or how many GPU layers).
    QAction* current = menu->addAction(engine.isLoaded() ? tr("Loaded: %1").arg(engine.modelName()) : tr("No model loaded"));
    current->setObjectName(QStringLiteral("loadedModel"));
    current->setEnabled(false);
    if (engine.hasImageProjector())
        menu->addAction(engine.isRemote() ? tr("Sees images (the server's model)")
                                          : tr("Sees images through %1").arg(QFileInfo(engine.imageProjectorPath()).fileName()))
            ->setEnabled(false);
    menu->addSection(tr("Recent"));
    const QStringList recent = assistant_->recentModels();
    if (recent.isEmpty()) menu->addAction(tr("(none yet)"))->setEnabled(false);
    for (const QString& path : recent) {
        const bool there = QFileInfo::exists(path);
        QAction* a = menu->addAction(there ? QFileInfo(path).fileName() : tr("%1 (missing)").arg(QFileInfo(path).fileName()), this, [this, path] { openModel(path); });
        a->setObjectName(QStringLiteral("recentModel"));
        a->setData(path);
        a->setToolTip(path);
        a->setCheckable(true);
        a->setChecked(engine.isLoaded() && path == engine.modelPath());
        a->setEnabled(there);
    }
    // What lumen-cli pull (and later the app) put in the models folder, beside the recent ones.
    QStringList downloaded = assistant_->downloadedModels();
    for (const QString& path : recent) downloaded.removeAll(path);
    if (!downloaded.isEmpty()) {
        menu->addSection(tr("Downloaded"));
        for (const QString& path : downloaded.mid(0, 12)) {
            QAction* a = menu->addAction(QFileInfo(path).fileName(), this, [this, path] { openModel(path); });
            a->setObjectName(QStringLiteral("downloadedModel"));
            a->setData(path);
            a->setToolTip(path);
        }
    }
    menu->addSeparator();
    menu->addAction(findChild<QAction*>(QStringLiteral("openModelAction")));
    menu->addAction(findChild<QAction*>(QStringLiteral("connectServerAction")));
    menu->addAction(reloadAction_);
    menu->addAction(unloadAction_);
}

void MainWindow::showModelsDialog() {
    if (!modelsDialog_) {
        modelsDialog_ = new ModelsDialog(*downloads_, [this] { return assistant_->hubConfigNow(); }, [this](const QString& path) { confirmAndOpenModel(path); }, this);
        modelsDialog_->setAttribute(Qt::WA_DeleteOnClose);
    }
    modelsDialog_->show();
    modelsDialog_->raise();
    modelsDialog_->activateWindow();
}

void MainWindow::connectToServer() {
    ConnectDialog dialog(*assistant_, this);
    if (dialog.exec() != QDialog::Accepted) return;
    const auto config = dialog.config();
    if (config) showConnecting(*config);
}

void MainWindow::connectRemote(const app::RemoteConfig& config, bool seesImages, bool keyFromKeychain) {
    if (!keyFromKeychain) {
        assistant_->connectRemote(config, seesImages);
        showConnecting(config);
        return;
    }
    QPointer<MainWindow> self(this);
    assistant_->rememberedApiKey(config.baseUrl, [self, config, seesImages](const QString& key) {
        MainWindow* window = self.data();
        if (!window || window->assistant_->engine().isLoaded()) return;  // (a model was chosen meanwhile)
        app::RemoteConfig withKey = config;
        withKey.apiKey = key;
        window->assistant_->connectRemote(withKey, seesImages, false);
        window->showConnecting(withKey);
    });
}

void MainWindow::showConnecting(const app::RemoteConfig& config) {
    const QString where = config.baseUrl.toDisplayString(QUrl::RemoveUserInfo);
    statusBar()->showMessage(tr("Connecting to %1…").arg(where));
    loadingBar_->show();
    cancelLoadButton_->show();  // (Esc, or the button: the connection is given up)
    if (modelPicker_) modelPicker_->setText(tr("Connecting to %1…").arg(config.baseUrl.host()));
}

void MainWindow::updateContextMeter() {
    const auto use = assistant_->contextUse(currentChatId());
    contextMeter_->setVisible(use.limit > 0 && use.used > 0);
    if (!contextMeter_->isVisible()) return;
    const QLocale locale;
    contextMeter_->setText(tr("%1 / %2 tokens").arg(locale.toString(use.used), locale.toString(use.limit)));
    // Near the end: the next reply will leave out old messages (or stop), so it stands out.
    const bool nearEnd = use.used * 10 >= use.limit * 9;
    contextMeter_->setProperty("nearEnd", nearEnd);
    contextMeter_->setStyleSheet(nearEnd ? QStringLiteral("color: palette(highlight); font-weight: bold;") : QString());
}

void MainWindow::newChat() {
    search_->clear();
    const std::int64_t id = chatList_->createChat(tr("New chat"));
    if (id == 0) return;
    selectChat(id);
    composer_->setFocus();
}

void MainWindow::renameCurrentChat() {
    const std::int64_t id = currentChatId();
    const int row = chatList_->rowOf(id);
    if (row < 0) return;
    bool ok = false;
    const QString title = QInputDialog::getText(this, tr("Rename Chat"), tr("Title:"), QLineEdit::Normal,
                                                chatList_->index(row).data().toString(), &ok);
    if (ok) chatList_->renameChat(id, title);
}

void MainWindow::deleteCurrentChat() {
    const std::int64_t id = currentChatId();
    const int row = chatList_->rowOf(id);
    if (row < 0) return;
    if (assistant_->isReplying() && assistant_->replyingChat() == id) {
        showError(tr("A reply is being written in this chat; stop it first."));
        return;
    }
    const QString title = chatList_->index(row).data().toString();
    // Kept as an export until the next delete, so Undo can bring it back whole.
    try {
        deletedChat_ = library_.exportChat(id, app::ChatFormat::Json);
    } catch (const storage::Error& e) {
        showError(QString::fromUtf8(e.what()));
        return;
    }
    chatList_->deleteChat(id);
    messages_->setChat(0);
    const int next = std::min(row, chatList_->rowCount() - 1);
    selectChat(next >= 0 ? chatList_->chatId(next) : 0);
    undoDeleteAction_->setEnabled(true);
    statusBar()->showMessage(tr("Deleted “%1”. %2 brings it back.").arg(title, undoDeleteAction_->shortcut().toString(QKeySequence::NativeText)), 15000);
}

void MainWindow::undoDelete() {
    if (deletedChat_.empty()) return;
    try {
        const std::int64_t id = library_.importChat(deletedChat_);
        deletedChat_.clear();
        undoDeleteAction_->setEnabled(false);
        search_->clear();
        chatList_->reload();
        selectChat(id);
        statusBar()->showMessage(tr("Chat restored."), 5000);
    } catch (const storage::Error& e) {
        showError(QString::fromUtf8(e.what()));
    }
}

void MainWindow::sendMessage() {
    QString text = composer_->toPlainText();
    if (text.trimmed().isEmpty() && attachments_.empty()) return;
    if (assistant_->isReplying()) {  // one note, no dialog; the message waits in the box
        statusBar()->showMessage(tr("A reply is still being written: Stop (Esc) ends it, and your message stays here to send."), 8000);
        return;
    }
    if (!attachments_.empty() && assistant_->engine().isLoaded() && !assistant_->engine().hasImageProjector()) {
        // The loaded model cannot see: say so, and offer its image projector (or the text alone).
        QMessageBox box(QMessageBox::Question, tr("This Model Cannot See Images"),
                        tr("%1 reads text only: the image would stay in the chat (to classify or describe later) but not reach the model. "
                           "An image projector (an mmproj GGUF made for this model) lets it see images.")
                            .arg(assistant_->engine().modelName()),
                        QMessageBox::Cancel, this);
        box.setObjectName(QStringLiteral("cannotSeeImages"));
        QPushButton* projector = box.addButton(tr("Open Image Projector…"), QMessageBox::AcceptRole);
        QPushButton* anyway = box.addButton(tr("Send Anyway"), QMessageBox::DestructiveRole);
        box.exec();
        if (box.clickedButton() == projector) {
            findChild<QAction*>(QStringLiteral("openProjectorAction"))->trigger();
            return;  // (the message waits in the box, its images with it)
        }
        if (box.clickedButton() != anyway) return;
    }
    const std::int64_t before = currentChatId();
    // Near the end of the context: said before the reply, as the policy will act on it.
    if (const auto use = assistant_->contextUse(before); use.limit > 0 && use.used * 10 >= use.limit * 9)
        statusBar()->showMessage(assistant_->engineOptions().contextPolicy == app::ContextPolicy::LeaveOutOldest
                                     ? tr("This chat is near the end of the model's context (%1 of %2 tokens): its oldest messages will be left out.")
                                           .arg(use.used)
                                           .arg(use.limit)
                                     : tr("This chat is near the end of the model's context (%1 of %2 tokens): the reply may not fit. Start a "
                                          "new chat, or raise the context length in Settings.")
                                           .arg(use.used)
                                           .arg(use.limit),
                                 10000);
    // Through the chosen template: its body with {{input}} = what was typed, other variables asked.
    const std::int64_t templateId = templateChoice_->currentData().toLongLong();
    if (templateId != 0) {
        if (const auto spec = assistant_->templateSpec(templateId); spec && !spec->body.empty()) {
            std::map<std::string, std::string> values{{"input", text.toStdString()}};
            QStringList asked = app::templateVariables(spec->body);
            asked.removeAll(QStringLiteral("input"));
            if (!asked.isEmpty()) {
                // One small form for all of them, remembered for the next message.
                QDialog form(this);
                form.setObjectName(QStringLiteral("templateVariables"));
                form.setWindowTitle(tr("Template Values"));
                auto* layout = new QFormLayout(&form);
                std::vector<QLineEdit*> fields;
                for (const QString& name : asked) {
                    auto* field = new QLineEdit(templateValues_.value(name));
                    field->setObjectName(name);
                    layout->addRow(name + QLatin1Char(':'), field);
                    fields.push_back(field);
                }
                auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel);
                connect(buttons, &QDialogButtonBox::accepted, &form, &QDialog::accept);
                connect(buttons, &QDialogButtonBox::rejected, &form, &QDialog::reject);
                layout->addRow(buttons);
                if (form.exec() != QDialog::Accepted) return;
                for (std::size_t i = 0; i < fields.size(); ++i) {
                    templateValues_[asked[static_cast<int>(i)]] = fields[i]->text();
                    values[asked[static_cast<int>(i)].toStdString()] = fields[i]->text().toStdString();
                }
            }
            text = QString::fromStdString(app::fillVariables(spec->body, values));
        }
    }
    if (editing_ != 0) {
        // The edited message and everything after it give way to the new one.
        try {
            library_.chats().truncateFrom(editing_);
        } catch (const storage::Error& e) {
            showError(QString::fromUtf8(e.what()));
            return;
        }
        editing_ = 0;
        messages_->reload();
    }
    const std::int64_t chatId = assistant_->submitUserMessage(before, text, attachments_, templateId);
    if (chatId == 0) return;  // the error was shown
    composer_->clear();
    attachments_.clear();
    rebuildAttachmentBar();
    search_->clear();
    chatList_->reload();  // the chat moved to the top (or is new)
    if (chatId != before) {
        selectChat(chatId);
    } else {
        chatView_->setCurrentIndex(chatList_->index(chatList_->rowOf(chatId)));
        messages_->reload();
        try {
            if (const auto chat = library_.chats().chat(chatId)) chatTitle_->setText(QString::fromStdString(chat->title));  // (named by its first message)
        } catch (const storage::Error& e) {
            showError(QString::fromUtf8(e.what()));
        }
    }
}

void MainWindow::exportCurrentChat(const QString& format) {
    const std::int64_t id = currentChatId();
    if (id == 0) return;
    const bool markdown = format == QLatin1String("md");
    QString name = chatTitle_->text();
    name.replace(QRegularExpression(QStringLiteral("[^\\w\\- ]+")), QStringLiteral("_"));
    const QString path = QFileDialog::getSaveFileName(
        this, markdown ? tr("Export Chat as Markdown") : tr("Export Chat as JSON"),
        name + (markdown ? QStringLiteral(".md") : QStringLiteral(".json")),
        markdown ? tr("Markdown (*.md)") : tr("Lumen chat (*.json)"));
    if (path.isEmpty()) return;
    try {
        const std::string text = library_.exportChat(id, markdown ? app::ChatFormat::Markdown : app::ChatFormat::Json);
        QSaveFile file(path);
        if (!file.open(QIODevice::WriteOnly) || file.write(text.data(), static_cast<qint64>(text.size())) < 0 ||
            !file.commit()) {
            showError(tr("Cannot write %1: %2").arg(path, file.errorString()));
            return;
        }
        statusBar()->showMessage(tr("Exported to %1").arg(path), 5000);
    } catch (const storage::Error& e) {
        showError(QString::fromUtf8(e.what()));
    }
}

void MainWindow::importChat() {
    const QString path = QFileDialog::getOpenFileName(this, tr("Import Chat"), {}, tr("Lumen chat (*.json)"));
    if (path.isEmpty()) return;
    // As lumen-cli reads it: a regular file, at most the largest export Lumen writes.
    QString readError;
    const auto read = app::readUserFile(path, app::kMaxExportFileBytes, readError);
    if (!read) {
        showError(tr("Cannot read %1: %2").arg(path, readError));
        return;
    }
    const QByteArray& bytes = *read;
    try {
        const std::int64_t id = library_.importChat(std::string_view(bytes.constData(), static_cast<std::size_t>(bytes.size())));
        search_->clear();
        chatList_->reload();
        selectChat(id);
    } catch (const storage::Error& e) {
        showError(tr("%1 could not be imported: %2").arg(path, QString::fromUtf8(e.what())));
    }
}

void MainWindow::updateActions() {
    const bool haveChat = currentChatId() != 0;
    renameAction_->setEnabled(haveChat);
    pinAction_->setEnabled(haveChat);
    pinAction_->setChecked(haveChat && chatList_->isPinned(currentChatId()));
    deleteAction_->setEnabled(haveChat);
    exportMarkdownAction_->setEnabled(haveChat);
    exportJsonAction_->setEnabled(haveChat);
    const bool replying = assistant_->isReplying();
    sendButton_->setEnabled(!replying && (!composer_->toPlainText().trimmed().isEmpty() || !attachments_.empty()));
    stopButton_->setVisible(replying);
    stopAction_->setEnabled(replying || vision_->isClassifying() || editing_ != 0);
    regenerateAction_->setEnabled(haveChat && !replying && assistant_->engine().isLoaded());
    transcript_->setReplying(replying);
    const int rows = messages_->rowCount();
    const bool unanswered = rows > 0 && messages_->index(rows - 1).data(app::MessageListModel::RoleNameRole).toString() == QLatin1String("user");
    if (answerBar_) answerBar_->setVisible(haveChat && unanswered && !replying && editing_ == 0 && assistant_->engine().isLoaded());
    chatSettingsAction_->setEnabled(haveChat);
    thinkAction_->setEnabled(haveChat);
    thinkAction_->setChecked(!haveChat || assistant_->chatThinks(currentChatId()));
    noModelBar_->setVisible(!assistant_->engine().isLoaded());
}

void MainWindow::openModel(const QString& path) {
    modelLabel_->setText(tr("Loading %1…").arg(QFileInfo(path).fileName()));
    if (modelPicker_) modelPicker_->setText(tr("Loading %1…").arg(QFileInfo(path).fileName()));
    loadingBar_->show();
    cancelLoadButton_->show();
    assistant_->loadModel(path);
}

void MainWindow::confirmAndOpenModel(const QString& path) {
    app::ModelSummary summary;
    try {
        summary = app::summarizeModelFile(path, assistant_->engineOptions().contextSize);
    } catch (const std::exception& e) {
        showError(tr("%1 cannot be used: %2").arg(QFileInfo(path).fileName(), QString::fromUtf8(e.what())));
        return;
    }
    QMessageBox box(QMessageBox::Information, tr("Open Model"), summary.text, QMessageBox::Cancel, this);
    if (!summary.fits) {
        box.setIcon(QMessageBox::Warning);
        box.setInformativeText(tr("It needs more memory than is free: it may be slow or fail. Lower the context length in Settings, or pick a smaller quantization."));
    }
    QPushButton* load = box.addButton(tr("Load"), QMessageBox::AcceptRole);
    box.setDefaultButton(load);
    box.exec();
    if (box.clickedButton() == load) openModel(path);
}

void MainWindow::showError(const QString& message) {
    statusBar()->showMessage(message, 15000);
    if (isVisible()) QMessageBox::warning(this, tr("Lumen"), message);
}

void MainWindow::closeEvent(QCloseEvent* event) {
    assistant_->stop();  // the partial reply is kept, marked stopped
    vision_->cancel();   // (what it encoded so far is cached)
    try {
        library_.settings().set(kGeometryKey, saveGeometry().toBase64().toStdString());
    } catch (const storage::Error&) {
        // Losing the window size is not worth keeping the user from quitting.
    }
    event->accept();
}

void MainWindow::attachImage(const app::ImportedImage& image) {
    if (!image.error.isEmpty()) {
        showError(image.error);
        return;
    }
    if (std::find(attachments_.begin(), attachments_.end(), image.sha256) == attachments_.end()) attachments_.push_back(image.sha256);
    rebuildAttachmentBar();
    updateActions();
}

void MainWindow::rebuildAttachmentBar() {
    auto* layout = static_cast<QHBoxLayout*>(attachmentBar_->layout());
    while (QLayoutItem* item = layout->takeAt(0)) {
        if (QWidget* w = item->widget()) {  // (later: this may run in a chip's own ✕ click)
            w->hide();
            w->setParent(nullptr);
            w->deleteLater();
        }
        delete item;
    }
    for (const std::string& sha : attachments_) {
        // A chip: the thumbnail (clicking it does nothing), and its own ✕ that removes it.
        auto* chip = new QWidget;
        chip->setObjectName(QStringLiteral("attachment"));
        auto* chipLayout = new QHBoxLayout(chip);
        chipLayout->setContentsMargins(0, 0, 0, 0);
        chipLayout->setSpacing(2);
        auto* thumbLabel = new QLabel;
        QPixmap thumb;
        try {
            if (const auto bytes = library_.images().thumbnail(sha)) thumb.loadFromData(bytes->data(), static_cast<uint>(bytes->size()));
        } catch (const storage::Error&) {
        }
        thumbLabel->setPixmap(thumb.scaled(48, 48, Qt::KeepAspectRatio, Qt::SmoothTransformation));
        thumbLabel->setToolTip(tr("This image goes with the message"));
        auto* remove = new QToolButton;
        remove->setObjectName(QStringLiteral("removeAttachment"));
        remove->setText(QStringLiteral("✕"));
        remove->setAutoRaise(true);
        remove->setToolTip(tr("Remove this image from the message"));
        remove->setAccessibleName(tr("Remove image"));
        connect(remove, &QToolButton::clicked, this, [this, sha] {
            attachments_.erase(std::remove(attachments_.begin(), attachments_.end(), sha), attachments_.end());
            rebuildAttachmentBar();
            updateActions();
        });
        chipLayout->addWidget(thumbLabel);
        chipLayout->addWidget(remove, 0, Qt::AlignTop);
        layout->addWidget(chip);
    }
    layout->addStretch(1);
    attachmentBar_->setVisible(!attachments_.empty());
}

void MainWindow::onImageAction(const QString& action, const QString& sha) {
    if (action == QLatin1String("open")) {
        std::optional<storage::Bytes> bytes;
        try {
            bytes = library_.images().bytes(sha.toStdString());
        } catch (const storage::Error& e) {
            showError(QString::fromUtf8(e.what()));
            return;
        }
        QPixmap full;
        if (!bytes || !full.loadFromData(bytes->data(), static_cast<uint>(bytes->size()))) {
            showError(tr("This image cannot be shown."));
            return;
        }
        QDialog viewer(this);
        viewer.setWindowTitle(tr("Image"));
        auto* label = new QLabel;
        label->setPixmap(full.scaled(QSize(1200, 900).boundedTo(full.size()), Qt::KeepAspectRatio, Qt::SmoothTransformation));
        (new QVBoxLayout(&viewer))->addWidget(label);
        viewer.exec();
    } else if (action == QLatin1String("ask")) {
        attachments_ = {sha.toStdString()};
        rebuildAttachmentBar();
        updateActions();
        composer_->setFocus();
        statusBar()->showMessage(tr("Ask a question about the image and press Enter."), 5000);
    } else if (action == QLatin1String("describe")) {
        if (!assistant_->engine().hasImageProjector()) {
            showError(tr("Describing images needs an image projector: File ▸ Open Image Projector… (an mmproj GGUF made for the loaded model)."));
            return;
        }
        // An image the chat already holds in one of its messages is in the prompt already: the
        // request refers to it instead of posting it again (issue 24, defect 8).
        bool above = false;
        try {
            for (const storage::Message& m : library_.chats().messages(currentChatId()))
                above = above || (m.role == storage::Role::User && std::find(m.images.begin(), m.images.end(), sha.toStdString()) != m.images.end());
        } catch (const storage::Error&) {
            above = false;  // (then the image goes with the request)
        }
        if (above) assistant_->submitUserMessage(currentChatId(), tr("Describe the image above."), {});
        else assistant_->submitUserMessage(currentChatId(), tr("Describe this image."), {sha.toStdString()});
        messages_->reload();
    } else if (action == QLatin1String("classify")) {
        classifyImage(sha);
    }
}

void MainWindow::openImageProjector(const QString& path) {
    if (!assistant_->engine().isLoaded()) {
        showError(tr("Open the language model first: the image projector must fit it."));
        return;
    }
    assistant_->engine().loadImageProjector(path);
}

void MainWindow::fitOnScreen() {
    QScreen* screen = QGuiApplication::screenAt(geometry().center());
    if (!screen) screen = QGuiApplication::primaryScreen();
    if (!screen) return;
    const QRect available = screen->availableGeometry();
    QRect g = geometry();
    g.setSize(g.size().boundedTo(available.size()).expandedTo(minimumSize()));
    if (g.right() > available.right()) g.moveRight(available.right());
    if (g.bottom() > available.bottom()) g.moveBottom(available.bottom());
    if (g.left() < available.left()) g.moveLeft(available.left());
    if (g.top() < available.top()) g.moveTop(available.top());
    if (g != geometry()) setGeometry(g);
}

void MainWindow::openClipFolder(const QString& folder) { vision_->loadClip(folder); }

void MainWindow::classifyImage(const QString& sha) {
    if (!vision_->isLoaded() && !vision_->hasDinov2()) {
        showError(tr("Classifying needs a CLIP model: File ▸ Open CLIP Folder… (for example openai/clip-vit-base-patch32)."));
        return;
    }
    std::vector<storage::LabelSetSummary> sets;
    try {
        sets = library_.labelSets().list();
    } catch (const storage::Error& e) {
        showError(QString::fromUtf8(e.what()));
        return;
    }
    std::int64_t setId = 0;
    QStringList names;
    for (const auto& s : sets) names << QString::fromStdString(s.name);
    const QString newSet = tr("New label set…");
    names << newSet;
    bool ok = false;
    const QString choice = sets.empty() ? newSet : QInputDialog::getItem(this, tr("Classify"), tr("Label set:"), names, 0, false, &ok);
    if (!sets.empty() && !ok) return;
    if (choice == newSet) {
        const QString labels = QInputDialog::getText(this, tr("New Label Set"), tr("Labels, separated by commas:"), QLineEdit::Normal, {}, &ok);
        if (!ok || labels.trimmed().isEmpty()) return;
        std::vector<std::string> list;
        for (const QString& l : labels.split(QLatin1Char(','), Qt::SkipEmptyParts))
            if (!l.trimmed().isEmpty()) list.push_back(l.trimmed().toStdString());
        try {
            setId = library_.labelSets().create(tr("Labels %1").arg(sets.size() + 1).toStdString(), storage::ClassifyMode::ZeroShot, {}, list);
        } catch (const storage::Error& e) {
            showError(QString::fromUtf8(e.what()));
            return;
        }
    } else {
        setId = sets[static_cast<std::size_t>(names.indexOf(choice))].id;
    }
    const std::int64_t chatId = currentChatId();
    if (chatId != 0) vision_->classify(chatId, sha.toStdString(), setId);
}

void MainWindow::reloadTemplateChoices() {
    const QSignalBlocker block(templateChoice_);
    templateChoice_->clear();
    templateChoice_->addItem(tr("None"), 0);
    try {
        for (const auto& t : library_.templates().list()) templateChoice_->addItem(QString::fromStdString(t.name), static_cast<qlonglong>(t.id));
    } catch (const storage::Error& e) {
        showError(QString::fromUtf8(e.what()));
    }
    const std::int64_t chosen = currentChatId() ? assistant_->chatTemplate(currentChatId()) : 0;
    templateChoice_->setCurrentIndex(std::max(0, templateChoice_->findData(static_cast<qlonglong>(chosen))));
}

void MainWindow::editMessage(qint64 messageId) {
    if (assistant_->isReplying()) {
        showError(tr("A reply is being written; stop it first."));
        return;
    }
    std::optional<storage::Message> m;
    try {
        m = library_.chats().message(messageId);
    } catch (const storage::Error& e) {
        showError(QString::fromUtf8(e.what()));
        return;
    }
    if (!m || m->role != storage::Role::User) return;
    editing_ = messageId;
    composer_->setPlainText(QString::fromStdString(m->content));
    attachments_ = m->images;
    rebuildAttachmentBar();
    composer_->setFocus();
    statusBar()->showMessage(tr("Editing a message: Enter sends it again (the replies after it are replaced), Esc cancels."));
    updateActions();
}

void MainWindow::cancelEdit() {
    editing_ = 0;
    composer_->clear();
    attachments_.clear();
    rebuildAttachmentBar();
    statusBar()->clearMessage();
    updateActions();
}

}  // namespace lumen::ui
