#pragma once

#include <chrono>
#include <cstdint>

namespace lumen::storage {

// Wall-clock time as stored in the database: milliseconds since the Unix epoch, UTC.
inline std::int64_t nowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace lumen::storage
