#include "app/read_file.h"

#include <QFile>
#include <QFileInfo>
#include <QLocale>

namespace lumen::app {

std::optional<QByteArray> readUserFile(const QString& path, qint64 maxBytes, QString& error) {
    const QFileInfo info(path);
    if (!info.exists()) {
        error = QStringLiteral("no such file");
        return std::nullopt;
    }
    // (checked before opening: opening a FIFO for reading waits for a writer)
    if (!info.isFile()) {
        error = info.isDir() ? QStringLiteral("is a folder, not a file") : QStringLiteral("is not a regular file");
        return std::nullopt;
    }
    if (info.size() > maxBytes) {
        error = QStringLiteral("is %1; files of this kind are read up to %2")
                    .arg(QLocale::c().formattedDataSize(info.size()), QLocale::c().formattedDataSize(maxBytes));
        return std::nullopt;
    }
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly)) {
        error = f.errorString();
        return std::nullopt;
    }
    QByteArray bytes = f.read(maxBytes + 1);  // a file that grew since: still bounded
    if (bytes.size() > maxBytes) {
        error = QStringLiteral("grew past %1 while it was read").arg(QLocale::c().formattedDataSize(maxBytes));
        return std::nullopt;
    }
    return bytes;
}

}  // namespace lumen::app
