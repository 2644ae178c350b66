#include "storage/database.h"

#include <sqlite3.h>

#include <chrono>
#include <ctime>
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

// "<file>.last-good.bak": the copy made after a good open.
std::filesystem::path dailyBackupName(const std::filesystem::path& path) { return path.string() + ".last-good.bak"; }

constexpr std::uintmax_t kDailyBackupLimit = std::uintmax_t{1} << 30;

// A copy of the (good, open) database as <file>.last-good.bak when there is none from the last
// day: VACUUM INTO a temporary name, then a rename, so a crash never leaves half a backup.
void keepDailyBackup(Connection& c, const std::filesystem::path& path) {
    std::error_code ec;
    const std::filesystem::path backup = dailyBackupName(path), partial = backup.string() + ".partial";
    const auto written = std::filesystem::last_write_time(backup, ec);
    if (!ec && std::filesystem::file_time_type::clock::now() - written < std::chrono::hours(24)) return;
    const auto size = std::filesystem::file_size(path, ec);
    if (ec || size > kDailyBackupLimit) return;
    std::filesystem::remove(partial, ec);
    try {
        Statement vacuum = c.prepare("VACUUM INTO ?");
        vacuum.bind(1, partial.string()).run();
        std::filesystem::rename(partial, backup, ec);
    } catch (const Error&) {
        std::filesystem::remove(partial, ec);  // (a full disk or a read-only folder: no backup this time)
    }
}

}  // namespace

std::optional<std::filesystem::path> Database::newestBackup(const std::filesystem::path& path) {
    std::error_code ec;
    std::optional<std::filesystem::path> best;
    std::filesystem::file_time_type bestTime{};
    const std::string prefix = path.filename().string() + ".";
    const std::filesystem::path folder = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
    for (const auto& entry : std::filesystem::directory_iterator(folder, ec)) {
        const std::string name = entry.path().filename().string();
        if (!name.starts_with(prefix) || !name.ends_with(".bak") || !entry.is_regular_file(ec)) continue;
        const auto time = entry.last_write_time(ec);
        if (!ec && (!best || time > bestTime)) best = entry.path(), bestTime = time;
    }
    return best;
}

std::filesystem::path Database::restoreBackup(const std::filesystem::path& path, const std::filesystem::path& backup) {
    std::error_code ec;
    const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&now));
    const std::filesystem::path aside = path.string() + ".damaged-" + stamp;
    std::filesystem::rename(path, aside, ec);
    if (ec) throw Error(path.string() + ": could not move the damaged file aside (" + ec.message() + ")", SQLITE_CANTOPEN);
    for (const char* suffix : {"-wal", "-shm"}) {
        const std::filesystem::path side = path.string() + suffix;
        if (std::filesystem::exists(side, ec)) std::filesystem::rename(side, aside.string() + suffix, ec);
    }
    std::filesystem::copy_file(backup, path, ec);
    if (ec) {
        std::error_code ignored;
        std::filesystem::rename(aside, path, ignored);  // put it back: nothing changed
        throw Error(backup.string() + ": could not be copied into place (" + ec.message() + ")", SQLITE_CANTOPEN);
    }
    return aside;
}

Database Database::open(const std::filesystem::path& path, const OpenOptions& options) {
    const std::span<const Migration> migrations =
        options.migrations.empty() ? schemaMigrations() : options.migrations;
    const int latest = migrations.back().version;

    std::error_code ec;
    const bool existed = std::filesystem::exists(path, ec) && std::filesystem::file_size(path, ec) > 0;
    if (std::filesystem::is_directory(path, ec))
        throw Error(path.string() + ": is a folder, not a database file", SQLITE_CANTOPEN);

    if (options.readOnly && !existed) throw Error(path.string() + ": there is no database to open read-only", SQLITE_CANTOPEN);
    Database db(Connection::open(path, options.readOnly ? Connection::Mode::ReadOnly : Connection::Mode::ReadWriteCreate));
    db.readOnly_ = options.readOnly;
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

    if (options.readOnly) {
        if (version < latest)
            throw Error(path.string() + " has schema v" + std::to_string(version) + " and cannot be upgraded while read-only", SQLITE_READONLY);
        db.schemaVersion_ = static_cast<int>(version);
        return db;
    }
    // Pages and indexes that do not read back: refused before anything is written, so the
    // user can restore a backup or read what is left (read-only).
    if (existed && objects > 0) {
        std::string problems;
        try {
            Statement check = c.prepare("PRAGMA quick_check(3)");
            while (check.step()) problems += (problems.empty() ? "" : "; ") + check.getText(0);
        } catch (const Error& e) {
            problems = e.what();
        }
        if (problems != "ok") {
            const auto backup = newestBackup(path);
            throw DamagedDatabase(path.string() + ": the database file is damaged (" + problems + "); it was left unchanged. " +
                                      (backup ? "The newest backup is " + backup->string() + "." : std::string("There is no backup of it.")),
                                  backup);
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
    if (existed) keepDailyBackup(c, path);
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
