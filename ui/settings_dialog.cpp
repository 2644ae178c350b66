#include "ui/settings_dialog.h"

#include <QComboBox>
#include <QDialogButtonBox>
#include <QDoubleSpinBox>
#include <QCheckBox>
#include <QFormLayout>
#include <QLineEdit>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QVBoxLayout>

#include "app/llm_host.h"

namespace lumen::ui {
namespace {

QDoubleSpinBox* number(double low, double high, double step, int decimals, double value) {
    auto* box = new QDoubleSpinBox;
    box->setRange(low, high);
    box->setSingleStep(step);
    box->setDecimals(decimals);
    box->setValue(value);
    return box;
}

QSpinBox* whole(int low, int high, int value, const QString& special = {}) {
    auto* box = new QSpinBox;
    box->setRange(low, high);
    box->setValue(value);
    if (!special.isEmpty()) box->setSpecialValueText(special);
    return box;
}

}  // namespace

SettingsDialog::SettingsDialog(app::Library& library, app::Assistant& assistant, std::int64_t chatId, QWidget* parent)
    : QDialog(parent), library_(library), assistant_(assistant), chatId_(chatId) {
    setObjectName(QStringLiteral("settingsDialog"));
    setWindowTitle(chatId ? tr("Settings for This Chat") : tr("Settings"));
    const inference::GenerationParams p = chatId ? assistant.paramsFor(chatId) : assistant.generationParams();
    const app::EngineOptions engine = assistant.engineOptions();
    temperature_ = number(0.0, 2.0, 0.05, 2, p.sampling.temperature);
    temperature_->setObjectName(QStringLiteral("temperature"));
    topK_ = whole(0, 1000, p.sampling.topK, tr("off"));
    topP_ = number(0.0, 1.0, 0.01, 2, p.sampling.topP);
    minP_ = number(0.0, 1.0, 0.01, 2, p.sampling.minP);
    repeat_ = number(0.5, 2.0, 0.01, 2, p.sampling.repeatPenalty);
    // -1: a new seed for each reply (Regenerate gives another one); 0 and up: this seed every time
    const auto seedValue = [](std::uint64_t seed) { return seed == app::Assistant::kFreshSeed ? -1 : static_cast<int>(seed & 0x7FFFFFFF); };
    seed_ = whole(-1, 2147483647, seedValue(p.sampling.seed), tr("a new one for each reply"));
    seed_->setObjectName(QStringLiteral("seed"));
    maxTokens_ = whole(1, 32768, p.maxTokens);
    maxTokens_->setObjectName(QStringLiteral("maxTokens"));
    context_ = whole(256, 131072, engine.contextSize);
    context_->setObjectName(QStringLiteral("contextLength"));
    threads_ = whole(0, 256, engine.threads, tr("all cores"));
    gpuLayers_ = whole(-1, 1000, engine.gpuLayers, tr("all that fit"));
    gpuLayers_->setObjectName(QStringLiteral("gpuLayers"));
    snapshots_ = whole(0, 1 << 20, engine.snapshotMiB, tr("none"));
    snapshots_->setObjectName(QStringLiteral("snapshots"));
    snapshots_->setSuffix(tr(" MiB"));
    snapshots_->setToolTip(tr("Models with recurrent layers (Qwen3.5, Qwen3.6) cannot step back in a chat: Lumen keeps copies of their "
                              "state so that regenerating a reply or editing a recent message does not read the whole chat again."));
    kvCache_ = new QComboBox;
    kvCache_->setObjectName(QStringLiteral("kvCache"));
    kvCache_->addItem(tr("F16 (the default)"), 16);
    kvCache_->addItem(tr("F32 (exact, twice the memory)"), 32);
    kvCache_->addItem(tr("Q8_0 (about half the memory of F16, slightly less exact)"), 8);
    kvCache_->setCurrentIndex(std::max(0, kvCache_->findData(app::kvBitsOf(engine.kvType))));
    contextPolicy_ = new QComboBox;
    contextPolicy_->setObjectName(QStringLiteral("contextPolicy"));
    contextPolicy_->addItem(tr("Leave out the oldest messages (the system prompt and template examples stay)"),
                            static_cast<int>(app::ContextPolicy::LeaveOutOldest));
    contextPolicy_->addItem(tr("Stop and say so"), static_cast<int>(app::ContextPolicy::Refuse));
    contextPolicy_->setCurrentIndex(std::max(0, contextPolicy_->findData(static_cast<int>(engine.contextPolicy))));
    contextPolicy_->setToolTip(tr("What happens when a chat grows longer than the model's context (a quarter of it, or the reply's token "
                                  "limit if less, is kept for the reply)."));
    // The system prompt: the default for every chat, or this chat's own (empty: the default).
    systemPrompt_ = new QPlainTextEdit;
    systemPrompt_->setObjectName(QStringLiteral("systemPrompt"));
    systemPrompt_->setTabChangesFocus(true);
    systemPrompt_->setMaximumHeight(systemPrompt_->fontMetrics().lineSpacing() * 5);
    {
        systemPrompt_->setPlainText(chatId ? assistant.ownSystemPrompt(chatId) : assistant.systemPrompt(0));
        systemPrompt_->setPlaceholderText(chatId ? tr("Empty: the default system prompt (Settings)") : tr("None: the model's own default"));
    }
    auto* form = new QFormLayout;
    form->addRow(tr("&Temperature (0: always the likeliest word):"), temperature_);
    form->addRow(tr("Top-&k:"), topK_);
    form->addRow(tr("Top-&p:"), topP_);
    form->addRow(tr("&Min-p:"), minP_);
    form->addRow(tr("&Repetition penalty:"), repeat_);
    form->addRow(tr("&Seed:"), seed_);
    form->addRow(tr("Ma&x tokens per reply:"), maxTokens_);
    form->addRow(chatId ? tr("S&ystem prompt for this chat:") : tr("Default s&ystem prompt:"), systemPrompt_);
    if (chatId == 0) {
        form->addRow(tr("&Context length (next model load):"), context_);
        form->addRow(tr("When a chat outgrows the conte&xt:"), contextPolicy_);
        form->addRow(tr("CPU t&hreads (next model load):"), threads_);
        form->addRow(tr("&KV cache precision (next model load):"), kvCache_);
        form->addRow(tr("Saved &states of recurrent models (next model load):"), snapshots_);
        // Whether models can use a GPU, and why not; the layer count only where this build has CUDA.
        const auto gpu = app::gpuStatus();
        auto* gpuNote = new QLabel(QString::fromStdString(gpu.text));
        gpuNote->setObjectName(QStringLiteral("gpuStatus"));
        gpuNote->setWordWrap(true);
        gpuNote->setTextInteractionFlags(Qt::TextSelectableByMouse);
        form->addRow(tr("GPU:"), gpuNote);
        if (gpu.built) form->addRow(tr("&GPU layers (0: CPU only; next model load):"), gpuLayers_);
        else gpuLayers_->hide();
        // The local server: the loaded model for other programs, through the OpenAI API.
        const auto server = assistant_.serverChoice();
        serve_ = new QCheckBox(tr("Serve the loaded model to other programs (OpenAI API)"));
        serve_->setObjectName(QStringLiteral("serveCheck"));
        serve_->setChecked(server.enabled);
        servePort_ = new QSpinBox;
        servePort_->setObjectName(QStringLiteral("servePort"));
        servePort_->setRange(0, 65535);
        servePort_->setSpecialValueText(tr("any free port"));
        servePort_->setValue(server.port);
        serveEveryone_ = new QCheckBox(tr("Let other computers in (they must send the API key)"));
        serveEveryone_->setObjectName(QStringLiteral("serveEveryone"));
        serveEveryone_->setChecked(server.everyone);
        serveKey_ = new QLineEdit(assistant_.serverApiKey());
        serveKey_->setObjectName(QStringLiteral("serveApiKey"));
        serveKey_->setEchoMode(QLineEdit::Password);
        serveKey_->setPlaceholderText(tr("none (only this computer)"));
        serveKey_->setToolTip(tr("Clients send it as 'Authorization: Bearer KEY'; kept in the system keychain"));
        auto* serveState = new QLabel(assistant_.engine().isServing() ? tr("Serving at %1").arg(assistant_.engine().serverUrl()) : tr("Not serving"));
        serveState->setObjectName(QStringLiteral("serveState"));
        serveState->setTextInteractionFlags(Qt::TextSelectableByMouse);
        form->addRow(tr("Local server:"), serve_);
        form->addRow(tr("P&ort:"), servePort_);
        form->addRow(QString(), serveEveryone_);
        form->addRow(tr("Server API key:"), serveKey_);
        form->addRow(QString(), serveState);
        const auto enable = [this] {
            for (QWidget* w : std::initializer_list<QWidget*>{servePort_, serveEveryone_, serveKey_}) w->setEnabled(serve_->isChecked());
        };
        connect(serve_, &QCheckBox::toggled, this, enable);
        enable();
        // The Hugging Face Hub: its address (mirrors) and a token for gated models.
        hubEndpoint_ = new QLineEdit(assistant_.hubEndpointSetting());
        hubEndpoint_->setObjectName(QStringLiteral("hubEndpoint"));
        hubEndpoint_->setPlaceholderText(QStringLiteral("https://huggingface.co"));
        hubToken_ = new QLineEdit(assistant_.hubToken());
        hubToken_->setObjectName(QStringLiteral("hubToken"));
        hubToken_->setEchoMode(QLineEdit::Password);
        hubToken_->setPlaceholderText(tr("none (for gated models: hf_…)"));
        hubToken_->setToolTip(tr("Sent to the Hub's own address only; kept in the system keychain (HF_TOKEN overrides it)"));
        form->addRow(tr("Hugging Face &address:"), hubEndpoint_);
        form->addRow(tr("Hugging Face &token:"), hubToken_);
    } else {
        context_->hide();
        contextPolicy_->hide();
        threads_->hide();
        gpuLayers_->hide();
        kvCache_->hide();
        snapshots_->hide();
    }
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel | QDialogButtonBox::RestoreDefaults);
    connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    connect(buttons->button(QDialogButtonBox::RestoreDefaults), &QPushButton::clicked, this, [this] {
        // A chat goes back to the general settings; the general ones to Lumen's defaults.
        clearChat_ = chatId_ != 0;
        const inference::GenerationParams d = chatId_ ? assistant_.generationParams() : app::Assistant::defaultParams();
        temperature_->setValue(d.sampling.temperature);
        topK_->setValue(d.sampling.topK);
        topP_->setValue(d.sampling.topP);
        minP_->setValue(d.sampling.minP);
        repeat_->setValue(d.sampling.repeatPenalty);
        seed_->setValue(d.sampling.seed == app::Assistant::kFreshSeed ? -1 : static_cast<int>(d.sampling.seed & 0x7FFFFFFF));
        maxTokens_->setValue(d.maxTokens);
        context_->setValue(4096);
        threads_->setValue(0);
        gpuLayers_->setValue(-1);
        kvCache_->setCurrentIndex(0);
        snapshots_->setValue(app::EngineOptions{}.snapshotMiB);
        contextPolicy_->setCurrentIndex(0);
        systemPrompt_->clear();
    });
    // Fields this mode does not show still belong to the dialog.
    for (QWidget* w : std::initializer_list<QWidget*>{context_, contextPolicy_, threads_, gpuLayers_, kvCache_, snapshots_})
        if (!w->parent()) w->setParent(this);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(form);
    layout->addWidget(buttons);
}

