#include "app/app_paths.h"

#include <QDir>
#include <QFileInfo>
#include <QStandardPaths>

namespace lumen::app {

QString resolveDatabasePath(const PathOverrides& overrides) {
    auto absolute = [](const QString& path) { return QFileInfo(path).absoluteFilePath(); };
    if (!overrides.databaseFile.isEmpty()) return absolute(overrides.databaseFile);
    const QString envFile = qEnvironmentVariable("LUMEN_DATABASE");
    if (!envFile.isEmpty()) return absolute(envFile);
    QString dir = overrides.dataDir;
    if (dir.isEmpty()) dir = qEnvironmentVariable("LUMEN_DATA_DIR");
    if (dir.isEmpty()) dir = QStandardPaths::writableLocation(QStandardPaths::AppDataLocation);
    return absolute(QDir(dir).filePath(QString::fromLatin1(kDatabaseFileName)));
}

QString resolveModelsFolder(const PathOverrides& overrides) { return modelsFolderBeside(resolveDatabasePath(overrides)); }

QString modelsFolderBeside(const QString& databasePath) {
    return QDir(QFileInfo(databasePath).absolutePath()).filePath(QStringLiteral("models"));
}

QString ensureParentFolder(const QString& databasePath) {
    const QString folder = QFileInfo(databasePath).absolutePath();
    if (QDir().mkpath(folder)) return {};
    return QStringLiteral("cannot create the folder %1 for Lumen's database").arg(folder);
}

}  // namespace lumen::app
