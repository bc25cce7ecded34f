// Helpers shared by the UserStore backends: the validation rules of a new account and Argon2id
// password hashing (libsodium crypto_pwhash), so that every backend answers the same requests
// with the same codes and messages, and none of them handles password bytes on its own.
#ifndef IM_STORE_PASSWORD_HASH_H_
#define IM_STORE_PASSWORD_HASH_H_

#include <string>
#include <string_view>

#include "im/result.h"
#include "im/status.h"
#include "im/types.h"
#include "im/user_store.h"

namespace im::internal {

// 400 unless tenant and user are valid ids (im::IsValidId).
Status ValidateUserKey(const UserKey& key);

// 400 unless `key` is valid, the password is min..max_password_bytes long and the display name
// is at most max_display_name_bytes of valid UTF-8 without control characters. On success,
// *stored_name is the name to record: `display_name`, or the user id when it is empty.
Status ValidateNewUser(const UserKey& key, std::string_view password, std::string_view display_name,
                       const PasswordHashOptions& options, std::string* stored_name);

// 409 user_exists.
Status UserExists(const UserKey& key);
// 404 not_found.
Status UserNotFound(const UserKey& key);
// 401 bad_credentials. One answer, one message, for an unknown user and a wrong password, so
// the reply does not tell which accounts exist.
Status BadCredentials();

class PasswordHasher;

// An account as the UserStore backends keep it.
struct StoredAccount {
  UserRecord record;
  std::string password_hash;  // crypto_pwhash encoded string; never leaves the store
};

// ValidateNewUser, then the Argon2id hash of `password`: the account a Create stores (created at
// `now`). Takes tens of milliseconds; call it without holding a lock.
Result<StoredAccount> PrepareNewAccount(const PasswordHasher& hasher, const UserKey& key,
                                        std::string_view password, std::string_view display_name,
                                        TimestampMs now);

// VerifyPassword's answer for `account` (null: no such user): its record when `password`
// matches, else 401 bad_credentials, after about one hash's work in both cases.
Result<UserRecord> VerifyAccount(const PasswordHasher& hasher, StoredAccount* account,
                                 std::string_view password);

// Argon2id hashing at one fixed cost.
//
// Memory: crypto_pwhash allocates options.mem_limit bytes for the duration of every Hash and
// Verify call (64 MiB at the default cost), and nothing bounds them here: N concurrent calls use
// N * mem_limit. The server bounds N by its hashing pool (ServerOptions::hash_threads), which
// runs the account requests.
// Callers must not hold locks across these calls: each takes tens of milliseconds.
//
// Thread-safety: immutable after construction; every method is safe from any thread.
class PasswordHasher {
 public:
  // Computes the dummy hash (one hash at this cost). ok() is false when libsodium failed to
  // start or rejected the options (ops_limit/mem_limit outside crypto_pwhash's bounds); then
  // every Hash fails with 500.
  explicit PasswordHasher(const PasswordHashOptions& options);

  PasswordHasher(const PasswordHasher&) = delete;
  PasswordHasher& operator=(const PasswordHasher&) = delete;

  bool ok() const { return !dummy_hash_.empty(); }
  const PasswordHashOptions& options() const { return options_; }

  // The encoded Argon2id string ("$argon2id$v=19$m=...,t=...,p=1$salt$hash"): it carries its
  // salt (fresh for every call) and cost, so Verify needs nothing else. 500 when libsodium fails
  // (out of memory, bad options).
  Result<std::string> Hash(std::string_view password) const;

  // True when `password` matches `encoded` (a Hash output, possibly at an older cost). Constant
  // time in the password; false for a malformed `encoded` too. A password longer than
  // max_password_bytes is false at once: Create never stores one, and refusing it before the KDF
  // bounds the work a client can ask for.
  bool Verify(const std::string& encoded, std::string_view password) const;

  // Spends about the time and memory of a Verify on a user that does not exist, so an unknown
  // user and a wrong password take alike long (an over-long password returns at once in both).
  void VerifyDummy(std::string_view password) const;

 private:
  const PasswordHashOptions options_;
  // A hash of a random password at options_' cost, made once; empty when hashing failed.
  std::string dummy_hash_;
};

}  // namespace im::internal

#endif  // IM_STORE_PASSWORD_HASH_H_
