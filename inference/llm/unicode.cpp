#include "inference/llm/unicode.h"

#include <array>

namespace lumen::inference {
namespace {

struct ByteMap {
    std::array<std::string, 256> toUnicode;
    std::array<std::int32_t, 512> fromUnicode{};  // code point -> byte, -1 when none (all mapped cps < 512)
    ByteMap() {
        fromUnicode.fill(-1);
        int extra = 0;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
            const std::uint32_t cp = printable ? static_cast<std::uint32_t>(b) : static_cast<std::uint32_t>(256 + extra++);
            appendUtf8(toUnicode[static_cast<std::size_t>(b)], cp);
            fromUnicode[cp] = b;
        }
    }
};

const ByteMap& byteMap() {
    static const ByteMap map;
    return map;
}

}  // namespace

int utf8SequenceLength(std::uint8_t lead) {
    if (lead < 0x80) return 1;
    if ((lead & 0xE0) == 0xC0) return 2;
    if ((lead & 0xF0) == 0xE0) return 3;
    if ((lead & 0xF8) == 0xF0) return 4;
    return 1;
}

void appendUtf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

const std::string& byteToUnicode(std::uint8_t byte) { return byteMap().toUnicode[byte]; }

std::optional<std::uint8_t> unicodeToByte(std::uint32_t cp) {
    if (cp >= 512) return std::nullopt;
    const std::int32_t b = byteMap().fromUnicode[cp];
    if (b < 0) return std::nullopt;
    return static_cast<std::uint8_t>(b);
}

std::uint32_t nextCodePoint(std::string_view s, std::size_t& i) {
    const auto lead = static_cast<std::uint8_t>(s[i]);
    const int n = utf8SequenceLength(lead);
    if (n == 1 || i + static_cast<std::size_t>(n) > s.size()) {
        ++i;
        return lead;
    }
    std::uint32_t cp = lead & (0xFF >> (n + 1));
    for (int k = 1; k < n; ++k) {
        const auto c = static_cast<std::uint8_t>(s[i + static_cast<std::size_t>(k)]);
        if ((c & 0xC0) != 0x80) {
            ++i;
            return lead;
        }
        cp = (cp << 6) | (c & 0x3F);
    }
    i += static_cast<std::size_t>(n);
    return cp;
}

}  // namespace lumen::inference
