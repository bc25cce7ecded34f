#include "store/redis/redis_keys.h"

#include <sodium.h>

#include <vector>

namespace im::internal {
namespace {

std::string TaggedPrefix(char kind, std::string_view tenant, std::string_view id) {
  std::string out = "im:{";
  out += kind;
  out += ':';
  out += EscapeKeyPart(tenant);
  out += '/';
  out += EscapeKeyPart(id);
  out += "}:";
  return out;
}

}  // namespace

std::string EscapeKeyPart(std::string_view part) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(part.size());
  for (char c : part) {
    if (c == '%' || c == '/' || c == '{' || c == '}') {
      out += '%';
      out += kHex[static_cast<unsigned char>(c) >> 4];
      out += kHex[static_cast<unsigned char>(c) & 0xF];
    } else {
      out += c;
    }
  }
  return out;
}

std::string UserKeyPrefix(const UserKey& user) {
  return TaggedPrefix('u', user.tenant, user.user);
}

std::string GroupKeyPrefix(const GroupKey& group) {
  return TaggedPrefix('g', group.tenant, group.gid);
}

std::string RandomHexToken(size_t bytes) {
  std::vector<unsigned char> raw(bytes);
  randombytes_buf(raw.data(), raw.size());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * bytes);
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 0xF];
  }
  return out;
}

}  // namespace im::internal
