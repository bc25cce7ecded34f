// RedisRouter: the Router of a node in a cluster whose nodes share their sessions in Redis.
// This node's connections live in a LocalRouter; a session held by another node
// (SessionInfo::node) is reached through that node's pub/sub channel, `im:node:<id>`.
//
//   auto router = RedisRouter::Start(client, redis_options, "node-a");
//
// Fan-out (BroadcastRouter): the fan-out stage delivers to this node's connections itself and
// hands the pushes of each step to Broadcast, by user; Flush publishes them in ONE message on
// the cluster's fan-out channel, `im:fanout:<db>`, which every node subscribes to: each
// delivers to its own connections of those users (the publisher ignores its own message). So
// a message costs one publish per step whatever its fan-out and however many nodes, and no
// session lookup; every node reads every step's pushes (a hash lookup per recipient).
//
// Deliver to a remote session (SessionInfo::node) buffers the frame; Flush publishes ONE message
// per node, carrying every buffered frame (a shared frame tail once) and its target sessions.
// A buffer above kMaxBufferBytes is published at once, so a step's memory stays bounded. Close
// to a remote session (a kick) is published at once. The receiving node's subscriber thread
// (its own connection, subscribed to its node channel and the fan-out channel, reconnect with
// capped backoff) delivers to its LocalRouter. Messages of both channels reach a node in the
// order they were published.
//
// A publish that fails (a broken connection, a timeout, an error reply) is kept and sent again
// by the router's retry thread every kRetryMs, for up to kRetryForMs; at most kMaxRetryBytes
// of them wait, and beyond that bound, or after that time, the oldest are dropped (logged and
// counted). So a push delayed by a short Redis stall still arrives, possibly after a later one,
// and possibly twice (a publish that timed out may have been delivered): clients ignore a seq
// they have. A node that is not subscribed at the moment of a publish misses it for good; when
// it subscribes again (subscriptions() rises) the server pushes each connected user its newest
// message (core/push_catch_up.h). Either way the message is in the inbox; the client notices
// the seq gap and syncs (docs/protocol.md). Node channels are global to a
// Redis server (not per database): node ids must be unique per Redis server; the fan-out
// channel is per database.
//
// Thread-safety: every method is safe from any thread. Flush and a remote Close block on Redis.
#ifndef IM_ROUTE_REDIS_ROUTER_H_
#define IM_ROUTE_REDIS_ROUTER_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "im/redis.h"
#include "im/result.h"
#include "im/router.h"
#include "route/broadcast_router.h"
#include "route/local_router.h"
#include "route/redis_channel.h"
#include "store/redis/redis_client.h"

namespace im::internal {

// The pub/sub channel of node `id`.
std::string RedisNodeChannel(std::string_view id);
// The fan-out channel of the nodes on database `db`.
std::string RedisFanoutChannel(int db);

class RedisRouter final : public Router, public BroadcastRouter {
 public:
  // A buffer of remote deliveries above this is published before the step ends.
  static constexpr size_t kMaxBufferBytes = 1 << 20;
  // Failed publishes: retried this often, for this long, at most this many bytes waiting.
  static constexpr int kRetryMs = 200;
  static constexpr int64_t kRetryForMs = 30000;
  static constexpr size_t kMaxRetryBytes = 4 << 20;

  // Starts the subscriber of `node_id`'s channel and waits up to redis.connect_timeout_ms for
  // the subscription (a Redis that is down is not an error: the subscriber keeps retrying).
  // 400 for an invalid node id.
  static Result<std::shared_ptr<RedisRouter>> Start(std::shared_ptr<RedisClient> client,
                                                    const RedisOptions& redis,
                                                    std::string node_id);
  ~RedisRouter() override;
  RedisRouter(const RedisRouter&) = delete;
  RedisRouter& operator=(const RedisRouter&) = delete;

  void Attach(const SessionInfo& session, std::shared_ptr<Connection> connection) override {
    local_.Attach(session, std::move(connection));
  }
  void Detach(const SessionInfo& session) override { local_.Detach(session); }
  // Local: sent now. Remote: buffered until Flush; kQueued.
  SendResult Deliver(const SessionInfo& target, const Frame& frame) override;
  void Close(const SessionInfo& target, const Frame& notice, int code,
             std::string_view reason) override;
  void Flush() override;
  size_t LocalCount() const override { return local_.LocalCount(); }

