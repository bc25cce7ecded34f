#include "store/password_hash.h"

#include <sodium.h>

#include <string>
#include <string_view>

#include "base/utf8.h"

namespace im::internal {
namespace {

// sodium_init() picks the fastest implementations and seeds randombytes; it must run before the
// first crypto_pwhash call, and running it once is enough.
bool SodiumReady() {
  static const bool ready = sodium_init() >= 0;
  return ready;
}

// crypto_pwhash wants a non-null pointer only when the length is non-zero; an empty
// string_view may carry a null one.
const char* DataOf(std::string_view text) { return text.empty() ? "" : text.data(); }

}  // namespace

Status ValidateUserKey(const UserKey& key) {
  if (!IsValidId(key.tenant)) return Status::BadRequest("invalid tenant");
  if (!IsValidId(key.user)) return Status::BadRequest("invalid user id");
  return Status::OK();
}

Status ValidateNewUser(const UserKey& key, std::string_view password, std::string_view display_name,
                       const PasswordHashOptions& options, std::string* stored_name) {
  if (Status s = ValidateUserKey(key); !s.ok()) return s;
  // The messages state the rule, never the password or its length.
  if (password.size() < options.min_password_bytes) {
    return Status::BadRequest("password is shorter than " +
                              std::to_string(options.min_password_bytes) + " bytes");
  }
  if (password.size() > options.max_password_bytes) {
    return Status::BadRequest("password is longer than " +
                              std::to_string(options.max_password_bytes) + " bytes");
  }
  if (display_name.size() > options.max_display_name_bytes) {
    return Status::BadRequest("display name is longer than " +
                              std::to_string(options.max_display_name_bytes) + " bytes");
  }
  if (!IsValidUtf8(display_name)) return Status::BadRequest("display name is not valid UTF-8");
  if (HasControlCharacter(display_name)) {
    return Status::BadRequest("display name has control characters");
  }
  stored_name->assign(display_name.empty() ? std::string_view(key.user) : display_name);
  return Status::OK();
}

Status UserExists(const UserKey& key) {
  return Status::Error(Code::kConflict, "user_exists", "user " + key.user + " exists");
}

Status UserNotFound(const UserKey& key) { return Status::NotFound("no user " + key.user); }

Status BadCredentials() {
  return Status::Unauthenticated("bad_credentials", "unknown user or wrong password");
}

PasswordHasher::PasswordHasher(const PasswordHashOptions& options) : options_(options) {
  if (!SodiumReady()) return;
  // A random password nobody knows: the dummy hash can never verify, whatever is tried.
  char secret[32];
  randombytes_buf(secret, sizeof secret);
  Result<std::string> dummy = Hash(std::string_view(secret, sizeof secret));
  sodium_memzero(secret, sizeof secret);
  if (dummy.ok()) dummy_hash_ = std::move(dummy).value();
}

Result<std::string> PasswordHasher::Hash(std::string_view password) const {
  if (!SodiumReady()) return Status::Internal("libsodium failed to initialize");
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, DataOf(password), password.size(), options_.ops_limit,
                            options_.mem_limit, crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return Status::Internal("password hashing failed (out of memory or invalid cost options)");
  }
  // NUL-terminated by crypto_pwhash_str_alg.
  std::string encoded(out);
  sodium_memzero(out, sizeof out);
  return encoded;
}

bool PasswordHasher::Verify(const std::string& encoded, std::string_view password) const {
  if (password.size() > options_.max_password_bytes || !SodiumReady()) return false;
  // c_str(): libsodium reads the encoded string up to its NUL.
  return crypto_pwhash_str_verify(encoded.c_str(), DataOf(password), password.size()) == 0;
}

void PasswordHasher::VerifyDummy(std::string_view password) const {
  // With no dummy hash (broken options) this returns fast; Create fails then too, so there are
  // no accounts whose existence the timing could reveal.
  (void)Verify(dummy_hash_, password);
}

Result<StoredAccount> PrepareNewAccount(const PasswordHasher& hasher, const UserKey& key,
                                        std::string_view password, std::string_view display_name,
                                        TimestampMs now) {
  StoredAccount account;
  Status s = ValidateNewUser(key, password, display_name, hasher.options(),
                             &account.record.display_name);
  if (!s.ok()) return s;
  account.record.key = key;
  account.record.created_ms = now;
  Result<std::string> hash = hasher.Hash(password);
  if (!hash.ok()) return hash.status();
  account.password_hash = std::move(hash).value();
  return account;
}

Result<UserRecord> VerifyAccount(const PasswordHasher& hasher, StoredAccount* account,
                                 std::string_view password) {
  if (account == nullptr) {
    hasher.VerifyDummy(password);
    return BadCredentials();
  }
  if (!hasher.Verify(account->password_hash, password)) return BadCredentials();
  return std::move(account->record);
}

}  // namespace im::internal
