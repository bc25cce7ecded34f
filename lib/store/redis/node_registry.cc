#include "store/redis/node_registry.h"

#include "store/redis/redis_keys.h"

#include <sodium.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <string_view>
#include <utility>

namespace im::internal {
namespace {

constexpr std::string_view kNodesKey = "im:nodes";

// KEYS[1] the node's hash; ARGV: instance, ttl_ms, then field, value pairs. 0 when another
// instance holds the id, else 1.
const RedisScript& HeartbeatScript() {
  static const RedisScript script(R"lua(
local holder = redis.call('HGET', KEYS[1], 'instance')
if holder and holder ~= ARGV[1] then return 0 end
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('HSET', KEYS[1], 'instance', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
)lua");
  return script;
}

// KEYS[1] the node's hash. 1 after marking a live node draining, 0 when there is none.
const RedisScript& MarkDrainingScript() {
  static const RedisScript script(R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'draining', '1')
return 1
)lua");
  return script;
}

// KEYS[1] the node's hash; ARGV[1] instance. Deletes it only when this instance holds it.
const RedisScript& DeregisterScript() {
  static const RedisScript script(R"lua(
if redis.call('HGET', KEYS[1], 'instance') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
)lua");
  return script;
}

std::string NodeKey(std::string_view id) { return "im:node:" + std::string(id); }

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t ToInt(const std::string& text) {
  int64_t value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

}  // namespace

Result<std::unique_ptr<RedisNodeRegistry>> RedisNodeRegistry::Start(
    std::shared_ptr<RedisClient> client, NodeInfo self, NodeRegistryOptions options,
    std::function<int64_t()> load) {
  if (!IsValidId(self.id)) return Status::BadRequest("node id must be 1..64 bytes of UTF-8");
  if (options.heartbeat_ms < 1 || options.heartbeat_ms >= options.ttl_ms) {
    return Status::BadRequest("node registry: need 1 <= heartbeat_ms < ttl_ms");
  }
  if (sodium_init() < 0) return Status::Internal("libsodium failed to start");
  self.started_ms = NowMs();
  std::unique_ptr<RedisNodeRegistry> registry(
      new RedisNodeRegistry(std::move(client), std::move(self), options, std::move(load)));
  if (Status s = registry->Heartbeat(); !s.ok()) {
    registry->registered_ = false;  // nothing to deregister
    return s;
  }
  registry->thread_ = std::thread([r = registry.get()] { r->Loop(); });
  return registry;
}

RedisNodeRegistry::RedisNodeRegistry(std::shared_ptr<RedisClient> client, NodeInfo self,
                                     NodeRegistryOptions options, std::function<int64_t()> load)
    : client_(std::move(client)),
      self_(std::move(self)),
      options_(options),
      load_(std::move(load)),
      instance_(RandomHexToken(16)) {}

void RedisNodeRegistry::StopThread() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void RedisNodeRegistry::StopHeartbeat() {
  abandoned_ = true;
  StopThread();
}

RedisNodeRegistry::~RedisNodeRegistry() {
  StopThread();
  if (!registered_.load() || abandoned_.load()) return;
  Result<RedisArgs> remove = client_->EvalCommand(DeregisterScript(), {NodeKey(self_.id)},
                                                  {instance_});
  if (!remove.ok()) return;  // unreachable: the entry expires by itself
  (void)client_->Pipeline(
      {std::move(remove).value(), {"ZREM", std::string(kNodesKey), self_.id}});
}

Status RedisNodeRegistry::Heartbeat() {
  const int64_t now = NowMs();
  const int64_t load = load_ ? load_() : 0;
  Result<RedisArgs> beat = client_->EvalCommand(
      HeartbeatScript(), {NodeKey(self_.id)},
      {instance_, std::to_string(options_.ttl_ms), "tcp", self_.tcp_address, "ws",
       self_.ws_address, "version", self_.version, "tag", self_.tag, "region", self_.region,
       "pool", self_.pool, "weight", std::to_string(self_.weight), "load", std::to_string(load), "started_ms",
       std::to_string(self_.started_ms), "heartbeat_ms", std::to_string(now)});
  if (!beat.ok()) return beat.status();
  Result<std::vector<RedisReply>> replies = client_->Pipeline(
      {std::move(beat).value(),
       {"ZADD", std::string(kNodesKey), std::to_string(now + options_.ttl_ms), self_.id}});
  if (!replies.ok()) return replies.status();
  const RedisReply& reply = (*replies)[0];
  if (reply.is_error()) return Status::Internal("redis: " + reply.str);
  if (reply.is_integer() && reply.integer == 0) {
    return Status::Conflict("node id " + self_.id + " is held by another live node");
  }
  return Status::OK();
}

void RedisNodeRegistry::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    wake_.wait_for(lock, std::chrono::milliseconds(options_.heartbeat_ms));
    if (stopping_) break;
    lock.unlock();
    // A 503 is tried again at the next beat; a conflict ends the registration for good.
    const Status s = Heartbeat();
    lock.lock();
    if (s.code() == Code::kConflict) {
      registered_ = false;
      break;
    }
  }
}

