#pragma once
// Lumen's database schema, as a list of migrations. Migration N takes a database at
// user_version N-1 to N. A released migration never changes; a new schema version appends one
// (and commits a database fixture made by the previous version, see tests/storage/fixtures/).

#include <cstdint>
#include <span>
#include <string_view>

namespace lumen::storage {

// PRAGMA application_id of every Lumen database: "LUMN".
inline constexpr std::int32_t kApplicationId = 0x4C554D4E;

struct Migration {
    int version;
    std::string_view description;
    std::string_view sql;
};

// The migrations of this build, in order; the last one's version is the current schema.
std::span<const Migration> schemaMigrations();
int currentSchemaVersion();

}  // namespace lumen::storage
