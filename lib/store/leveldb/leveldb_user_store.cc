// The LevelDB UserStore: durable accounts with the semantics of the memory backend
// (lib/store/memory/memory_user_store.cc).
//
// Record layout. The key starts with a record type and the tenant, so nothing can address
// another tenant's accounts; tenant and user are length-prefixed (one byte) and so
// self-delimiting.
//
//   U | lp(tenant) | lp(user)   -> version | created_ms | fixed32 len | password hash | name
//
// The type byte is upper case like the GroupService's (G, M) and unlike the OfflineQueue's
// lower-case ones (store/leveldb/keys.h), and no other store uses U, should they ever share a
// database. The password hash is libsodium's encoded Argon2id string (salt and cost included);
// the password itself is never written.
//
// Writes: a Create is one WriteBatch, under the lock of the user's stripe, after a read that
// finds no account: check-and-insert is atomic per user. The Argon2id hash is computed before the
// lock is taken. Reads take no lock: an account is one record, written once.

#include <leveldb/cache.h>
#include <leveldb/db.h>
#include <leveldb/filter_policy.h>
#include <leveldb/write_batch.h>

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "im/backends.h"
#include "store/leveldb/coding.h"
#include "store/leveldb/db_util.h"
#include "im/user_store.h"
#include "store/password_hash.h"

namespace im {
namespace internal::leveldb_user {
namespace {

constexpr char kUserRecord = 'U';
// Bumped when the value layout changes, so that a newer reader can tell old records apart.
constexpr char kValueVersion = 1;
// Creates of one user serialize on one of these, chosen by a hash of the UserKey; users sharing
// a stripe merely wait for each other's (short) existence check and write.
constexpr size_t kLockStripes = 64;

// Encoding.

std::string UserRecordKey(const UserKey& key) {
  std::string out(1, kUserRecord);
  coding::PutLengthPrefixed(&out, key.tenant);
  coding::PutLengthPrefixed(&out, key.user);
  return out;
}

using Account = StoredAccount;

// version | created_ms (fixed64) | hash length (fixed32) | hash | display name (the rest: its
// length is a limit that may change).
std::string EncodeAccount(const Account& account) {
  std::string value(1, kValueVersion);
  coding::PutBigEndian(&value, static_cast<uint64_t>(account.record.created_ms), 8);
  coding::PutBigEndian(&value, account.password_hash.size(), 4);
  value.append(account.password_hash);
  value.append(account.record.display_name);
  return value;
}

bool DecodeAccount(std::string_view value, const UserKey& key, Account* out) {
  if (!coding::GetVersion(&value, kValueVersion)) return false;
  uint64_t created = 0;
  uint64_t hash_size = 0;
  if (!coding::GetBigEndian(&value, &created, 8) || !coding::GetBigEndian(&value, &hash_size, 4) ||
      hash_size == 0 || hash_size > value.size()) {
    return false;
  }
  out->record.key = key;
  out->record.created_ms = static_cast<TimestampMs>(created);
  out->password_hash.assign(value.substr(0, hash_size));
  out->record.display_name.assign(value.substr(hash_size));
  return !out->record.display_name.empty();
}

// Thread-safety: every method is safe from any thread.
class LevelDbUserStore final : public UserStore {
 public:
  LevelDbUserStore(const PasswordHashOptions& options, const LevelDbOptions& db_options)
      : hasher_(options), db_(db_options) {}

  Status Open(const std::string& dir) {
    // Caught here rather than at the first Create: a server should not start with a cost
    // libsodium refuses.
    if (!hasher_.ok()) return Status::Internal("libsodium rejected the password hash options");
    return db_.Open(dir);
  }

  Result<UserRecord> Create(const UserKey& key, std::string_view password,
                            std::string_view display_name, TimestampMs now) override {
    Result<Account> prepared = PrepareNewAccount(hasher_, key, password, display_name, now);
    if (!prepared.ok()) return prepared.status();
    Account account = std::move(prepared).value();
    const std::string record_key = UserRecordKey(key);
    leveldb::WriteBatch batch;
    batch.Put(record_key, EncodeAccount(account));

    std::lock_guard<std::mutex> lock(StripeOf(key));
    bool found = false;
    if (Status s = Load(record_key, key, nullptr, &found); !s.ok()) return s;
    if (found) return UserExists(key);
    leveldb::Status status = db_->Write(db_.write_options(), &batch);
    if (!status.ok()) return FromLevelDb(status);
    return std::move(account.record);
  }

  Result<UserRecord> Get(const UserKey& key) override {
    if (Status s = ValidateUserKey(key); !s.ok()) return s;
    Account account;
    bool found = false;
    if (Status s = Load(UserRecordKey(key), key, &account, &found); !s.ok()) return s;
    if (!found) return UserNotFound(key);
    return std::move(account.record);
  }

  Result<UserRecord> VerifyPassword(const UserKey& key, std::string_view password) override {
    if (Status s = ValidateUserKey(key); !s.ok()) return s;
    Account account;
    bool found = false;
    if (Status s = Load(UserRecordKey(key), key, &account, &found); !s.ok()) return s;
    return VerifyAccount(hasher_, found ? &account : nullptr, password);
  }

 private:
  std::mutex& StripeOf(const UserKey& key) { return stripes_[UserKeyHash()(key) % kLockStripes]; }

  // Reads the account at `record_key` into *account (when not null). *found is false, with OK,
  // when there is none.
  Status Load(const std::string& record_key, const UserKey& key, Account* account, bool* found) {
    std::string value;
    leveldb::Status status = db_->Get(VerifiedRead(), record_key, &value);
    *found = status.ok();
    if (status.IsNotFound()) return Status::OK();
    if (!status.ok()) return FromLevelDb(status);
    Account decoded;
    if (!DecodeAccount(value, key, &decoded)) {
      return Status::Internal("leveldb: corrupt user record");
    }
    if (account != nullptr) *account = std::move(decoded);
    return Status::OK();
  }

  const PasswordHasher hasher_;
  std::array<std::mutex, kLockStripes> stripes_;
  DbHandle db_;
};

}  // namespace
}  // namespace internal::leveldb_user

Result<std::shared_ptr<UserStore>> OpenLevelDbUserStore(const std::string& dir,
                                                        PasswordHashOptions hash,
                                                        LevelDbOptions db) {
  auto store = std::make_shared<internal::leveldb_user::LevelDbUserStore>(hash, db);
  Status status = store->Open(dir);
  if (!status.ok()) return status;
  return std::shared_ptr<UserStore>(std::move(store));
}

}  // namespace im