Result<std::vector<NodeInfo>> RedisNodeRegistry::List() {
  const std::string nodes(kNodesKey);
  // A node is live while its hash is (Redis expires it, in Redis's clock). The set only lists
  // candidates; ids a whole TTL past their expiry there are surely gone and are pruned.
  Result<std::vector<RedisReply>> ids = client_->Pipeline(
      {{"ZREMRANGEBYSCORE", nodes, "-inf", std::to_string(NowMs() - options_.ttl_ms)},
       {"ZRANGE", nodes, "0", "-1"}});
  if (!ids.ok()) return ids.status();
  const RedisReply& members = (*ids)[1];
  if (members.is_error()) return Status::Internal("redis: " + members.str);
  std::vector<RedisArgs> reads;
  for (const RedisReply& id : members.elements) {
    reads.push_back({"HMGET", NodeKey(id.str), "tcp", "ws", "version", "load", "started_ms",
                     "heartbeat_ms", "tag", "region", "pool", "weight", "draining"});
  }
  Result<std::vector<RedisReply>> fields = client_->Pipeline(reads);
  if (!fields.ok()) return fields.status();
  std::vector<NodeInfo> out;
  for (size_t i = 0; i < reads.size(); ++i) {
    const RedisReply& f = (*fields)[i];
    if (!f.is_array() || f.elements.size() != 11) continue;
    if (f.elements[5].is_nil()) continue;  // its hash expired: the node is gone
    NodeInfo node;
    node.id = members.elements[i].str;
    node.tcp_address = f.elements[0].str;
    node.ws_address = f.elements[1].str;
    node.version = f.elements[2].str;
    node.load = ToInt(f.elements[3].str);
    node.started_ms = ToInt(f.elements[4].str);
    node.heartbeat_ms = ToInt(f.elements[5].str);
    node.tag = f.elements[6].str;
    node.region = f.elements[7].str;
    node.pool = f.elements[8].str;
    node.weight = f.elements[9].is_nil() ? 100 : ToInt(f.elements[9].str);
    node.draining = f.elements[10].str == "1";
    out.push_back(std::move(node));
  }
  std::sort(out.begin(), out.end(),
            [](const NodeInfo& a, const NodeInfo& b) { return a.id < b.id; });
  return out;
}

Status RedisNodeRegistry::MarkDraining(RedisClient& client, const std::string& id) {
  if (!IsValidId(id)) return Status::BadRequest("node id must be 1..64 bytes of UTF-8");
  Result<RedisReply> r = client.Eval(MarkDrainingScript(), {NodeKey(id)}, {});
  if (!r.ok()) return r.status();
  if (r->is_error()) return Status::Internal("redis: " + r->str);
  if (r->is_integer() && r->integer == 1) return Status::OK();
  return Status::NotFound("no live node has id '" + id + "'");
}

Result<bool> RedisNodeRegistry::Draining() {
  Result<std::vector<RedisReply>> r = client_->Pipeline({{"HGET", NodeKey(self_.id), "draining"}});
  if (!r.ok()) return r.status();
  return (*r)[0].str == "1";
}

}  // namespace im::internal
