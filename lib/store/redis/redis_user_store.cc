// The Redis UserStore: accounts with the semantics of the LevelDB one
// (lib/store/leveldb/leveldb_user_store.cc).
//
// One hash per account, in the user's hash-tag slot (store/redis/redis_keys.h):
//
//   im:{u:<tenant>/<user>}:account  -> v (record version, "1"), created_ms (decimal),
//                                      hash (libsodium's encoded Argon2id string), name
//
// The password itself is never sent to Redis. Create hashes first (tens of milliseconds, no
// Redis connection held), then one Lua script checks that the key is absent and writes it:
// check-and-insert is atomic in Redis, whichever node runs it. Reads are one HMGET.

#include "store/redis/redis_user_store.h"

#include <charconv>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "im/redis.h"
#include "im/user_store.h"
#include "store/password_hash.h"
#include "store/redis/redis_client.h"
#include "store/redis/redis_keys.h"
#include "store/redis/redis_shards.h"

namespace im {
namespace internal {
namespace {

// Bumped when the record layout changes, so that a newer reader can tell old records apart.
constexpr std::string_view kRecordVersion = "1";

// KEYS[1] the account; ARGV: version, created_ms, hash, name. 1 when created, 0 when it exists.
const RedisScript& CreateScript() {
  static const RedisScript script(R"lua(
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'created_ms', ARGV[2], 'hash', ARGV[3], 'name', ARGV[4])
return 1
)lua");
  return script;
}

std::string AccountKey(const UserKey& key) { return UserKeyPrefix(key) + "account"; }

using Account = StoredAccount;

// Thread-safety: every method is safe from any thread.
class RedisUserStore final : public UserStore {
 public:
  RedisUserStore(std::shared_ptr<RedisClient> client, const PasswordHashOptions& options)
      : client_(std::move(client)), hasher_(options) {}

  bool hasher_ok() const { return hasher_.ok(); }

  Result<UserRecord> Create(const UserKey& key, std::string_view password,
                            std::string_view display_name, TimestampMs now) override {
    Result<Account> prepared = PrepareNewAccount(hasher_, key, password, display_name, now);
    if (!prepared.ok()) return prepared.status();
    Account account = std::move(prepared).value();
    Result<RedisReply> created = client_->Eval(
        CreateScript(), {AccountKey(key)},
        {std::string(kRecordVersion), std::to_string(now), std::move(account.password_hash),
         account.record.display_name});
    if (!created.ok()) return created.status();
    if (!created->is_integer()) return Status::Internal("redis: unexpected reply to a create");
    if (created->integer == 0) return UserExists(key);
    return std::move(account.record);
  }

  Result<UserRecord> Get(const UserKey& key) override {
    Result<std::optional<Account>> account = Lookup(key);
    if (!account.ok()) return account.status();
    if (!account->has_value()) return UserNotFound(key);
    return std::move((*account)->record);
  }

  Result<UserRecord> VerifyPassword(const UserKey& key, std::string_view password) override {
    Result<std::optional<Account>> account = Lookup(key);
    if (!account.ok()) return account.status();
    return VerifyAccount(hasher_, account->has_value() ? &**account : nullptr, password);
  }

 private:
  // The account of `key` (400 for an invalid key); nullopt when there is none.
  Result<std::optional<Account>> Lookup(const UserKey& key) {
    if (Status s = ValidateUserKey(key); !s.ok()) return s;
    Result<RedisReply> reply =
        client_->Command({"HMGET", AccountKey(key), "v", "created_ms", "hash", "name"});
    if (!reply.ok()) return reply.status();
    if (!reply->is_array() || reply->elements.size() != 4) {
      return Status::Internal("redis: unexpected reply to HMGET");
    }
    const std::vector<RedisReply>& fields = reply->elements;
    bool all_nil = true;
    for (const RedisReply& field : fields) all_nil = all_nil && field.is_nil();
    if (all_nil) return std::optional<Account>();
    int64_t created = 0;
    const std::string& created_text = fields[1].str;
    auto [end, ec] =
        std::from_chars(created_text.data(), created_text.data() + created_text.size(), created);
    if (fields[0].str != kRecordVersion || ec != std::errc() ||
        end != created_text.data() + created_text.size() || fields[2].str.empty() ||
        fields[3].str.empty()) {
      return Status::Internal("redis: corrupt user record");
    }
    Account account;
    account.record.key = key;
    account.record.created_ms = created;
    account.password_hash = fields[2].str;
    account.record.display_name = fields[3].str;
    return std::optional<Account>(std::move(account));
  }

  const std::shared_ptr<RedisClient> client_;
  const PasswordHasher hasher_;
};

}  // namespace

Result<std::shared_ptr<UserStore>> NewRedisUserStore(std::shared_ptr<RedisClient> client,
                                                     const PasswordHashOptions& hash) {
  auto store = std::make_shared<RedisUserStore>(std::move(client), hash);
  // Caught here rather than at the first Create: a server should not start with a cost
  // libsodium refuses.
  if (!store->hasher_ok()) return Status::Internal("libsodium rejected the password hash options");
  return std::shared_ptr<UserStore>(std::move(store));
}

}  // namespace internal

Result<std::shared_ptr<UserStore>> OpenRedisUserStore(const RedisOptions& redis,
                                                      PasswordHashOptions hash) {
  if (internal::IsShardedRedisUrl(redis.url)) {
    return internal::OpenShardedUserStore(redis, hash);
  }
  Result<std::shared_ptr<internal::RedisClient>> client = internal::RedisClient::Create(redis);
  if (!client.ok()) return client.status();
  return internal::NewRedisUserStore(std::move(client).value(), hash);
}

}  // namespace im
