#include "vision/embedding_cache.h"

namespace lumen::vision {

std::shared_ptr<const std::vector<float>> EmbeddingCache::find(const std::string& modelKey, const std::string& imageKey) {
    std::lock_guard lock(mutex_);
    const auto it = entries_.find({modelKey, imageKey});
    if (it == entries_.end()) {
        ++misses_;
        return nullptr;
    }
    ++hits_;
    order_.splice(order_.begin(), order_, it->second.order);
    return it->second.rows;
}

void EmbeddingCache::insert(const std::string& modelKey, const std::string& imageKey, std::vector<float> rows) {
    std::lock_guard lock(mutex_);
    const Key key{modelKey, imageKey};
    if (const auto it = entries_.find(key); it != entries_.end()) {
        bytes_ -= it->second.rows->size() * sizeof(float);
        order_.erase(it->second.order);
        entries_.erase(it);
    }
    const std::size_t size = rows.size() * sizeof(float);
    order_.push_front(key);
    entries_.emplace(key, Entry{std::make_shared<const std::vector<float>>(std::move(rows)), order_.begin()});
    bytes_ += size;
    // Over budget: drop the least recently used, but never the entry just added.
    while (bytes_ > maxBytes_ && order_.size() > 1) {
        const auto victim = entries_.find(order_.back());
        bytes_ -= victim->second.rows->size() * sizeof(float);
        entries_.erase(victim);
        order_.pop_back();
    }
}

std::uint64_t EmbeddingCache::hits() const {
    std::lock_guard lock(mutex_);
    return hits_;
}

std::uint64_t EmbeddingCache::misses() const {
    std::lock_guard lock(mutex_);
    return misses_;
}

std::size_t EmbeddingCache::bytes() const {
    std::lock_guard lock(mutex_);
    return bytes_;
}

}  // namespace lumen::vision
