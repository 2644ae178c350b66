#pragma once
// Helpers shared by the test suites.

#include <QByteArray>
#include <QCryptographicHash>
#include <QDir>
#include <QFile>
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

}  // namespace lumen::test
