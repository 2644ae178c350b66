#include "app/secrets.h"

#include <QHash>
#include <QPointer>
#include <qt6keychain/keychain.h>

#include "app/logging.h"

namespace lumen::app {
namespace {

constexpr auto kService = "Lumen";

// What could not go to the keychain, for this run.
QHash<QString, QString>& memory() {
    static QHash<QString, QString> secrets;
    return secrets;
}

}  // namespace

SecretStore::SecretStore(QObject* parent) : QObject(parent) {}

bool SecretStore::keychainEnabled() { return qEnvironmentVariable("LUMEN_KEYCHAIN").compare(QLatin1String("off"), Qt::CaseInsensitive) != 0; }

void SecretStore::write(const QString& name, const QString& value, std::function<void(bool, const QString&)> done) {
    memory().insert(name, value);
    if (!keychainEnabled()) {
        if (done) done(false, tr("the system keychain is off (LUMEN_KEYCHAIN); the key is kept until Lumen closes"));
        return;
    }
    // (a job has no parent: the keychain backends' callbacks may come after this store is gone,
    // and a job deleted while pending crashes them; it deletes itself when finished)
    auto* job = new QKeychain::WritePasswordJob(QString::fromLatin1(kService));
    job->setAutoDelete(true);
    job->setInsecureFallback(false);
    job->setKey(name);
    job->setTextData(value);
    QPointer<SecretStore> self(this);
    connect(job, &QKeychain::Job::finished, job, [self, name, done](QKeychain::Job* j) {
        if (!self) return;
        if (j->error() == QKeychain::NoError) {
            memory().remove(name);
            if (done) done(true, {});
            return;
        }
        qCWarning(lcApp) << "keychain write failed:" << j->errorString();
        if (done) done(false, tr("the system keychain is not available (%1); the key is kept until Lumen closes").arg(j->errorString()));
    });
    job->start();
}

void SecretStore::read(const QString& name, std::function<void(const QString&)> done) {
    if (const auto it = memory().constFind(name); it != memory().constEnd() || !keychainEnabled()) {
        done(it != memory().constEnd() ? *it : QString());
        return;
    }
    auto* job = new QKeychain::ReadPasswordJob(QString::fromLatin1(kService));
    job->setAutoDelete(true);
    job->setInsecureFallback(false);
    job->setKey(name);
    QPointer<SecretStore> self(this);
    connect(job, &QKeychain::Job::finished, job, [self, done](QKeychain::Job* j) {
        if (!self) return;
        if (j->error() != QKeychain::NoError && j->error() != QKeychain::EntryNotFound) qCWarning(lcApp) << "keychain read failed:" << j->errorString();
        done(j->error() == QKeychain::NoError ? static_cast<QKeychain::ReadPasswordJob*>(j)->textData() : QString());
    });
    job->start();
}

void SecretStore::remove(const QString& name) {
    memory().remove(name);
    if (!keychainEnabled()) return;
    auto* job = new QKeychain::DeletePasswordJob(QString::fromLatin1(kService));
    job->setAutoDelete(true);
    job->setKey(name);
    job->start();
}

}  // namespace lumen::app
