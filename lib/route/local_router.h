// The single-node Router (NewLocalRouter), and what the core uses of it beyond the Router
// interface: the node's one registry of logged-in connections, indexed by user.
//
// Fan-out needs "every connection of these users"; the Router interface answers "this session's
// connection", so the generic path asks the SessionStore for the users' sessions first
// (FindMany) and then looks each one up here. With this router every reachable session is in
// this registry anyway, so the fan-out stage asks the registry directly (CollectUsers): one hash
// lookup per recipient, no SessionInfo copies.
//
// Connections are held weakly: the transport owns them, and a connection that died without a
// Detach must not be kept alive by the registry. No lock is held while calling into a
// Connection, so a Send or Close that re-enters the router cannot deadlock.
//
// Thread-safety: every method is safe from any thread.
#ifndef IM_ROUTE_LOCAL_ROUTER_H_
#define IM_ROUTE_LOCAL_ROUTER_H_

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "im/router.h"

namespace im::internal {

class LocalRouter final : public Router {
 public:
  void Attach(const SessionInfo& session, std::shared_ptr<Connection> connection) override;
  // Also compares connection_id: the close path of an old connection may run after a new one
  // attached under the same session id (a resumed session), and must not detach the new one.
  void Detach(const SessionInfo& session) override;
  SendResult Deliver(const SessionInfo& target, const Frame& frame) override;
  void Close(const SessionInfo& target, const Frame& notice, int code,
             std::string_view reason) override;
  size_t LocalCount() const override { return count_.load(std::memory_order_relaxed); }

  // A live connection of a recipient, found by CollectUsers.
  struct Target {
    size_t index;  // which of the users
    std::shared_ptr<Connection> connection;
  };
  // Appends to `out` every live connection of users[i] for i in [0, n), except the session
  // `skip` (the sender's own), in the order of `users`. Entries whose connection is gone are
  // forgotten on the way.
  void CollectUsers(const UserKey* const* users, size_t n, std::string_view skip,
                    std::vector<Target>* out);
  // Every user with at least one attached session now (a snapshot, in no particular order).
  std::vector<UserKey> Users();

 private:
  static constexpr size_t kShards = 16;

  struct Entry {
    std::string session_id;
    uint64_t connection_id = 0;
    std::weak_ptr<Connection> connection;
  };
  // A user's attached sessions: one per device, so a handful at most.
  using Entries = std::vector<Entry>;
  struct Shard {
    std::mutex mu;
    std::unordered_map<UserKey, Entries, UserKeyHash> users;
  };

  Shard& ShardOf(const UserKey& user) { return shards_[UserKeyHash()(user) % kShards]; }
  // Removes entry `i` of `user`'s entries (and the user when none is left). Under shard.mu.
  void EraseLocked(Shard& shard, std::unordered_map<UserKey, Entries, UserKeyHash>::iterator it,
                   size_t i);

  std::array<Shard, kShards> shards_;
  std::atomic<size_t> count_{0};
};

}  // namespace im::internal

#endif  // IM_ROUTE_LOCAL_ROUTER_H_
