#pragma once
// SHA-256 (FIPS 180-4), for content-addressing images and the embedding cache's keys.

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace lumen::storage {

class Sha256 {
public:
    Sha256();
    void update(std::span<const std::uint8_t> data);
    void update(std::string_view text);
    std::array<std::uint8_t, 32> finish();
    // finish(), as lowercase hex.
    std::string finishHex();

private:
    void compress(const std::uint8_t* block);
    std::array<std::uint32_t, 8> state_;
    std::array<std::uint8_t, 64> buffer_{};
    std::size_t buffered_ = 0;
    std::uint64_t length_ = 0;
};

// Lowercase hex digest of `data`.
std::string sha256Hex(std::span<const std::uint8_t> data);
std::string sha256Hex(std::string_view text);

}  // namespace lumen::storage
