#pragma once
// Writing safetensors files (the layout is in safetensors.h): for tools and tests that make
// models, such as the vision benchmarks' random-weight Hugging Face folders.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace lumen::inference {

struct SafetensorsEntry {
    std::string name;
    std::string dtype;                // "F32", "F16", "BF16"
    std::vector<std::int64_t> shape;  // PyTorch order
    std::vector<std::uint8_t> bytes;  // little-endian, the product of shape x element size
};

// Throws std::runtime_error when the file cannot be written or an entry's size is inconsistent.
void writeSafetensors(const std::filesystem::path& file, const std::vector<SafetensorsEntry>& entries);

}  // namespace lumen::inference
