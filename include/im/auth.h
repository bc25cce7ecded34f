// Tokens: HS256 JWTs with keys per tenant. Claims: `sub` (user), `ten` (tenant, "default" when
// absent), `exp` (required), `iat`, optional `nbf`. Header: `alg` HS256, optional `typ` JWT,
// optional `kid` (which of the tenant's keys signed it; key rotation).
//
// Thread-safety: KeyStore and TokenVerifier implementations are safe from any thread.
#ifndef IM_AUTH_H_
#define IM_AUTH_H_

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "im/result.h"
#include "im/types.h"

namespace im {

// One secret key of a tenant. `kid` names it in the header of the tokens it signs; "" = a key
// without a name (the single key of a tenant that does not rotate).
struct SigningKey {
  std::string kid;
  std::string key;  // raw bytes
};

// A tenant has at most this many keys at once (the current one and those being retired).
inline constexpr size_t kMaxKeysPerTenant = 8;

// The secret signing keys of each tenant.
class KeyStore {
 public:
  virtual ~KeyStore() = default;
  // The raw bytes of the key `tenant`'s new tokens are signed with; 401 unknown_tenant when it
  // has none.
  virtual Result<std::string> KeyFor(std::string_view tenant) = 0;
  // Key rotation. Every key a token of `tenant` may be signed with, the signing key first (at
  // most kMaxKeysPerTenant); 401 unknown_tenant when none. The default is KeyFor's key, unnamed.
  virtual Result<std::vector<SigningKey>> KeysFor(std::string_view tenant);
};

// A fixed map tenant -> raw key bytes (one unnamed key each).
std::shared_ptr<KeyStore> NewStaticKeyStore(std::map<std::string, std::string> keys);
// A fixed map tenant -> keys, the signing key first: a token names its key with `kid`, and a
// token without `kid` is checked against each key of its tenant. Tenants with no key are left
// out; more than kMaxKeysPerTenant keys, or two with one kid, is 400.
Result<std::shared_ptr<KeyStore>> NewRotatingKeyStore(
    std::map<std::string, std::vector<SigningKey>> keys);

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
  // a `kid` the tenant has no key of, wrong algorithm, bad claims) or `token_expired`.
  virtual Result<TokenClaims> Verify(std::string_view token) const = 0;
};

struct Hs256Options {
  int64_t leeway_s = 30;   // clock skew tolerated on exp and nbf
  Clock* clock = nullptr;  // nullptr = SystemClock()
};

// Verifies HS256 JWTs against `keys`; every other algorithm (including "none") is refused.
std::unique_ptr<TokenVerifier> NewHs256Verifier(std::shared_ptr<KeyStore> keys,
                                                Hs256Options options = {});

// Signs an HS256 JWT for `user` valid for `ttl_s` seconds from `now_ms`, with the tenant's
// signing key (the first of KeysFor); its `kid`, when it has one, goes into the header.
Result<std::string> SignHs256Token(KeyStore& keys, const UserKey& user, int64_t ttl_s,
                                   TimestampMs now_ms);

}  // namespace im

#endif  // IM_AUTH_H_
