// UTF-8 checks for strings the formats store as UTF-8 (class names, paths in messages).
#pragma once

#include <string>
#include <string_view>

namespace metasemi::core {

/// True when `s` is well-formed UTF-8 (no overlong forms, surrogates or code points past
/// U+10FFFF).
bool isValidUtf8(std::string_view s);

/// `s` for a message: valid UTF-8 passes through; otherwise every byte outside printable
/// ASCII is written as \xNN.
std::string printable(std::string_view s);

}  // namespace metasemi::core
