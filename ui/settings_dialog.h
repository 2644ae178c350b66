#pragma once
// Settings: sampling (temperature, top-k, top-p, min-p, repetition penalty, seed, max tokens),
// the context length and CPU threads. Stored in the database's settings; sampling applies to
// the next reply, context and threads to the next model load. With a chat id: that chat's own
// sampling settings (Restore Defaults returns it to the general ones).

#include <QDialog>

#include "app/assistant.h"

class QCheckBox;
class QComboBox;
class QLineEdit;
class QDoubleSpinBox;
class QSpinBox;

class QPlainTextEdit;

namespace lumen::ui {

class SettingsDialog : public QDialog {
    Q_OBJECT
public:
    SettingsDialog(app::Library& library, app::Assistant& assistant, std::int64_t chatId = 0, QWidget* parent = nullptr);

    void accept() override;

private:
    app::Library& library_;
    app::Assistant& assistant_;
    std::int64_t chatId_;
    bool clearChat_ = false;
    QDoubleSpinBox *temperature_, *topP_, *minP_, *repeat_;
    QSpinBox *topK_, *seed_, *maxTokens_, *context_, *threads_, *gpuLayers_, *snapshots_;
    QComboBox *kvCache_, *contextPolicy_;
    QPlainTextEdit* systemPrompt_;
    // The local server (general settings only).
    QCheckBox *serve_ = nullptr, *serveEveryone_ = nullptr;
    QSpinBox* servePort_ = nullptr;
    QLineEdit* serveKey_ = nullptr;
    QLineEdit *hubEndpoint_ = nullptr, *hubToken_ = nullptr;
};

}  // namespace lumen::ui
