#include "auth/base64url.h"

#include <sodium.h>

#include <array>
#include <cstdint>
#include <cstring>

namespace im::internal {
namespace {

constexpr int kVariant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;

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
  // A table decoder (libsodium's takes about ten times the instructions, on every login). The
  // same strictness as libsodium with a null `b64_end`, which a test checks byte for byte: the
  // base64url alphabet only, no length of 4n+1, no non-zero trailing bits.
  static const std::array<int8_t, 256> values = [] {
    std::array<int8_t, 256> v;
    v.fill(-1);
    const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (int i = 0; i < 64; ++i) {
      v[static_cast<unsigned char>(alphabet[i])] = static_cast<int8_t>(i);
    }
    return v;
  }();
  if (text.size() % 4 == 1) return false;
  std::string bin;
  bin.resize(text.size() / 4 * 3 + (text.size() % 4 == 0 ? 0 : text.size() % 4 - 1));
  uint32_t acc = 0;
  int bits = 0;
  size_t n = 0;
  for (char c : text) {
    const int8_t v = values[static_cast<unsigned char>(c)];
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bin[n++] = static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  // What is left are the trailing bits of a partial group: they must be zero.
  if ((acc & ((1u << bits) - 1)) != 0) return false;
  *out = std::move(bin);
  return true;
}

}  // namespace im::internal
