#pragma once
// Where Lumen keeps its database. In order of precedence:
//   1. an explicit database file (--database FILE, or LUMEN_DATABASE)
//   2. a data folder (--data-dir DIR, or LUMEN_DATA_DIR), holding lumen.db
//   3. the platform's app-data folder (QStandardPaths::AppDataLocation), holding lumen.db

#include <QString>

namespace lumen::app {

inline constexpr const char* kDatabaseFileName = "lumen.db";

struct PathOverrides {
    QString databaseFile;  // --database
    QString dataDir;       // --data-dir
};

// Resolves the database path (absolute). Does not create anything.
QString resolveDatabasePath(const PathOverrides& overrides = {});
// Where downloaded models go: a "models" folder beside the database (as resolved above), each
// repository's files under <owner>/<name>/. The app and lumen-cli share it.
QString resolveModelsFolder(const PathOverrides& overrides = {});
QString modelsFolderBeside(const QString& databasePath);
// Creates the folder the database goes in; returns an error message, empty on success.
QString ensureParentFolder(const QString& databasePath);

}  // namespace lumen::app
