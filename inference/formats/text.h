#pragma once

#include <cstddef>
#include <string_view>

namespace lumen::inference {

// Whether `s` is well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool isValidUtf8(std::string_view s);

// How deeply JSON text nests its arrays and objects (brackets inside strings do not count). JSON
// readers refuse text deeper than kMaxJsonDepth before parsing: every later walk over the
// document (conversion, printing, freeing) recurses once per level.
std::size_t jsonNestingDepth(std::string_view text);
inline constexpr std::size_t kMaxJsonDepth = 256;

}  // namespace lumen::inference
