// The single-node Router: a registry of this node's attached connections, sharded by session id.

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "im/backends.h"
#include "im/router.h"

namespace im {
namespace internal {
namespace {

// Connections are held weakly: the transport owns them, and a connection that died without a
// Detach must not be kept alive by the registry. No lock is held while calling into a
// Connection, so a Send or Close that re-enters the router cannot deadlock.
//
// Thread-safety: every method is safe from any thread.
class LocalRouter final : public Router {
 public:
  void Attach(const SessionInfo& session, std::shared_ptr<Connection> connection) override {
    if (!connection) return;
    Shard& shard = ShardOf(session.session_id);
    std::lock_guard<std::mutex> lock(shard.mu);
    const bool inserted =
        shard.entries.insert_or_assign(session.session_id, Entry{session, connection}).second;
    if (inserted) count_.fetch_add(1, std::memory_order_relaxed);
  }

  // Also compares connection_id: the close path of an old connection may run after a new one
  // attached under the same session id (a resumed session), and must not detach the new one.
  void Detach(const SessionInfo& session) override {
    Shard& shard = ShardOf(session.session_id);
    std::lock_guard<std::mutex> lock(shard.mu);
    auto it = shard.entries.find(session.session_id);
    if (it == shard.entries.end() || it->second.session.connection_id != session.connection_id) {
      return;
    }
    shard.entries.erase(it);
    count_.fetch_sub(1, std::memory_order_relaxed);
  }

  SendResult Deliver(const SessionInfo& target, const Frame& frame) override {
    Shard& shard = ShardOf(target.session_id);
    std::weak_ptr<Connection> weak;
    uint64_t connection_id = 0;
    {
      std::lock_guard<std::mutex> lock(shard.mu);
      auto it = shard.entries.find(target.session_id);
      if (it == shard.entries.end()) return SendResult::kDropped;
      weak = it->second.connection;
      connection_id = it->second.session.connection_id;
    }
    std::shared_ptr<Connection> connection = weak.lock();
    if (!connection) {
      ForgetExpired(shard, target.session_id, connection_id);
      return SendResult::kDropped;
    }
    return connection->Send(frame);
  }

  void Close(const SessionInfo& target, const Frame& notice, int code,
             std::string_view reason) override {
    Shard& shard = ShardOf(target.session_id);
    std::weak_ptr<Connection> weak;
    {
      std::lock_guard<std::mutex> lock(shard.mu);
      auto it = shard.entries.find(target.session_id);
      if (it == shard.entries.end()) return;
      weak = std::move(it->second.connection);
      shard.entries.erase(it);
      count_.fetch_sub(1, std::memory_order_relaxed);
    }
    std::shared_ptr<Connection> connection = weak.lock();
    if (!connection) return;
    // The connection writes queued frames before closing, so the notice reaches the client.
    if (notice.size() > 0) connection->Send(notice);
    connection->Close(code, reason);
  }

  size_t LocalCount() const override { return count_.load(std::memory_order_relaxed); }

 private:
  static constexpr size_t kShards = 16;

  struct Entry {
    SessionInfo session;
    std::weak_ptr<Connection> connection;
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, Entry> entries;  // by session_id
  };

  Shard& ShardOf(const std::string& session_id) {
    return shards_[std::hash<std::string>()(session_id) % kShards];
  }

  // Drops an entry whose connection is gone, unless it was re-attached in the meantime, so that
  // LocalCount does not count connections that died without a Detach.
  void ForgetExpired(Shard& shard, const std::string& session_id, uint64_t connection_id) {
    std::lock_guard<std::mutex> lock(shard.mu);
    auto it = shard.entries.find(session_id);
    if (it == shard.entries.end() || it->second.session.connection_id != connection_id ||
        !it->second.connection.expired()) {
      return;
    }
    shard.entries.erase(it);
    count_.fetch_sub(1, std::memory_order_relaxed);
  }

  std::array<Shard, kShards> shards_;
  std::atomic<size_t> count_{0};
};

}  // namespace
}  // namespace internal

std::shared_ptr<Router> NewLocalRouter() { return std::make_shared<internal::LocalRouter>(); }

}  // namespace im
