#include "inference/formats/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <mutex>
#include <utility>

#include "inference/formats/format_error.h"

namespace lumen::inference {
namespace {

// The SIGBUS guard's table of mappings: plain atomics, read by the signal handler.
struct Region {
    std::atomic<std::uintptr_t> base{0};
    std::atomic<std::size_t> size{0};
    std::atomic<bool> faulted{false};
};
constexpr int kRegions = 256;
Region regions[kRegions];
struct sigaction previousBusAction {};

void onBusError(int signal, siginfo_t* info, void* context) {
    const auto address = reinterpret_cast<std::uintptr_t>(info->si_addr);
    for (Region& r : regions) {
        const std::uintptr_t base = r.base.load(std::memory_order_acquire);
        const std::size_t size = r.size.load(std::memory_order_acquire);
        if (base == 0 || address < base || address >= base + size) continue;
        // Zero pages over the whole mapping (the file is no longer what was mapped): the read
        // retries and goes on; the owner sees `faulted` and discards the result.
        if (::mmap(reinterpret_cast<void*>(base), size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED) {
            r.faulted.store(true, std::memory_order_release);
            return;
        }
        break;
    }
    // Not ours (or the remap failed): what would have happened without us.
    if (previousBusAction.sa_flags & SA_SIGINFO) {
        if (previousBusAction.sa_sigaction) return previousBusAction.sa_sigaction(signal, info, context);
    } else if (previousBusAction.sa_handler != SIG_DFL && previousBusAction.sa_handler != SIG_IGN && previousBusAction.sa_handler) {
        return previousBusAction.sa_handler(signal);
    }
    ::signal(SIGBUS, SIG_DFL);
    ::raise(SIGBUS);
}

int registerRegion(const std::uint8_t* data, std::size_t size) {
    static std::once_flag installed;
    std::call_once(installed, [] {
        struct sigaction action {};
        action.sa_sigaction = onBusError;
        action.sa_flags = SA_SIGINFO | SA_NODEFER;
        sigemptyset(&action.sa_mask);
        ::sigaction(SIGBUS, &action, &previousBusAction);
    });
    static std::mutex lock;  // (registering is not done by the handler)
    std::lock_guard guard(lock);
    for (int i = 0; i < kRegions; ++i)
        if (regions[i].base.load() == 0) {
            regions[i].faulted.store(false);
            regions[i].size.store(size, std::memory_order_release);
            regions[i].base.store(reinterpret_cast<std::uintptr_t>(data), std::memory_order_release);
            return i;
        }
    return -1;  // (more mappings than slots: this one goes unguarded)
}

void unregisterRegion(int i) {
    if (i < 0) return;
    regions[i].base.store(0, std::memory_order_release);
    regions[i].size.store(0, std::memory_order_release);
}

std::int64_t modificationNs(const struct stat& st) { return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec; }

}  // namespace

MappedFile::MappedFile(const std::filesystem::path& path) : path_(path) {
    // Non-blocking: opening a FIFO for reading would otherwise wait for a writer.
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) throw FormatError(path.string() + ": cannot open: " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int err = errno;
        ::close(fd);
        throw FormatError(path.string() + ": cannot read its size: " + std::strerror(err));
    }
    if (S_ISDIR(st.st_mode)) {
        ::close(fd);
        throw FormatError(path.string() + ": is a folder, not a file");
    }
    if (!S_ISREG(st.st_mode)) {  // a FIFO, a device (/dev/zero), a socket: no size to map
        ::close(fd);
        throw FormatError(path.string() + ": is not a regular file");
    }
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ > 0) {
        void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            const int err = errno;
            ::close(fd);
            throw FormatError(path.string() + ": cannot map the file into memory: " + std::strerror(err));
        }
        data_ = static_cast<const std::uint8_t*>(p);
        region_ = registerRegion(data_, size_);
    }
    fd_ = fd;  // kept to tell later whether the file changed under the mapping
    mtimeNs_ = modificationNs(st);
}

bool MappedFile::changedOnDisk() const {
    if (region_ >= 0 && regions[region_].faulted.load(std::memory_order_acquire)) return true;
    struct stat st {};
    if (fd_ < 0 || ::fstat(fd_, &st) != 0) return false;
    return static_cast<std::size_t>(st.st_size) != size_ || modificationNs(st) != mtimeNs_;
}

void MappedFile::release() {
    unregisterRegion(std::exchange(region_, -1));
    if (data_) ::munmap(const_cast<std::uint8_t*>(data_), size_);
    if (fd_ >= 0) ::close(fd_);
    data_ = nullptr;
    fd_ = -1;
}

MappedFile::~MappedFile() { release(); }

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      fd_(std::exchange(other.fd_, -1)),
      mtimeNs_(other.mtimeNs_),
      region_(std::exchange(other.region_, -1)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
    if (this != &other) {
        release();
        path_ = std::move(other.path_);
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
        fd_ = std::exchange(other.fd_, -1);
        mtimeNs_ = other.mtimeNs_;
        region_ = std::exchange(other.region_, -1);
    }
    return *this;
}

}  // namespace lumen::inference
