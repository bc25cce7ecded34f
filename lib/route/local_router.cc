#include "route/local_router.h"

#include <utility>

#include "im/backends.h"

namespace im {
namespace internal {

void LocalRouter::Attach(const SessionInfo& session, std::shared_ptr<Connection> connection) {
  if (!connection) return;
  Shard& shard = ShardOf(session.user);
  std::lock_guard<std::mutex> lock(shard.mu);
  Entries& entries = shard.users[session.user];
  for (Entry& e : entries) {
    if (e.session_id == session.session_id) {
      e.connection_id = session.connection_id;
      e.connection = std::move(connection);
      return;
    }
  }
  entries.push_back(Entry{session.session_id, session.connection_id, std::move(connection)});
  count_.fetch_add(1, std::memory_order_relaxed);
}

void LocalRouter::EraseLocked(Shard& shard,
                              std::unordered_map<UserKey, Entries, UserKeyHash>::iterator it,
                              size_t i) {
  Entries& entries = it->second;
  entries.erase(entries.begin() + static_cast<std::ptrdiff_t>(i));
  if (entries.empty()) shard.users.erase(it);
  count_.fetch_sub(1, std::memory_order_relaxed);
}

void LocalRouter::Detach(const SessionInfo& session) {
  Shard& shard = ShardOf(session.user);
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.users.find(session.user);
  if (it == shard.users.end()) return;
  for (size_t i = 0; i < it->second.size(); ++i) {
    const Entry& e = it->second[i];
    if (e.session_id != session.session_id) continue;
    if (e.connection_id == session.connection_id) EraseLocked(shard, it, i);
    return;
  }
}

SendResult LocalRouter::Deliver(const SessionInfo& target, const Frame& frame) {
  Shard& shard = ShardOf(target.user);
  std::shared_ptr<Connection> connection;
  {
    std::lock_guard<std::mutex> lock(shard.mu);
    auto it = shard.users.find(target.user);
    if (it == shard.users.end()) return SendResult::kDropped;
    for (size_t i = 0; i < it->second.size(); ++i) {
      if (it->second[i].session_id != target.session_id) continue;
      connection = it->second[i].connection.lock();
      // Gone without a Detach: forget it, so LocalCount does not count it.
      if (!connection) EraseLocked(shard, it, i);
      break;
    }
  }
  if (!connection) return SendResult::kDropped;
  return connection->Send(frame);
}

void LocalRouter::Close(const SessionInfo& target, const Frame& notice, int code,
                        std::string_view reason) {
  Shard& shard = ShardOf(target.user);
  std::shared_ptr<Connection> connection;
  {
    std::lock_guard<std::mutex> lock(shard.mu);
    auto it = shard.users.find(target.user);
    if (it == shard.users.end()) return;
    for (size_t i = 0; i < it->second.size(); ++i) {
      if (it->second[i].session_id != target.session_id) continue;
      connection = it->second[i].connection.lock();
      EraseLocked(shard, it, i);
      break;
    }
  }
  if (!connection) return;
  // The connection writes queued frames before closing, so the notice reaches the client.
  if (notice.size() > 0) connection->Send(notice);
  connection->Close(code, reason);
}

void LocalRouter::CollectUsers(const UserKey* const* users, size_t n, std::string_view skip,
                               std::vector<Target>* out) {
  for (size_t k = 0; k < n; ++k) {
    Shard& shard = ShardOf(*users[k]);
    std::lock_guard<std::mutex> lock(shard.mu);
    auto it = shard.users.find(*users[k]);
    if (it == shard.users.end()) continue;
    for (size_t i = 0; i < it->second.size();) {
      const Entry& e = it->second[i];
      std::shared_ptr<Connection> c = e.connection.lock();
      if (!c) {
        const bool last = it->second.size() == 1;
        EraseLocked(shard, it, i);
        if (last) break;  // the user's entry is gone
        continue;
      }
      if (e.session_id != skip) out->push_back(Target{k, std::move(c)});
      ++i;
    }
  }
}

std::vector<UserKey> LocalRouter::Users() {
  std::vector<UserKey> out;
  out.reserve(count_.load(std::memory_order_relaxed));
  for (Shard& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard.mu);
    for (const auto& [user, entries] : shard.users) {
      if (!entries.empty()) out.push_back(user);
    }
  }
  return out;
}

}  // namespace internal

std::shared_ptr<Router> NewLocalRouter() { return std::make_shared<internal::LocalRouter>(); }

}  // namespace im
