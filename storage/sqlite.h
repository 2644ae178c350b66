#pragma once
// A small RAII layer over the SQLite C API: a connection, a prepared statement and a transaction
// that rolls back unless committed. Every failure throws storage::Error with SQLite's message
// and, where it matters to a user, what it means ("the database file is damaged").

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

// (SQLite's handles, declared here so that includers do not get <sqlite3.h>)
struct sqlite3;
struct sqlite3_stmt;

namespace lumen::storage {

// SQLite's result codes SQLITE_ERROR, SQLITE_CORRUPT and SQLITE_CONSTRAINT (checked against
// <sqlite3.h> in sqlite.cpp).
constexpr int kSqliteError = 1;
constexpr int kSqliteCorrupt = 11;
constexpr int kSqliteConstraint = 19;

using Bytes = std::vector<std::uint8_t>;

class Error : public std::runtime_error {
public:
    Error(const std::string& message, int sqliteCode = kSqliteError)
        : std::runtime_error(message), code_(sqliteCode) {}
    int sqliteCode() const { return code_; }
    // A UNIQUE, FOREIGN KEY, CHECK or NOT NULL constraint refused the write.
    bool isConstraint() const { return (code_ & 0xFF) == kSqliteConstraint; }

private:
    int code_;
};

class Statement;

class Connection {
public:
    enum class Mode { ReadWriteCreate, ReadOnly };
    // Throws Error when the file cannot be opened (read-only: nothing may be written, and a
    // missing file is not created). Extended result codes are on.
    static Connection open(const std::filesystem::path& path, Mode mode = Mode::ReadWriteCreate);

    Connection(Connection&& other) noexcept;
    Connection& operator=(Connection&& other) noexcept;
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;
    ~Connection();

    // Runs one or more statements that return no rows we need.
    void exec(std::string_view sql);
    Statement prepare(std::string_view sql);

    std::int64_t lastInsertRowId() const;
    int changes() const;
    // PRAGMA name (one integer row), e.g. user_version.
    std::int64_t pragmaInt(std::string_view name);

    sqlite3* handle() const { return db_; }
    const std::filesystem::path& path() const { return path_; }

    // Throws Error for `code` with this connection's message and path.
    [[noreturn]] void fail(int code, std::string_view what) const;

private:
    Connection(sqlite3* db, std::filesystem::path path) : db_(db), path_(std::move(path)) {}
    sqlite3* db_ = nullptr;
    std::filesystem::path path_;
};

class Statement {
public:
    Statement(Statement&& other) noexcept;
    Statement& operator=(Statement&& other) noexcept;
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;
    ~Statement();

    // Parameters are 1-based, as in SQLite.
    Statement& bind(int index, std::int64_t value);
    Statement& bind(int index, int value) { return bind(index, static_cast<std::int64_t>(value)); }
    Statement& bind(int index, double value);
    Statement& bind(int index, std::string_view text);
    Statement& bind(int index, const char* text) { return bind(index, std::string_view(text)); }
    Statement& bind(int index, const std::string& text) { return bind(index, std::string_view(text)); }
    Statement& bindBlob(int index, std::span<const std::uint8_t> blob);
    Statement& bindNull(int index);
    template <typename T>
    Statement& bind(int index, const std::optional<T>& value) {
        return value ? bind(index, *value) : bindNull(index);
    }

    // Binds each argument to parameters 1, 2, ...
    template <typename... Args>
    Statement& bindAll(const Args&... args) {
        int index = 0;
        (bind(++index, args), ...);
        return *this;
    }

    // Advances to the next row; false when done.
    bool step();
    // Steps to completion, for statements that return no rows.
    void run();
    void reset();

    bool isNull(int column) const;
    std::int64_t getInt(int column) const;
    double getDouble(int column) const;
    std::string getText(int column) const;
    Bytes getBlob(int column) const;
    std::optional<std::int64_t> getOptionalInt(int column) const;
    std::optional<double> getOptionalDouble(int column) const;
    std::optional<std::string> getOptionalText(int column) const;

private:
    friend class Connection;
    Statement(Connection& connection, sqlite3_stmt* stmt) : connection_(&connection), stmt_(stmt) {}
    void check(int code, std::string_view what) const;
    Connection* connection_;
    sqlite3_stmt* stmt_;
};

// Nests: inside another transaction it becomes a savepoint, so a store method that needs a
// transaction can be called from one that already holds one.
class Transaction {
public:
    enum class Mode { Deferred, Immediate };
    // Immediate by default: takes the write lock at the start, so a busy database waits on the
    // busy timeout at BEGIN instead of failing half-way through.
    explicit Transaction(Connection& connection, Mode mode = Mode::Immediate);
    ~Transaction();
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;

    void commit();

private:
    Connection& connection_;
    bool nested_ = false;
    bool done_ = false;
};

}  // namespace lumen::storage
