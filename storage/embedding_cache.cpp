#include "storage/embedding_cache.h"

#include <bit>
#include <cstring>

#include "storage/clock.h"

namespace lumen::storage {
namespace {

static_assert(std::endian::native == std::endian::little,
              "vectors are stored as little-endian float32; add byte swapping for this platform");

std::string_view kindName(EmbeddingKind kind) { return kind == EmbeddingKind::Image ? "image" : "text"; }

}  // namespace

void EmbeddingCache::put(EmbeddingKind kind, std::string_view key, std::string_view modelId,
                         std::span<const float> vector) {
    if (vector.empty()) throw Error("cannot cache an empty embedding");
    Statement s = c_.prepare(
        "INSERT INTO embeddings(kind, key, model_id, dim, vector, created_at) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(kind, key, model_id) DO UPDATE SET dim = excluded.dim, vector = excluded.vector, "
        "created_at = excluded.created_at");
    s.bindAll(kindName(kind), key, modelId, static_cast<std::int64_t>(vector.size()));
    s.bindBlob(5, std::span(reinterpret_cast<const std::uint8_t*>(vector.data()), vector.size_bytes()));
    s.bind(6, nowMs());
    s.run();
}

std::optional<std::vector<float>> EmbeddingCache::get(EmbeddingKind kind, std::string_view key,
                                                      std::string_view modelId) {
    Statement s = c_.prepare("SELECT dim, vector FROM embeddings WHERE kind = ? AND key = ? AND model_id = ?");
    s.bindAll(kindName(kind), key, modelId);
    if (!s.step()) return std::nullopt;
    const std::int64_t dim = s.getInt(0);
    const Bytes blob = s.getBlob(1);
    if (dim <= 0 || blob.size() != static_cast<std::uint64_t>(dim) * sizeof(float)) {
        c_.prepare("DELETE FROM embeddings WHERE kind = ? AND key = ? AND model_id = ?")
            .bindAll(kindName(kind), key, modelId)
            .run();
        return std::nullopt;
    }
    std::vector<float> vector(static_cast<std::size_t>(dim));
    std::memcpy(vector.data(), blob.data(), blob.size());
    return vector;
}

std::int64_t EmbeddingCache::count() {
    Statement s = c_.prepare("SELECT count(*) FROM embeddings");
    s.step();
    return s.getInt(0);
}

void EmbeddingCache::clear(std::string_view modelId) {
    if (modelId.empty())
        c_.exec("DELETE FROM embeddings");
    else
        c_.prepare("DELETE FROM embeddings WHERE model_id = ?").bind(1, modelId).run();
}

}  // namespace lumen::storage
