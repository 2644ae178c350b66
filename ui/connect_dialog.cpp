#include "ui/connect_dialog.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPointer>
#include <QPushButton>
#include <QVBoxLayout>

namespace lumen::ui {

ConnectDialog::ConnectDialog(app::Assistant& assistant, QWidget* parent) : QDialog(parent), assistant_(assistant) {
    setObjectName(QStringLiteral("connectDialog"));
    setWindowTitle(tr("Connect to a Server"));
    auto* intro = new QLabel(tr("Lumen can chat through a model running on a server that speaks OpenAI's API: vLLM, llama.cpp's "
                                "llama-server, Ollama, LM Studio or another Lumen (lumen-cli serve). Chats, templates and images stay here."));
    intro->setWordWrap(true);
    url_ = new QLineEdit;
    url_->setObjectName(QStringLiteral("serverUrl"));
    url_->setPlaceholderText(QStringLiteral("http://127.0.0.1:8000/v1"));
    apiKey_ = new QLineEdit;
    apiKey_->setObjectName(QStringLiteral("serverApiKey"));
    apiKey_->setEchoMode(QLineEdit::Password);
    apiKey_->setPlaceholderText(tr("none"));
    apiKey_->setToolTip(tr("Sent as 'Authorization: Bearer KEY'; kept in the system keychain"));
    model_ = new QComboBox;
    model_->setObjectName(QStringLiteral("serverModel"));
    model_->setEditable(true);
    model_->lineEdit()->setPlaceholderText(tr("the server's only model"));
    model_->setMinimumContentsLength(24);
    listButton_ = new QPushButton(tr("&List Models"));
    listButton_->setObjectName(QStringLiteral("listModelsButton"));
    auto* modelRow = new QHBoxLayout;
    modelRow->addWidget(model_, 1);
    modelRow->addWidget(listButton_);
    images_ = new QCheckBox(tr("The model &sees images (they are sent with the messages)"));
    images_->setObjectName(QStringLiteral("serverSeesImages"));
    status_ = new QLabel;
    status_->setObjectName(QStringLiteral("serverStatus"));
    status_->setWordWrap(true);
    auto* form = new QFormLayout;
    form->addRow(tr("&Address:"), url_);
    form->addRow(tr("API &key:"), apiKey_);
    form->addRow(tr("&Model:"), modelRow);
    form->addRow(QString(), images_);
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Cancel);
    connectButton_ = buttons->addButton(tr("&Connect"), QDialogButtonBox::AcceptRole);
    connectButton_->setObjectName(QStringLiteral("connectButton"));
    connectButton_->setDefault(true);
    connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    auto* layout = new QVBoxLayout(this);
    layout->addWidget(intro);
    layout->addLayout(form);
    layout->addWidget(status_);
    layout->addWidget(buttons);

    connect(listButton_, &QPushButton::clicked, this, &ConnectDialog::listModels);
    connect(url_, &QLineEdit::textChanged, this, &ConnectDialog::updateButtons);
    // What was used last (or is in use), its key from the keychain.
    const auto& engine = assistant_.engine();
    std::optional<app::Assistant::RemoteChoice> last = assistant_.rememberedRemote();
    if (engine.isRemote()) last = app::Assistant::RemoteChoice{engine.remoteConfig(), engine.hasImageProjector()};
    if (last) {
        url_->setText(last->config.baseUrl.toString());
        model_->setEditText(last->config.model);
        images_->setChecked(last->seesImages);
        apiKey_->setText(last->config.apiKey);  // (the one in use; else the keychain's, below)
        QPointer<ConnectDialog> self(this);
        assistant_.rememberedApiKey(last->config.baseUrl, [self](const QString& key) {
            if (ConnectDialog* dialog = self.data(); dialog && dialog->apiKey_->text().isEmpty()) dialog->apiKey_->setText(key);
        });
    }
    updateButtons();
}

std::optional<app::RemoteConfig> ConnectDialog::config() const {
    const auto url = app::normalizeBaseUrl(url_->text());
    if (!url) return std::nullopt;
    app::RemoteConfig c;
    c.baseUrl = *url;
    c.apiKey = apiKey_->text().trimmed();
    c.model = model_->currentText().trimmed();
    return c;
}

bool ConnectDialog::seesImages() const { return images_->isChecked(); }

void ConnectDialog::updateButtons() {
    const bool valid = config().has_value();
    listButton_->setEnabled(valid);
    connectButton_->setEnabled(valid);
    if (!url_->text().trimmed().isEmpty() && !valid) status_->setText(tr("The address is an http:// or https:// URL, such as http://127.0.0.1:8000/v1."));
    else if (status_->property("fromServer").toBool() == false) status_->clear();
}

void ConnectDialog::listModels() {
    const auto c = config();
    if (!c) return;
    listButton_->setEnabled(false);
    status_->setProperty("fromServer", true);
    status_->setText(tr("Asking %1…").arg(c->baseUrl.toDisplayString()));
    QPointer<ConnectDialog> self(this);
    assistant_.listRemoteModels(*c, [self](const QStringList& models, const QString& error) {
        if (ConnectDialog* dialog = self.data()) dialog->showModels(models, error);
    });
}

void ConnectDialog::showModels(const QStringList& models, const QString& error) {
    listButton_->setEnabled(config().has_value());
    if (!error.isEmpty()) {
        status_->setText(error);
        return;
    }
    const QString typed = model_->currentText();
    model_->clear();
    model_->addItems(models);
    model_->setEditText(models.contains(typed) || models.isEmpty() ? typed : models.front());
    status_->setText(models.isEmpty() ? tr("The server lists no models.") : tr("%n model(s) on the server.", "", static_cast<int>(models.size())));
}

void ConnectDialog::accept() {
    const auto c = config();
    if (!c) return;
    assistant_.connectRemote(*c, seesImages());
    QDialog::accept();
}

}  // namespace lumen::ui
