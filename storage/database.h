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
};

class Database {
public:
    // Creates the file (not its folder) when missing. Throws Error with a message for the user.
    static Database open(const std::filesystem::path& path, const OpenOptions& options = {});

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
    std::optional<std::filesystem::path> backupPath_;
};

}  // namespace lumen::storage
