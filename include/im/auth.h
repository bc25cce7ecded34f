// Tokens: HS256 JWTs with a key per tenant. Claims: `sub` (user), `ten` (tenant, "default" when
// absent), `exp` (required), `iat`, optional `nbf`.
//
// Thread-safety: KeyStore and TokenVerifier implementations are safe from any thread.
#ifndef IM_AUTH_H_
#define IM_AUTH_H_

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "im/result.h"
#include "im/types.h"

namespace im {

// The secret signing key of each tenant.
class KeyStore {
 public:
  virtual ~KeyStore() = default;
  // The raw key bytes of `tenant`; 401 unknown_tenant when it has none.
  virtual Result<std::string> KeyFor(std::string_view tenant) = 0;
};

// A fixed map tenant -> raw key bytes.
std::shared_ptr<KeyStore> NewStaticKeyStore(std::map<std::string, std::string> keys);

// Keys kept as files `<dir>/<tenant>.key` (64 hex characters, 32 random bytes). With
// `create_missing`, a tenant without a key gets a fresh random one, written atomically, so a
// server and the `imd token` command on the same directory agree. The directory is created
// when missing.
Result<std::shared_ptr<KeyStore>> OpenDirKeyStore(const std::string& dir, bool create_missing);

struct TokenClaims {
  UserKey user;
  TimestampMs expires_ms = 0;
  TimestampMs issued_ms = 0;
};

class TokenVerifier {
 public:
  virtual ~TokenVerifier() = default;
  // The claims of a valid token. 401 with error `invalid_token` (malformed, bad signature,
  // wrong algorithm, bad claims) or `token_expired`.
  virtual Result<TokenClaims> Verify(std::string_view token) const = 0;
};

struct Hs256Options {
  int64_t leeway_s = 30;   // clock skew tolerated on exp and nbf
  Clock* clock = nullptr;  // nullptr = SystemClock()
};

// Verifies HS256 JWTs against `keys`; every other algorithm (including "none") is refused.
std::unique_ptr<TokenVerifier> NewHs256Verifier(std::shared_ptr<KeyStore> keys,
                                                Hs256Options options = {});

// Signs an HS256 JWT for `user` valid for `ttl_s` seconds from `now_ms`.
Result<std::string> SignHs256Token(KeyStore& keys, const UserKey& user, int64_t ttl_s,
                                   TimestampMs now_ms);

}  // namespace im

#endif  // IM_AUTH_H_
