#include "storage/database.h"

#include <chrono>
#include <system_error>

namespace lumen::storage {
namespace {

std::string hex32(std::int64_t value) {
    static const char* kDigits = "0123456789abcdef";
    std::string s = "0x";
    for (int shift = 28; shift >= 0; shift -= 4) s += kDigits[(value >> shift) & 0xF];
    return s;
}

// A backup name that does not overwrite an earlier backup: lumen.db.v1.bak, then .v1.2.bak, ...
std::filesystem::path backupName(const std::filesystem::path& path, std::int64_t version) {
    const std::string base = path.string() + ".v" + std::to_string(version);
    std::filesystem::path candidate = base + ".bak";
    for (int n = 2; std::filesystem::exists(candidate); ++n)
        candidate = base + "." + std::to_string(n) + ".bak";
    return candidate;
}

}  // namespace

Database Database::open(const std::filesystem::path& path, const OpenOptions& options) {
    const std::span<const Migration> migrations =
        options.migrations.empty() ? schemaMigrations() : options.migrations;
    const int latest = migrations.back().version;

    std::error_code ec;
    const bool existed = std::filesystem::exists(path, ec) && std::filesystem::file_size(path, ec) > 0;
    if (std::filesystem::is_directory(path, ec))
        throw Error(path.string() + ": is a folder, not a database file", SQLITE_CANTOPEN);

    Database db(Connection::open(path));
    Connection& c = db.connection_;
    sqlite3_busy_timeout(c.handle(), options.busyTimeoutMs);

    // Read-only checks first: nothing is written to a file we are going to refuse.
    std::int64_t appId = 0, version = 0, objects = 0;
    try {
        appId = c.pragmaInt("application_id");
        version = c.pragmaInt("user_version");
        Statement count = c.prepare("SELECT count(*) FROM sqlite_schema");
        count.step();
        objects = count.getInt(0);
    } catch (const Error& e) {
        throw Error(std::string(e.what()) + "; it was left unchanged", e.sqliteCode());
    }
    if (existed) {
        if (appId != kApplicationId && !(appId == 0 && objects == 0)) {
            throw Error(path.string() + " is not a Lumen database (it belongs to another program: " +
                            "application id " + hex32(appId) + "); it was left unchanged",
                        SQLITE_NOTADB);
        }
        if (version > latest) {
            throw Error(path.string() + " was written by a newer version of Lumen (schema v" +
                            std::to_string(version) + "; this version reads up to v" +
                            std::to_string(latest) + "). It was left unchanged: update Lumen to open it.",
                        SQLITE_CANTOPEN);
        }
    }

    c.exec("PRAGMA journal_mode = WAL");
    c.exec("PRAGMA synchronous = NORMAL");  // with WAL: durable across crashes of the app
    c.exec("PRAGMA foreign_keys = ON");

    if (version < latest) {
        if (existed && version > 0) {
            const std::string check = db.integrityCheck();
            if (check != "ok")
                throw Error(path.string() + ": the database file is damaged and was not upgraded (" +
                                check + ")",
                            SQLITE_CORRUPT);
            const std::filesystem::path backup = backupName(path, version);
            Statement vacuum = c.prepare("VACUUM INTO ?");
            vacuum.bind(1, backup.string()).run();
            db.backupPath_ = backup;
        }
        for (const Migration& m : migrations) {
            if (m.version <= version) continue;
            Transaction tx(c);
            try {
                c.exec(m.sql);
            } catch (const Error& e) {
                throw Error(std::string("upgrading the database to schema v") +
                                std::to_string(m.version) + " failed; it is unchanged at v" +
                                std::to_string(version) + ": " + e.what(),
                            e.sqliteCode());
            }
            c.exec("PRAGMA application_id = " + std::to_string(kApplicationId));
            c.exec("PRAGMA user_version = " + std::to_string(m.version));
            tx.commit();
            version = m.version;
        }
    }
    db.schemaVersion_ = static_cast<int>(version);
    return db;
}

std::string Database::integrityCheck() {
    Statement stmt = connection_.prepare("PRAGMA integrity_check");
    std::string result;
    while (stmt.step()) {
        if (!result.empty()) result += "; ";
        result += stmt.getText(0);
    }
    return result;
}

}  // namespace lumen::storage
