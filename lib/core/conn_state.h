// Per-connection state of the core, and the sharded registry of all connections on this node.
//
// The transport keeps a connection's ConnState as its context (TransportHandler::OnOpen) and
// hands it back with every frame, so the per-frame path looks nothing up; the registry is for
// what walks every connection (the sweep, metrics, drain) and for the close.
//
// Thread-safety: ConnState's atomics may be read from any thread; `session`/`logged_in` are
// written only in the connection's turns (worker pool) and read by the sweeper under `mu`;
// `chat_bucket` is used only in the turns.
#ifndef IM_CORE_CONN_STATE_H_
#define IM_CORE_CONN_STATE_H_

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/rate_limits.h"
#include "im/connection.h"
#include "im/types.h"

namespace im::internal {

struct Request;

struct ConnState {
  ConnState(std::shared_ptr<Connection> c, TimestampMs now)
      : conn(std::move(c)), opened_ms(now), last_seen_ms(now) {}

  const std::shared_ptr<Connection> conn;
  const TimestampMs opened_ms;
  std::atomic<TimestampMs> last_seen_ms;
  std::atomic<size_t> pending = 0;  // commands queued and not yet started

  // The connection's work, run in order on the worker pool in turns (SocketFront::RunTurn):
  // a command, or null for the end of the session after a close. At most one turn of a
  // connection is queued or running at a time, and a turn runs a few items and then goes to
  // the back of the pool's queue: one connection's backlog does not hold a worker while
  // other connections wait. Guarded by `work_mu`; bounded by max_pending_commands (+1 close).
  std::mutex work_mu;
  std::vector<std::shared_ptr<Request>> work;
  size_t work_head = 0;     // the next item of `work`
  bool turn_queued = false;  // a turn is queued or running
  std::atomic<bool> closed = false;  // the transport reported the close
  std::atomic<bool> logged_in = false;
  std::atomic<bool> drain_kicked = false;  // a drain sent session.kicked: not kicked twice
  // When the login token expires (0 = never). A login with a fresh token moves it.
  std::atomic<TimestampMs> token_expires_ms = 0;
  // EpochTag of the inbox epoch the client was last told (its login or chat.sync response; 0:
  // none yet). The cluster catch-up moves a session told another epoch than the inbox has now
  // (core/push_catch_up.h).
  std::atomic<uint64_t> epoch_told = 0;

  std::mutex mu;  // guards `session`
  SessionInfo session;
  TokenBucket chat_bucket;  // chat_connection_rate/burst; in the turns only
};

// A fixed-size stand-in for an inbox epoch on the connection (never 0).
inline uint64_t EpochTag(const std::string& epoch) {
  return static_cast<uint64_t>(std::hash<std::string>{}(epoch)) | 1;
}

// Connections by id, sharded to keep lock contention off the per-frame path.
class ConnRegistry {
 public:
  void Add(const std::shared_ptr<ConnState>& s) {
    Shard& sh = ShardOf(s->conn->id());
    std::lock_guard<std::mutex> lock(sh.mu);
    sh.map[s->conn->id()] = s;
  }
  std::shared_ptr<ConnState> Find(uint64_t id) {
    Shard& sh = ShardOf(id);
    std::lock_guard<std::mutex> lock(sh.mu);
    auto it = sh.map.find(id);
    return it == sh.map.end() ? nullptr : it->second;
  }
  std::shared_ptr<ConnState> Take(uint64_t id) {
    Shard& sh = ShardOf(id);
    std::lock_guard<std::mutex> lock(sh.mu);
    auto it = sh.map.find(id);
    if (it == sh.map.end()) return nullptr;
    auto s = std::move(it->second);
    sh.map.erase(it);
    return s;
  }
  // Calls `fn` on a snapshot of every connection (outside the shard locks).
  void ForEach(const std::function<void(const std::shared_ptr<ConnState>&)>& fn) {
    std::vector<std::shared_ptr<ConnState>> all;
    for (Shard& sh : shards_) {
      std::lock_guard<std::mutex> lock(sh.mu);
      for (auto& [id, s] : sh.map) all.push_back(s);
    }
    for (auto& s : all) fn(s);
  }
  size_t Size() {
    size_t n = 0;
    for (Shard& sh : shards_) {
      std::lock_guard<std::mutex> lock(sh.mu);
      n += sh.map.size();
    }
    return n;
  }

 private:
  struct Shard {
    std::mutex mu;
    std::unordered_map<uint64_t, std::shared_ptr<ConnState>> map;
  };
  Shard& ShardOf(uint64_t id) { return shards_[id % shards_.size()]; }
  std::array<Shard, 16> shards_;
};

}  // namespace im::internal

#endif  // IM_CORE_CONN_STATE_H_
