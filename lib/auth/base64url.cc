#include "auth/base64url.h"

#include <sodium.h>

#include <cstring>

namespace im::internal {
namespace {

constexpr int kVariant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;

bool IsAlphabet(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

}  // namespace

std::string Base64UrlEncode(std::string_view bin) {
  // The encoded length plus libsodium's terminating NUL.
  std::string out(sodium_base64_encoded_len(bin.size(), kVariant), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bin.data()),
                    bin.size(), kVariant);
  out.resize(std::strlen(out.c_str()));
  return out;
}

bool Base64UrlDecode(std::string_view text, std::string* out) {
  // libsodium 1.0.18 decodes every byte from 0x80 up as '_' (its character test sees a negative
  // char), so it cannot be the only check.
  for (char c : text) {
    if (!IsAlphabet(c)) return false;
  }
  std::string bin(text.size() / 4 * 3 + 3, '\0');
  size_t bin_len = 0;
  // A null `b64_end` makes libsodium fail on any character it did not consume, and it rejects
  // non-zero trailing bits and impossible lengths (4n+1) by itself.
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(bin.data()), bin.size(), text.data(),
                        text.size(), /*ignore=*/nullptr, &bin_len, /*b64_end=*/nullptr,
                        kVariant) != 0) {
    return false;
  }
  bin.resize(bin_len);
  *out = std::move(bin);
  return true;
}

}  // namespace im::internal
