// The in-memory SessionStore: sessions of one node (or of a test), sharded by user so that
// logins of different users do not contend on one lock.

#include <array>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "im/backends.h"
#include "im/session_store.h"

namespace im {
namespace internal {
namespace {

// Sessions live in shards chosen by a hash of the user, so every operation on one user takes
// exactly one lock and Put can apply the kick policy atomically under it.
//
// Thread-safety: every method is safe from any thread.
class MemorySessionStore final : public SessionStore {
 public:
  Result<std::vector<SessionInfo>> Put(const SessionInfo& session, KickPolicy policy) override {
    if (session.session_id.empty()) return Status::BadRequest("session_id is empty");
    Shard& shard = ShardOf(session.user);
    std::lock_guard<std::mutex> lock(shard.mu);
    std::vector<SessionInfo>& sessions = shard.users[session.user];
    std::vector<SessionInfo> displaced;
    size_t removed = 0;
    for (auto it = sessions.begin(); it != sessions.end();) {
      // A repeated Put of the same session (e.g. a retried login step) updates it in place
      // rather than kicking the caller's own session.
      const bool same = it->session_id == session.session_id;
      if (same || policy == KickPolicy::kPerAccount || it->device == session.device) {
        if (!same) displaced.push_back(std::move(*it));
        it = sessions.erase(it);
        ++removed;
      } else {
        ++it;
      }
    }
    sessions.push_back(session);
    size_t& count = shard.tenant_counts[session.user.tenant];
    count = count + 1 - removed;
    return displaced;
  }

  Result<bool> Remove(const SessionInfo& session) override {
    Shard& shard = ShardOf(session.user);
    std::lock_guard<std::mutex> lock(shard.mu);
    auto user_it = shard.users.find(session.user);
    if (user_it == shard.users.end()) return false;
    std::vector<SessionInfo>& sessions = user_it->second;
    for (auto it = sessions.begin(); it != sessions.end(); ++it) {
      if (it->session_id != session.session_id) continue;
      sessions.erase(it);
      if (sessions.empty()) shard.users.erase(user_it);
      auto count_it = shard.tenant_counts.find(session.user.tenant);
      if (--count_it->second == 0) shard.tenant_counts.erase(count_it);
      return true;
    }
    return false;
  }

  Result<std::vector<SessionInfo>> Find(const UserKey& user) override {
    std::vector<SessionInfo> out;
    AppendSessionsOf(user, &out);
    return out;
  }

  Result<std::vector<SessionInfo>> FindMany(const std::vector<UserKey>& users) override {
    std::vector<SessionInfo> out;
    for (const UserKey& user : users) AppendSessionsOf(user, &out);
    return out;
  }

  // Sums per-shard counters instead of scanning sessions, so metrics polling stays O(shards).
  Result<size_t> Count(std::string_view tenant) override {
    size_t total = 0;
    for (Shard& shard : shards_) {
      std::lock_guard<std::mutex> lock(shard.mu);
      if (tenant.empty()) {
        for (const auto& [name, count] : shard.tenant_counts) total += count;
      } else {
        auto it = shard.tenant_counts.find(std::string(tenant));
        if (it != shard.tenant_counts.end()) total += it->second;
      }
    }
    return total;
  }

 private:
  static constexpr size_t kShards = 16;

  struct Shard {
    std::mutex mu;
    // A user rarely has more than a handful of devices, so a vector beats a nested map.
    std::unordered_map<UserKey, std::vector<SessionInfo>, UserKeyHash> users;
    // Sessions per tenant in this shard; a tenant is erased when its count drops to zero.
    std::unordered_map<std::string, size_t> tenant_counts;
  };

  Shard& ShardOf(const UserKey& user) { return shards_[UserKeyHash()(user) % kShards]; }

  void AppendSessionsOf(const UserKey& user, std::vector<SessionInfo>* out) {
    Shard& shard = ShardOf(user);
    std::lock_guard<std::mutex> lock(shard.mu);
    auto it = shard.users.find(user);
    if (it != shard.users.end()) out->insert(out->end(), it->second.begin(), it->second.end());
  }

  std::array<Shard, kShards> shards_;
};

}  // namespace
}  // namespace internal

std::shared_ptr<SessionStore> NewMemorySessionStore() {
  return std::make_shared<internal::MemorySessionStore>();
}

}  // namespace im
