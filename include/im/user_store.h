// UserStore: accounts of the web service (create, get, verify password).
//
// Thread-safety: implementations are safe from any thread. Calls may block on storage.
#ifndef IM_USER_STORE_H_
#define IM_USER_STORE_H_

#include <string>
#include <string_view>

#include "im/result.h"
#include "im/types.h"

namespace im {

struct UserRecord {
  UserKey key;
  std::string display_name;
  TimestampMs created_ms = 0;
};

// Argon2id cost. The defaults are libsodium's "interactive" limits (about 64 MiB and tens of
// milliseconds per hash); tests may lower them to the minimum.
struct PasswordHashOptions {
  unsigned long long ops_limit = 2;        // crypto_pwhash_OPSLIMIT_INTERACTIVE
  size_t mem_limit = 64ull * 1024 * 1024;  // crypto_pwhash_MEMLIMIT_INTERACTIVE
  size_t max_password_bytes = 1024;        // longer: 400
  size_t min_password_bytes = 8;           // shorter: 400
  size_t max_display_name_bytes = 128;     // longer: 400
};

class UserStore {
 public:
  virtual ~UserStore() = default;
  // 409 when the user exists. The password is hashed with a real KDF and never stored in clear.
  virtual Result<UserRecord> Create(const UserKey& key, std::string_view password,
                                    std::string_view display_name, TimestampMs now) = 0;
  // 404 when missing.
  virtual Result<UserRecord> Get(const UserKey& key) = 0;
  // 401 bad_credentials when the user is missing or the password is wrong (same answer for both).
  virtual Result<UserRecord> VerifyPassword(const UserKey& key, std::string_view password) = 0;
};

}  // namespace im

#endif  // IM_USER_STORE_H_
