// Base64url (RFC 4648 section 5) without padding, as JWTs spell their segments.
//
// Thread-safety: pure functions, safe from any thread.
#ifndef IM_AUTH_BASE64URL_H_
#define IM_AUTH_BASE64URL_H_

#include <string>
#include <string_view>

namespace im::internal {

// The unpadded base64url text of `bin`.
std::string Base64UrlEncode(std::string_view bin);

// Decodes `text` into `*out`. False (and `*out` untouched) unless `text` is canonical unpadded
// base64url: no '=', '+', '/', whitespace, or non-zero trailing bits. Strictness gives every
// value one spelling, so a signature cannot be re-encoded into a second valid token.
bool Base64UrlDecode(std::string_view text, std::string* out);

}  // namespace im::internal

#endif  // IM_AUTH_BASE64URL_H_
