#include "inference/formats/safetensors_writer.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "inference/formats/safetensors.h"

namespace lumen::inference {

void writeSafetensors(const std::filesystem::path& file, const std::vector<SafetensorsEntry>& entries) {
    nlohmann::json header = nlohmann::json::object();
    std::uint64_t offset = 0;
    for (const auto& e : entries) {
        std::int64_t elements = 1;
        for (std::int64_t d : e.shape) elements *= d;
        const int size = safetensorsElementSize(e.dtype);
        if (size == 0 || static_cast<std::uint64_t>(elements) * static_cast<std::uint64_t>(size) != e.bytes.size())
            throw std::runtime_error(e.name + ": " + std::to_string(e.bytes.size()) + " bytes do not hold its shape as " + e.dtype);
        header[e.name] = {{"dtype", e.dtype}, {"shape", e.shape}, {"data_offsets", {offset, offset + e.bytes.size()}}};
        offset += e.bytes.size();
    }
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');  // the data starts 8-byte aligned
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error(file.string() + ": cannot be written");
    const std::uint64_t length = text.size();
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>((length >> (8 * i)) & 0xFF));
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& e : entries) out.write(reinterpret_cast<const char*>(e.bytes.data()), static_cast<std::streamsize>(e.bytes.size()));
    if (!out) throw std::runtime_error(file.string() + ": writing failed (disk full?)");
}

}  // namespace lumen::inference
