#pragma once
// Image embeddings kept in memory by (model, image): asking a second question about the same
// image, or classifying it again, does not encode it again. Keys are the caller's: the model's
// file identity and the image bytes' SHA-256. The least recently used entries go first when the
// cache is over its byte budget. Thread-safe.

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace lumen::vision {

class EmbeddingCache {
public:
    explicit EmbeddingCache(std::size_t maxBytes = std::size_t{512} << 20) : maxBytes_(maxBytes) {}

    std::shared_ptr<const std::vector<float>> find(const std::string& modelKey, const std::string& imageKey);
    void insert(const std::string& modelKey, const std::string& imageKey, std::vector<float> rows);

    std::uint64_t hits() const;
    std::uint64_t misses() const;
    std::size_t bytes() const;

private:
    using Key = std::pair<std::string, std::string>;
    struct Entry {
        std::shared_ptr<const std::vector<float>> rows;
        std::list<Key>::iterator order;
    };
    mutable std::mutex mutex_;
    std::size_t maxBytes_, bytes_ = 0;
    std::uint64_t hits_ = 0, misses_ = 0;
    std::list<Key> order_;  // most recent first
    std::map<Key, Entry> entries_;
};

}  // namespace lumen::vision
