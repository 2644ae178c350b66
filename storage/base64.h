#pragma once
// Standard base64 (RFC 4648, with padding), for images inside exported chats.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lumen::storage {

std::string base64Encode(std::span<const std::uint8_t> bytes);
// nullopt when `text` is not valid padded base64.
std::optional<std::vector<std::uint8_t>> base64Decode(std::string_view text);

}  // namespace lumen::storage
