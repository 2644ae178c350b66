#pragma once
// File ▸ Connect to a Server…: replies from an OpenAI-compatible server (vLLM, llama.cpp's
// llama-server, Ollama, LM Studio, another Lumen's lumen-cli serve) instead of a local model.
// The address, an API key (kept in the system keychain), the model (the server's list is
// fetched on request, off the window's thread) and whether the model sees images.

#include <QDialog>

#include "app/assistant.h"

class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QPushButton;

namespace lumen::ui {

class ConnectDialog : public QDialog {
    Q_OBJECT
public:
    ConnectDialog(app::Assistant& assistant, QWidget* parent = nullptr);

    // The server as filled in (nullopt while the address is not an http(s) URL).
    std::optional<app::RemoteConfig> config() const;
    bool seesImages() const;
    void accept() override;

private:
    void listModels();
    void showModels(const QStringList& models, const QString& error);
    void updateButtons();

    app::Assistant& assistant_;
    QLineEdit *url_, *apiKey_;
    QComboBox* model_;
    QCheckBox* images_;
    QPushButton *listButton_, *connectButton_;
    QLabel* status_;
};

}  // namespace lumen::ui
