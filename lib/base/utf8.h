// UTF-8 decoding shared by id validation, name checks and the content filter.
#ifndef IM_BASE_UTF8_H_
#define IM_BASE_UTF8_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace im::internal {

// Decodes the code point at s[i] (i < s.size()): returns its length in bytes, or 0 when the
// bytes there are not well-formed UTF-8 (overlong, surrogate, above U+10FFFF, truncated).
size_t DecodeUtf8(std::string_view s, size_t i, uint32_t* cp);

// True when `name` holds a control character (C0, DEL, C1). Precondition: valid UTF-8, so a
// 0xC2 byte always starts a two-byte sequence and 0xC2 0x80..0x9F is exactly U+0080..U+009F.
bool HasControlCharacter(std::string_view name);

}  // namespace im::internal

#endif  // IM_BASE_UTF8_H_
