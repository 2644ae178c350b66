#include "storage/sqlite.h"

#include <sqlite3.h>

#include <limits>
#include <utility>

namespace lumen::storage {
namespace {

// What a result code means to someone who can only act on the file: which file, and what to do.
std::string explain(int code, const std::filesystem::path& path) {
    switch (code) {  // (extended result codes)
        case SQLITE_READONLY_CANTLOCK:
        case SQLITE_READONLY_CANTINIT:
            return "its shared-memory file " + path.string() + "-shm cannot be written: make it writable, or delete it while no Lumen is running";
        case SQLITE_READONLY_DIRECTORY:
            return "its folder " + path.parent_path().string() + " is read-only, and SQLite needs to create files beside the database: make the folder writable";
        case SQLITE_READONLY_DBMOVED: return "the file was moved or deleted while in use: start Lumen again";
        case SQLITE_READONLY_RECOVERY:
        case SQLITE_READONLY_ROLLBACK: return "the database needs recovery, which needs write access to it and its folder";
        default: break;
    }
    switch (code & 0xFF) {
        case SQLITE_CORRUPT: return "the database file is damaged";
        case SQLITE_NOTADB: return "the file is not a database";
        case SQLITE_FULL: return "the disk is full";
        case SQLITE_READONLY: return "the database is read-only: make the file (and its folder) writable, or choose another with --database";
        case SQLITE_BUSY:
        case SQLITE_LOCKED: return "the database is in use by another program";
        case SQLITE_CANTOPEN: return "the file could not be opened: check that its folder exists and that you may read and write there";
        case SQLITE_IOERR: return "a disk read or write failed";
        case SQLITE_PERM: return "permission denied: make the file and its folder writable for you";
        default: return {};
    }
}

}  // namespace

static_assert(kSqliteError == SQLITE_ERROR && kSqliteCorrupt == SQLITE_CORRUPT && kSqliteConstraint == SQLITE_CONSTRAINT);

Connection Connection::open(const std::filesystem::path& path, Mode mode) {
    const int flags = mode == Mode::ReadOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    sqlite3* db = nullptr;
    const int rc = sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX, nullptr);
    Connection connection(db, path);  // owns db even when opening failed
    if (rc != SQLITE_OK) connection.fail(rc, "open");
    sqlite3_extended_result_codes(db, 1);
    return connection;
}

Connection::Connection(Connection&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)), path_(std::move(other.path_)) {}

Connection& Connection::operator=(Connection&& other) noexcept {
    if (this != &other) {
        if (db_) sqlite3_close_v2(db_);
        db_ = std::exchange(other.db_, nullptr);
        path_ = std::move(other.path_);
    }
    return *this;
}

Connection::~Connection() {
    if (db_) sqlite3_close_v2(db_);
}

void Connection::fail(int code, std::string_view what) const {
    std::string message = path_.string() + ": ";
    const std::string meaning = explain(code, path_);
    if (!meaning.empty()) message += meaning + " (";
    message += std::string(what) + ": ";
    message += db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(code);
    if (!meaning.empty()) message += ")";
    throw Error(message, code);
}

void Connection::exec(std::string_view sql) {
    const std::string text(sql);
    char* err = nullptr;
    const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
        const std::string detail = err ? err : sqlite3_errstr(rc);
        sqlite3_free(err);
        std::string message = path_.string() + ": ";
        const std::string meaning = explain(rc, path_);
        message += meaning.empty() ? detail : meaning + " (" + detail + ")";
        throw Error(message, rc);
    }
}

Statement Connection::prepare(std::string_view sql) {
    if (sql.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
        throw Error("SQL statement too long");
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), 0, &stmt, nullptr);
    if (rc != SQLITE_OK) fail(rc, "prepare");
    return Statement(*this, stmt);
}

std::int64_t Connection::lastInsertRowId() const { return sqlite3_last_insert_rowid(db_); }

