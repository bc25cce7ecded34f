// UTF-8 decoding shared by id validation and the content filter.
#ifndef IM_BASE_UTF8_H_
#define IM_BASE_UTF8_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace im::internal {

// Decodes the code point at s[i] (i < s.size()): returns its length in bytes, or 0 when the
// bytes there are not well-formed UTF-8 (overlong, surrogate, above U+10FFFF, truncated).
size_t DecodeUtf8(std::string_view s, size_t i, uint32_t* cp);

}  // namespace im::internal

#endif  // IM_BASE_UTF8_H_
