#pragma once
// Secrets (a remote server's API key, an access token) in the system keychain through QtKeychain:
// the Secret Service (GNOME Keyring, KeePassXC) or KWallet on Linux, the Keychain on macOS, the
// Credential Store on Windows. Never in the database or a settings file. Where there is no
// keychain (no desktop session, LUMEN_KEYCHAIN=off) a secret is kept in memory until Lumen
// closes, and the caller is told so. Calls are asynchronous: the window never waits on D-Bus.

#include <QObject>
#include <QString>
#include <functional>

namespace lumen::app {

class SecretStore : public QObject {
    Q_OBJECT
public:
    explicit SecretStore(QObject* parent = nullptr);

    // `done(kept, note)`: kept in the keychain, or (false) only in memory for this run, with why.
    void write(const QString& name, const QString& value, std::function<void(bool kept, const QString& note)> done = {});
    // `done(value)`: the secret, or an empty string when there is none (or it cannot be read).
    void read(const QString& name, std::function<void(const QString& value)> done);
    void remove(const QString& name);

    // Whether the system keychain is used (LUMEN_KEYCHAIN=off: memory only, for tests and kiosks).
    static bool keychainEnabled();
};

}  // namespace lumen::app