void SettingsDialog::accept() {
    inference::GenerationParams p = chatId_ ? assistant_.paramsFor(chatId_) : assistant_.generationParams();
    p.sampling.temperature = static_cast<float>(temperature_->value());
    p.sampling.topK = topK_->value();
    p.sampling.topP = static_cast<float>(topP_->value());
    p.sampling.minP = static_cast<float>(minP_->value());
    p.sampling.repeatPenalty = static_cast<float>(repeat_->value());
    p.sampling.seed = seed_->value() < 0 ? app::Assistant::kFreshSeed : static_cast<std::uint64_t>(seed_->value());
    p.maxTokens = maxTokens_->value();
    if (chatId_ == 0)
        assistant_.saveSettings(p, {threads_->value(), context_->value(), gpuLayers_->value(), app::kvTypeOfBits(kvCache_->currentData().toInt()),
                                    snapshots_->value(), static_cast<app::ContextPolicy>(contextPolicy_->currentData().toInt())});
    else {
        // A chat keeps sampling of its own only where it differs from the general settings.
        const inference::GenerationParams& g = assistant_.generationParams();
        const bool same = p.sampling.temperature == g.sampling.temperature && p.sampling.topK == g.sampling.topK && p.sampling.topP == g.sampling.topP &&
                          p.sampling.minP == g.sampling.minP && p.sampling.repeatPenalty == g.sampling.repeatPenalty && p.sampling.seed == g.sampling.seed &&
                          p.maxTokens == g.maxTokens;
        if (clearChat_ || same) assistant_.clearChatParams(chatId_);
        else assistant_.saveChatParams(chatId_, p);
    }
    assistant_.setSystemPrompt(chatId_, systemPrompt_->toPlainText());
    if (hubEndpoint_ && (hubEndpoint_->text().trimmed() != assistant_.hubEndpointSetting() || hubToken_->text().trimmed() != assistant_.hubToken()))
        assistant_.setHub(hubEndpoint_->text(), hubToken_->text().trimmed());
    if (serve_) {
        const app::Assistant::ServerChoice chosen{serve_->isChecked(), servePort_->value(), serveEveryone_->isChecked()};
        const auto now = assistant_.serverChoice();
        const QString key = serveKey_->text().trimmed();
        if (chosen.enabled != now.enabled || chosen.port != now.port || chosen.everyone != now.everyone || key != assistant_.serverApiKey() ||
            (chosen.enabled && !assistant_.engine().isServing()))
            assistant_.setServerChoice(chosen, key);
    }
    QDialog::accept();
}

}  // namespace lumen::ui
