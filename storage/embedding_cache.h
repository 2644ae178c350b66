#pragma once
// Cache of encoder outputs: an image's embedding keyed by its SHA-256, a text's by the text
// itself, each per model id (encoder name + weights hash), so nothing is encoded twice.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "storage/database.h"

namespace lumen::storage {

enum class EmbeddingKind { Image, Text };

class EmbeddingCache {
public:
    explicit EmbeddingCache(Database& db) : c_(db.connection()) {}

    void put(EmbeddingKind kind, std::string_view key, std::string_view modelId,
             std::span<const float> vector);
    // nullopt when absent. A stored vector whose size disagrees with its dimension is damaged:
    // it is dropped and reported as absent, so the caller recomputes it.
    std::optional<std::vector<float>> get(EmbeddingKind kind, std::string_view key,
                                          std::string_view modelId);
    std::int64_t count();
    // Forgets every vector of one model (after its weights change), or all when modelId is empty.
    void clear(std::string_view modelId = {});

private:
    Connection& c_;
};

}  // namespace lumen::storage
