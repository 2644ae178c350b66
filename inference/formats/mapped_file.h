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
    // The file was truncated or written over in place since it was mapped (another program
    // copying a new model over it): its size or modification time changed, or a read past its
    // new end was caught (below). Replacing it by a rename (as Lumen's writers do) leaves the
    // mapping intact and is not a change. One fstat: cheap enough to ask before every step.
    bool changedOnDisk() const;

private:
    void release();

    std::filesystem::path path_;
    const std::uint8_t* data_ = nullptr;
    std::size_t size_ = 0;
    int fd_ = -1;
    std::int64_t mtimeNs_ = 0;
    int region_ = -1;  // the slot of the SIGBUS guard's table
};

// Reads from a mapped file that was truncated under it raise SIGBUS, which would end the app.
// MappedFile registers each mapping with a SIGBUS handler (installed on the first mapping): a
// fault inside one puts zero pages in place of the whole mapping, marks it changed and lets the
// read go on, so the computation finishes (with garbage) and the caller, asking changedOnDisk(),
// discards it. Faults elsewhere keep the default action.

}  // namespace lumen::inference
