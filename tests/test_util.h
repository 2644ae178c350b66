#pragma once
// Helpers shared by the test suites.

#include <QByteArray>
#include <QCryptographicHash>
#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QProcess>
#include <QString>
#include <QTemporaryDir>
#include <QTest>
#include <string>

namespace lumen::test {

inline QByteArray readFile(const QString& path) {
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly)) return {};
    return f.readAll();
}

inline bool writeFile(const QString& path, const QByteArray& bytes) {
    QFile f(path);
    return f.open(QIODevice::WriteOnly | QIODevice::Truncate) && f.write(bytes) == bytes.size();
}

inline QByteArray fileHash(const QString& path) {
    return QCryptographicHash::hash(readFile(path), QCryptographicHash::Sha256).toHex();
}

// ../shared/data beside the project, or an empty string when it is absent.
inline QString sharedDataDir() {
    const QString dir = QStringLiteral(LUMEN_SHARED_DATA_DIR);
    return QDir(dir).exists() ? QDir(dir).canonicalPath() : QString();
}

inline std::string str(const QString& s) { return s.toStdString(); }

#ifdef LUMEN_CLI_PATH
// lumen-cli serve in a process of its own on a free loopback port; `url` is its base URL
// (http://127.0.0.1:PORT/v1). Stopped (SIGTERM, then killed) when it goes.
struct ServeProcess {
    QProcess process;
    QString url;
    bool start(const QStringList& args) {
        process.setProcessChannelMode(QProcess::SeparateChannels);
        process.start(QStringLiteral(LUMEN_CLI_PATH), QStringList{QStringLiteral("serve"), QStringLiteral("--port"), QStringLiteral("0")} + args);
        QElapsedTimer t;
        t.start();
        QByteArray out;
        while (t.elapsed() < 20000 && process.state() != QProcess::NotRunning) {
            process.waitForReadyRead(100);
            out += process.readAllStandardOutput();
            const auto at = out.indexOf("listening on "), end = out.indexOf(" (", at);
            if (at >= 0 && end > at) {
                url = QString::fromUtf8(out.mid(at + 13, end - at - 13));
                return true;
            }
        }
        return false;
    }
    ~ServeProcess() {
        process.terminate();
        if (!process.waitForFinished(5000)) process.kill();
    }
};
#endif

}  // namespace lumen::test
