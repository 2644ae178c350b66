#pragma once
// Opening Lumen's database file: checks that it is ours and not from a newer Lumen, backs it up
// and migrates it one schema version at a time, and sets WAL, foreign keys and a busy timeout.
// A file that is refused (not a database, damaged, another program's, from a newer version) is
// left byte-for-byte unchanged.

#include <filesystem>
#include <optional>
#include <span>

#include "storage/schema.h"
#include "storage/sqlite.h"

namespace lumen::storage {

struct OpenOptions {
    // The migrations to apply; empty means this build's schema (tests pass their own).
    std::span<const Migration> migrations;
    int busyTimeoutMs = 5000;
    // Nothing is written: no journal mode, no migration, no backup; writes fail with SQLite's
    // "readonly" error. For a damaged file the user chose to read anyway (no check is run).
    bool readOnly = false;
};

// The file failed SQLite's quick check on open. Nothing was written to it; the message names
// the problems and, when there is one, the newest backup (backup()).
class DamagedDatabase : public Error {
public:
    DamagedDatabase(const std::string& message, std::optional<std::filesystem::path> backup)
        : Error(message, kSqliteCorrupt), backup_(std::move(backup)) {}
    const std::optional<std::filesystem::path>& backup() const { return backup_; }

private:
    std::optional<std::filesystem::path> backup_;
};

class Database {
public:
    // Creates the file (not its folder) when missing. Throws Error with a message for the user;
    // DamagedDatabase when an existing file fails SQLite's quick check (pages or indexes that do
    // not read back). After a good open, a copy is kept as <file>.last-good.bak (renewed once a
    // day, for files under 1 GB) for restoreBackup.
    static Database open(const std::filesystem::path& path, const OpenOptions& options = {});
    // The newest backup of the database at `path` (the daily copy or the one made before an
    // upgrade), if any.
    static std::optional<std::filesystem::path> newestBackup(const std::filesystem::path& path);
    // Puts `backup` in place of the database at `path`: the damaged file (and its -wal and
    // -shm) move aside to <file>.damaged-<time>, which is returned. Throws Error when it cannot.
    static std::filesystem::path restoreBackup(const std::filesystem::path& path, const std::filesystem::path& backup);
    bool readOnly() const { return readOnly_; }

    Connection& connection() { return connection_; }
    const std::filesystem::path& path() const { return connection_.path(); }
    int schemaVersion() const { return schemaVersion_; }
    // The copy made before migrating, when this open migrated an existing database.
    const std::optional<std::filesystem::path>& backupPath() const { return backupPath_; }

    // PRAGMA integrity_check; returns "ok" or SQLite's list of problems.
    std::string integrityCheck();

private:
    explicit Database(Connection connection) : connection_(std::move(connection)) {}
    Connection connection_;
    int schemaVersion_ = 0;
    bool readOnly_ = false;
    std::optional<std::filesystem::path> backupPath_;
};

}  // namespace lumen::storage
