// The in-memory UserStore: accounts of one process (or of a test), lost on exit.
//
// Accounts live in shards chosen by a hash of the UserKey. A shard lock guards only map lookups
// and inserts; the Argon2id work (tens of milliseconds and mem_limit bytes per call) runs
// outside it, so a slow hash never stalls other users of the shard. Create hashes first and then
// checks-and-inserts under the lock, which keeps the 409 atomic; a losing concurrent Create has
// merely spent one hash.

#include <array>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "im/backends.h"
#include "im/user_store.h"
#include "store/password_hash.h"

namespace im {
namespace internal {
namespace {

constexpr size_t kShards = 16;

// Thread-safety: every method is safe from any thread.
class MemoryUserStore final : public UserStore {
 public:
  explicit MemoryUserStore(const PasswordHashOptions& options) : hasher_(options) {}

  Result<UserRecord> Create(const UserKey& key, std::string_view password,
                            std::string_view display_name, TimestampMs now) override {
    Result<Account> prepared = PrepareNewAccount(hasher_, key, password, display_name, now);
    if (!prepared.ok()) return prepared.status();
    Account account = std::move(prepared).value();

    Shard& shard = ShardOf(key);
    std::lock_guard<std::mutex> lock(shard.mu);
    auto [it, inserted] = shard.accounts.try_emplace(key);
    if (!inserted) return UserExists(key);
    it->second = std::move(account);
    return it->second.record;
  }

  Result<UserRecord> Get(const UserKey& key) override {
    if (Status s = ValidateUserKey(key); !s.ok()) return s;
    Shard& shard = ShardOf(key);
    std::lock_guard<std::mutex> lock(shard.mu);
    auto it = shard.accounts.find(key);
    if (it == shard.accounts.end()) return UserNotFound(key);
    return it->second.record;
  }

  Result<UserRecord> VerifyPassword(const UserKey& key, std::string_view password) override {
    if (Status s = ValidateUserKey(key); !s.ok()) return s;
    Account account;
    bool found = false;
    {
      // Copied out so the KDF runs unlocked. Accounts are never changed or removed, so the copy
      // cannot be stale.
      Shard& shard = ShardOf(key);
      std::lock_guard<std::mutex> lock(shard.mu);
      auto it = shard.accounts.find(key);
      if (it != shard.accounts.end()) {
        account = it->second;
        found = true;
      }
    }
    return VerifyAccount(hasher_, found ? &account : nullptr, password);
  }

 private:
  using Account = StoredAccount;

  struct Shard {
    std::mutex mu;
    std::unordered_map<UserKey, Account, UserKeyHash> accounts;
  };

  Shard& ShardOf(const UserKey& key) { return shards_[UserKeyHash()(key) % kShards]; }

  const PasswordHasher hasher_;
  std::array<Shard, kShards> shards_;
};

}  // namespace
}  // namespace internal

std::shared_ptr<UserStore> NewMemoryUserStore(PasswordHashOptions hash) {
  return std::make_shared<internal::MemoryUserStore>(hash);
}

}  // namespace im
