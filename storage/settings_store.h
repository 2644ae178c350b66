#pragma once
// Application settings as text key/value pairs.

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "storage/database.h"

namespace lumen::storage {

class SettingsStore {
public:
    explicit SettingsStore(Database& db) : c_(db.connection()) {}

    std::optional<std::string> get(std::string_view key);
    std::string value(std::string_view key, std::string_view fallback);
    void set(std::string_view key, std::string_view value);
    void remove(std::string_view key);
    std::map<std::string, std::string> all();

private:
    Connection& c_;
};

}  // namespace lumen::storage
