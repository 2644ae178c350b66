#pragma once
// A whole file mapped read-only into memory. Weights are read in place from the mapping and
// never copied; the pages are loaded by the OS as they are touched.

#include <cstdint>
#include <filesystem>
#include <span>

namespace lumen::inference {

class MappedFile {
public:
    // Throws FormatError when the file cannot be opened or mapped.
    explicit MappedFile(const std::filesystem::path& path);
    ~MappedFile();
    MappedFile(MappedFile&& other) noexcept;
    MappedFile& operator=(MappedFile&& other) noexcept;
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    std::span<const std::uint8_t> bytes() const { return {data_, size_}; }
    std::size_t size() const { return size_; }
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
    const std::uint8_t* data_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace lumen::inference