int Connection::changes() const { return sqlite3_changes(db_); }

std::int64_t Connection::pragmaInt(std::string_view name) {
    Statement stmt = prepare("PRAGMA " + std::string(name));
    if (!stmt.step()) throw Error(path_.string() + ": PRAGMA " + std::string(name) + " returned no row");
    return stmt.getInt(0);
}

Statement::Statement(Statement&& other) noexcept
    : connection_(other.connection_), stmt_(std::exchange(other.stmt_, nullptr)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
    if (this != &other) {
        if (stmt_) sqlite3_finalize(stmt_);
        connection_ = other.connection_;
        stmt_ = std::exchange(other.stmt_, nullptr);
    }
    return *this;
}

Statement::~Statement() {
    if (stmt_) sqlite3_finalize(stmt_);
}

void Statement::check(int code, std::string_view what) const {
    if (code != SQLITE_OK) connection_->fail(code, what);
}

Statement& Statement::bind(int index, std::int64_t value) {
    check(sqlite3_bind_int64(stmt_, index, value), "bind");
    return *this;
}

Statement& Statement::bind(int index, double value) {
    check(sqlite3_bind_double(stmt_, index, value), "bind");
    return *this;
}

Statement& Statement::bind(int index, std::string_view text) {
    check(sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8),
          "bind");
    return *this;
}

Statement& Statement::bindBlob(int index, std::span<const std::uint8_t> blob) {
    // A zero-length blob must still bind as a blob, not NULL, so pass a valid pointer.
    static const std::uint8_t kEmpty = 0;
    check(sqlite3_bind_blob64(stmt_, index, blob.empty() ? &kEmpty : blob.data(), blob.size(),
                              SQLITE_TRANSIENT),
          "bind");
    return *this;
}

Statement& Statement::bindNull(int index) {
    check(sqlite3_bind_null(stmt_, index), "bind");
    return *this;
}

bool Statement::step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    connection_->fail(rc, "step");
}

void Statement::run() {
    while (step()) {
    }
}

void Statement::reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
}

bool Statement::isNull(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }

std::int64_t Statement::getInt(int column) const { return sqlite3_column_int64(stmt_, column); }

double Statement::getDouble(int column) const { return sqlite3_column_double(stmt_, column); }

std::string Statement::getText(int column) const {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
    const int size = sqlite3_column_bytes(stmt_, column);
    return text ? std::string(text, static_cast<std::size_t>(size)) : std::string();
}

Bytes Statement::getBlob(int column) const {
    const auto* data = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, column));
    const int size = sqlite3_column_bytes(stmt_, column);
    return data ? Bytes(data, data + size) : Bytes();
}

std::optional<std::int64_t> Statement::getOptionalInt(int column) const {
    if (isNull(column)) return std::nullopt;
    return getInt(column);
}

std::optional<double> Statement::getOptionalDouble(int column) const {
    if (isNull(column)) return std::nullopt;
    return getDouble(column);
}

std::optional<std::string> Statement::getOptionalText(int column) const {
    if (isNull(column)) return std::nullopt;
    return getText(column);
}

Transaction::Transaction(Connection& connection, Mode mode)
    : connection_(connection), nested_(sqlite3_get_autocommit(connection.handle()) == 0) {
    if (nested_)
        connection_.exec("SAVEPOINT lumen_nested");
    else
        connection_.exec(mode == Mode::Immediate ? "BEGIN IMMEDIATE" : "BEGIN");
}

Transaction::~Transaction() {
    if (done_) return;
    const char* undo = nested_ ? "ROLLBACK TO lumen_nested; RELEASE lumen_nested" : "ROLLBACK";
    sqlite3_exec(connection_.handle(), undo, nullptr, nullptr, nullptr);
}

void Transaction::commit() {
    connection_.exec(nested_ ? "RELEASE lumen_nested" : "COMMIT");
    done_ = true;
}

}  // namespace lumen::storage
