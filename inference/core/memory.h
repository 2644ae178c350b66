#pragma once
// How much memory a model needs, estimated before loading, and how much the machine has.

#include <cstdint>
#include <optional>
#include <string>

namespace lumen::inference {

struct MemoryEstimate {
    std::uint64_t weights = 0;  // bytes mapped from the file
    std::uint64_t kvCache = 0;
    std::uint64_t scratch = 0;  // activations and logits
    std::uint64_t total() const { return weights + kvCache + scratch; }
};

// MemAvailable from /proc/meminfo (bytes); nullopt where it cannot be read.
std::optional<std::uint64_t> availableMemory();
// "1.2 GB"
std::string formatBytes(std::uint64_t bytes);

}  // namespace lumen::inference
