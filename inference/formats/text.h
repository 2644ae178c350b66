#pragma once

#include <string_view>

namespace lumen::inference {

// Whether `s` is well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool isValidUtf8(std::string_view s);

}  // namespace lumen::inference
