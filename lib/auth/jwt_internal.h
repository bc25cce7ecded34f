// Internals of the HS256 token code, shared by lib/auth and its tests.
//
// Thread-safety: the functions are safe from any thread; ExistingKeyLookup implementations
// must be too.
#ifndef IM_AUTH_JWT_INTERNAL_H_
#define IM_AUTH_JWT_INTERNAL_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <utility>
#include <vector>

#include "im/auth.h"
#include "im/result.h"

namespace im::internal {

// Longer tokens are refused before any decoding, which bounds the work an unauthenticated
// client can cause.
inline constexpr size_t kMaxTokenBytes = 4096;
// 9999-12-31T23:59:59Z. Bounding exp/iat/nbf keeps `seconds * 1000` and `exp + leeway` far from
// int64 overflow.
inline constexpr int64_t kMaxClaimSeconds = 253402300799;

// Runs sodium_init() once per process; false when libsodium cannot start (then randombytes_buf
// must not be used).
bool InitSodium();

// The 32-byte HMAC-SHA256 of `data` under `key` (any key length).
std::string HmacSha256(std::string_view key, std::string_view data);

// "<header>.<claims>.<signature>" in base64url, HS256-signed with `key`, for the given JSON
// texts taken verbatim. SignHs256Token builds on it; tests use it to craft tokens that
// SignHs256Token would never write.
std::string SignJwt(std::string_view header_json, std::string_view claims_json,
                    std::string_view key);

// A key lookup that never creates a key. Key stores that create keys on demand implement it
// beside KeyStore, and the verifier prefers it: a key created now cannot verify a token signed
// before, and an unauthenticated token must not make the server write files.
class ExistingKeyLookup {
 public:
  virtual ~ExistingKeyLookup() = default;
  // As KeyStore::KeyFor, but a tenant without a key is 401 unknown_tenant even when the store
  // would create one.
  virtual Result<std::string> ExistingKeyFor(std::string_view tenant) = 0;
  // As KeyStore::KeysFor, without creating: every key of the tenant, the signing key first. The
  // default is ExistingKeyFor's key, unnamed.
  virtual Result<std::vector<SigningKey>> ExistingKeysFor(std::string_view tenant) {
    Result<std::string> key = ExistingKeyFor(tenant);
    if (!key.ok()) return key.status();
    return std::vector<SigningKey>{{"", std::move(*key)}};
  }
};

}  // namespace im::internal

#endif  // IM_AUTH_JWT_INTERNAL_H_
