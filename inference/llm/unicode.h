#pragma once
// UTF-8 helpers for the tokenizers.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lumen::inference {

// Length of the UTF-8 sequence starting with byte `lead` (1 for an invalid lead byte).
int utf8SequenceLength(std::uint8_t lead);
// Appends the UTF-8 encoding of code point `cp`.
void appendUtf8(std::string& out, std::uint32_t cp);

// GPT-2's byte-level mapping: every byte as a printable code point (UTF-8 encoded), and back.
const std::string& byteToUnicode(std::uint8_t byte);
// The byte a mapped code point stands for; nullopt when `cp` is not one of the 256.
std::optional<std::uint8_t> unicodeToByte(std::uint32_t cp);

// Decodes one code point at `s[i]`, advancing i; invalid bytes decode as themselves (0x80-0xFF
// mapped to U+FFFD would lose information, so callers that need bytes keep them).
std::uint32_t nextCodePoint(std::string_view s, std::size_t& i);

}  // namespace lumen::inference