  LocalRouter& local() override { return local_; }
  void Broadcast(const std::shared_ptr<const std::string>& tail, std::string_view skip,
                 const UserPush* pushes, size_t n) override;

  // True while the subscriber holds a confirmed subscription.
  bool subscribed() const { return listener_ != nullptr && listener_->subscribed(); }
  uint64_t subscriptions() const override {
    return listener_ != nullptr ? listener_->subscriptions() : 0;
  }
  // Publishes sent and messages received, for tests and metrics.
  uint64_t publishes() const { return publishes_.load(std::memory_order_relaxed); }
  uint64_t received() const { return received_.load(std::memory_order_relaxed); }

  // One routed item, as carried in a publish.
  struct Item {
    bool close = false;
    SessionInfo target;  // user and session_id are carried
    Frame frame;         // the push, or the close notice (may be empty)
    int code = 0;        // close only
    std::string reason;  // close only
  };
  // The publish payload of `items`; each distinct frame tail is written once.
  static std::string Encode(const std::vector<Item>& items);
  // False for a payload that does not decode (it is then dropped whole).
  static bool Decode(std::string_view payload, std::vector<Item>* items);

  // The pushes of one message on the fan-out channel.
  struct Fanned {
    std::shared_ptr<const std::string> tail;  // ChatPushEncoder::tail()
    std::string skip;                         // the sender's session
    std::vector<std::pair<UserKey, uint64_t>> pushes;  // user, seq
  };
  // A fan-out channel payload from node `origin`; each distinct tail is written once.
  static std::string EncodeFanned(std::string_view origin, const std::vector<Fanned>& fanned);
  // False for a payload that does not decode (it is then dropped whole).
  static bool DecodeFanned(std::string_view payload, std::string* origin,
                           std::vector<Fanned>* fanned);

 private:
  RedisRouter(std::shared_ptr<RedisClient> client, const RedisOptions& redis, std::string node_id);
  bool IsLocal(const SessionInfo& s) const { return s.node.empty() || s.node == node_id_; }
  // Publishes the payloads of `by_node`, then `fanned` on the fan-out channel, in one round trip.
  void Publish(std::map<std::string, std::vector<Item>> by_node,
               std::vector<Fanned> fanned = {});
  void Dispatch(std::string_view payload);
  void DispatchFanned(std::string_view payload);
  struct Failed {
    RedisArgs command;
    std::chrono::steady_clock::time_point since;  // its first attempt
  };
  // Runs the commands in one round trip; the ones that failed wait for the retry thread (the
  // oldest dropped beyond kMaxRetryBytes). `since`: null for a first attempt (a failure is
  // stamped now), else each command's first attempt (they come from the retry thread).
  // Answers how many went through. Counted in im_cluster_publish_retried_total and
  // _dropped_total.
  size_t Run(std::vector<RedisArgs> commands,
             const std::vector<std::chrono::steady_clock::time_point>* since);
  // Drops the oldest failed publish. Under retry_mu_.
  void DropOldestLocked();
  void RetryLoop();  // the retry thread (started at the first failure)

  const std::shared_ptr<RedisClient> client_;
  const RedisOptions redis_;
  const std::string node_id_;
  const std::string fanout_channel_;
  LocalRouter local_;

  std::mutex mu_;
  std::map<std::string, std::vector<Item>> buffered_;  // by node; guarded by mu_
  std::vector<Fanned> fanned_;                         // guarded by mu_
  size_t buffered_bytes_ = 0;                          // both; guarded by mu_

  std::atomic<uint64_t> publishes_{0};
  std::atomic<uint64_t> received_{0};

  std::mutex retry_mu_;
  std::condition_variable retry_cv_;
  std::deque<Failed> failed_;  // oldest first; guarded by retry_mu_
  size_t failed_bytes_ = 0;    // guarded by retry_mu_
  bool stopping_ = false;      // guarded by retry_mu_
  std::thread retrier_;
  std::unique_ptr<RedisChannelListener> listener_;  // set by Start; its thread dispatches
};

}  // namespace im::internal

#endif  // IM_ROUTE_REDIS_ROUTER_H_
