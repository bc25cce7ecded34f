// RedisNodeRegistry: the nodes of a cluster, each registered in Redis with a TTL heartbeat, so
// any node (or a router choosing gateways) can list the live ones.
//
//   auto registry = RedisNodeRegistry::Start(client, self, {}, [&] { return sessions_online; });
//   Result<std::vector<NodeInfo>> nodes = (*registry)->List();
//
// Layout:
//   im:node:<id>   hash: instance, tcp, ws, version, tag, region, pool, weight, load,
//                  started_ms, heartbeat_ms (the node's clock), and draining ("1", set by
//                  MarkDraining from any node); expires ttl_ms after the last heartbeat
//   im:nodes       sorted set: node ids scored by their expiry (the node's clock); List reads
//                  the hashes of its ids and prunes ids a whole TTL past their score
//
// A node that stops heartbeating (it died, or cannot reach Redis) leaves List within ttl_ms. Two
// live processes cannot hold one id: each registry has a random instance token, and a heartbeat
// for an id that another instance holds is refused (409 at Start; later, the registry stops and
// registered() turns false). A clean stop (the destructor) deregisters at once.
//
// Thread-safety: every method is safe from any thread. The heartbeat runs on a thread of its own.
#ifndef IM_STORE_REDIS_NODE_REGISTRY_H_
#define IM_STORE_REDIS_NODE_REGISTRY_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "im/result.h"
#include "im/types.h"
#include "store/redis/redis_client.h"

namespace im::internal {

struct NodeInfo {
  std::string id;           // 1..64 bytes, no control characters (im::IsValidId)
  std::string tcp_address;  // where clients reach its TCP port, "host:port" ("" = none)
  std::string ws_address;   // where clients reach its WebSocket, "ws://host:port/ws" ("" = none)
  std::string version;      // the libim version it runs
  std::string tag = "stable";  // its version tag for canary routing ([cluster] version_tag)
  std::string region;          // [cluster] region ("" = none)
  std::string pool;            // [cluster] pool ("" = the shared pool)
  int64_t weight = 100;        // [cluster] weight: its share of users within its pool
  bool draining = false;       // marked draining (MarkDraining): routed to no more
  int64_t load = 0;         // what the load callback answered at the last heartbeat
  TimestampMs started_ms = 0;    // when the registry started
  TimestampMs heartbeat_ms = 0;  // the last heartbeat, in the node's clock
};

struct NodeRegistryOptions {
  int64_t ttl_ms = 15'000;       // a node that stops heartbeating leaves List within this
  int64_t heartbeat_ms = 5'000;  // below ttl_ms; a third of it survives two lost heartbeats
};

class RedisNodeRegistry {
 public:
  // Registers `self` (one heartbeat, so the node is listed when this returns) and starts the
  // heartbeat thread. 400 for an invalid id or heartbeat_ms not in 1..ttl_ms-1; 409 conflict
  // when a live node holds the id; 503 when Redis is unreachable. `load` (may be empty: 0) is
  // called at every heartbeat, from the heartbeat thread.
  static Result<std::unique_ptr<RedisNodeRegistry>> Start(std::shared_ptr<RedisClient> client,
                                                          NodeInfo self,
                                                          NodeRegistryOptions options,
                                                          std::function<int64_t()> load);
  // Stops heartbeating and deregisters (a failure to reach Redis leaves the entry to expire).
  ~RedisNodeRegistry();
  RedisNodeRegistry(const RedisNodeRegistry&) = delete;
  RedisNodeRegistry& operator=(const RedisNodeRegistry&) = delete;

  // The live nodes (this one included: those whose hash has not expired), by id.
  Result<std::vector<NodeInfo>> List();

  // Marks node `id` draining in the registry (any node may do it for any other): route answers
  // leave it out at once, and the node itself sees the mark (Draining) and drains. 404 when no
  // live node has that id; 503 when Redis is unreachable.
  static Status MarkDraining(RedisClient& client, const std::string& id);
  // Whether this node is marked draining (503 when Redis is unreachable).
  Result<bool> Draining();

  // Stops heartbeating and leaves the entry to expire within ttl_ms, as a crash would (the
  // destructor then deregisters nothing). For fault tests, and for a node that must not be
  // routed to once its entry runs out.
  void StopHeartbeat();

  // False once another instance took the id over (this node was presumed dead: its heartbeats
  // had stopped for longer than ttl_ms). Such a node should stop serving.
  bool registered() const { return registered_.load(); }

 private:
  RedisNodeRegistry(std::shared_ptr<RedisClient> client, NodeInfo self,
                    NodeRegistryOptions options, std::function<int64_t()> load);
  // One heartbeat: 409 when another instance holds the id.
  Status Heartbeat();
  void Loop();
  void StopThread();

  const std::shared_ptr<RedisClient> client_;
  const NodeInfo self_;
  const NodeRegistryOptions options_;
  const std::function<int64_t()> load_;
  const std::string instance_;  // random, per registry
  std::atomic<bool> registered_{true};
  std::atomic<bool> abandoned_{false};  // StopHeartbeat was called
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace im::internal

#endif  // IM_STORE_REDIS_NODE_REGISTRY_H_
