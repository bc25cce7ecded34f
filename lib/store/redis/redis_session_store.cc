// The Redis SessionStore: sessions of every node in one Redis, with the semantics of the memory
// store (lib/store/memory/memory_session_store.cc).
//
// Layout (store/redis/redis_keys.h):
//
//   im:{u:<tenant>/<user>}:sessions   hash: device -> "<expires_ms>\n<session_id>\n<node>\n
//                                     <connection_id>\n<login_ms>"; the key expires with its
//                                     last entry
//   im:{t:<tenant>}:online            sorted set: session_id, scored by its expiry (node clock)
//   im:tenants                        set of the tenants that ever had a session
//
// A user has at most one session per device under either kick policy, so the device is the
// field. Each entry carries its own expiry, in Redis's clock (the scripts read TIME): Redis 7.0
// cannot expire hash fields, so every reader skips expired entries and Put prunes them. Find and
// FindMany read with plain HGETALLs, one TIME per round trip deciding what is live. Put and
// Remove are one Lua script each on the user's hash, so the kick policy and the compare-and-
// delete are atomic whatever node runs them. The per-tenant set serves Count only; it is updated
// in the same round trip as the script (it lives in another slot) and prunes by score, so a
// count is exact while nodes live and forgets a dead node's sessions within the TTL.
//
// Refresh: the store remembers the sessions put through it and, every refresh_interval_ms,
// extends their expiry by session_ttl_ms (one script per session, checking its session id;
// pipelined). A session found displaced or expired is forgotten and reported to on_lost.

#include "store/redis/redis_session_store.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "store/redis/redis_keys.h"
#include "store/redis/redis_shards.h"

namespace im::internal {
namespace {

// Users per FindMany round trip: bounds the pipeline's buffers.
constexpr size_t kFindBatch = 2000;
// Sessions per refresh round trip.
constexpr size_t kRefreshBatch = 500;

// The scripts' prelude: `now` in Redis's clock, in ms (scripts replicate their effects, so
// reading the time is allowed).
constexpr char kLuaNow[] = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
)lua";

// KEYS[1] sessions hash; ARGV: device, session_id, "<node>\n<conn>\n<login>", ttl_ms,
// policy ("device" or "account"). Returns the displaced entries as device, value pairs.
const RedisScript& PutScript() {
  static const RedisScript script(kLuaNow + std::string(R"lua(
local ttl = tonumber(ARGV[4])
local displaced = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local device, value = all[i], all[i + 1]
  local e, sid = string.match(value, '^(%d+)\n([^\n]*)\n')
  if e == nil or tonumber(e) <= now then
    redis.call('HDEL', KEYS[1], device)
  elseif sid == ARGV[2] then
    if device ~= ARGV[1] then redis.call('HDEL', KEYS[1], device) end
  elseif device == ARGV[1] or ARGV[5] == 'account' then
    redis.call('HDEL', KEYS[1], device)
    displaced[#displaced + 1] = device
    displaced[#displaced + 1] = value
  end
end
local expires = string.format('%.0f', now + ttl)
redis.call('HSET', KEYS[1], ARGV[1], expires .. '\n' .. ARGV[2] .. '\n' .. ARGV[3])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return displaced
)lua"));
  return script;
}

// KEYS[1] sessions hash; ARGV: device, session_id. 1 when it deleted a live entry of that id.
const RedisScript& RemoveScript() {
  static const RedisScript script(kLuaNow + std::string(R"lua(
local value = redis.call('HGET', KEYS[1], ARGV[1])
if not value then return 0 end
local e, sid = string.match(value, '^(%d+)\n([^\n]*)\n')
if sid ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
if tonumber(e) <= now then return 0 end
return 1
)lua"));
  return script;
}

// KEYS[1] sessions hash; ARGV: device, session_id, ttl_ms. 1 when the live entry of that id had
// its expiry extended, 0 when it is gone (displaced, removed or expired).
const RedisScript& RefreshScript() {
  static const RedisScript script(kLuaNow + std::string(R"lua(
local ttl = tonumber(ARGV[3])
local value = redis.call('HGET', KEYS[1], ARGV[1])
if not value then return 0 end
local e, sid, rest = string.match(value, '^(%d+)\n([^\n]*)\n(.*)$')
if sid ~= ARGV[2] or tonumber(e) <= now then return 0 end
local expires = string.format('%.0f', now + ttl)
redis.call('HSET', KEYS[1], ARGV[1], expires .. '\n' .. sid .. '\n' .. rest)
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
)lua"));
  return script;
}

constexpr std::string_view kTenantsKey = "im:tenants";

std::string SessionsKey(const UserKey& user) { return UserKeyPrefix(user) + "sessions"; }

std::string OnlineKey(std::string_view tenant) {
  return "im:{t:" + EscapeKeyPart(tenant) + "}:online";
}

int64_t NodeNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool HasControl(std::string_view text) {
  return std::any_of(text.begin(), text.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7F; });
}

template <typename Int>
bool ParseDecimal(std::string_view text, Int* out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

// An entry of the hash back into a SessionInfo and its expiry (Redis's clock, ms).
bool DecodeEntry(const UserKey& user, const std::string& device, std::string_view value,
                 SessionInfo* out, int64_t* expires_ms) {
  std::string_view parts[5];
  for (int i = 0; i < 4; ++i) {
    const size_t nl = value.find('\n');
    if (nl == std::string_view::npos) return false;
    parts[i] = value.substr(0, nl);
    value.remove_prefix(nl + 1);
  }
  parts[4] = value;
  out->user = user;
  out->device = device;
  out->session_id = std::string(parts[1]);
  out->node = std::string(parts[2]);
  return ParseDecimal(parts[0], expires_ms) && ParseDecimal(parts[3], &out->connection_id) && ParseDecimal(parts[4], &out->login_ms);
}

// Device, value pairs (a script's reply, or HGETALL's) as sessions of `user`: those that expire
// after `now_ms` (Redis's clock), or all of them when it is kAllEntries.
constexpr int64_t kAllEntries = -1;
Status DecodeEntries(const UserKey& user, const RedisReply& reply, int64_t now_ms,
                     std::vector<SessionInfo>* out) {
  if (!reply.is_array() || reply.elements.size() % 2 != 0) {
    return Status::Internal("redis: unexpected reply from the sessions hash");
  }
  for (size_t i = 0; i < reply.elements.size(); i += 2) {
    SessionInfo session;
    int64_t expires_ms = 0;
    if (!DecodeEntry(user, reply.elements[i].str, reply.elements[i + 1].str, &session,
                     &expires_ms)) {
      return Status::Internal("redis: corrupt session entry");
    }
    if (now_ms == kAllEntries || expires_ms > now_ms) out->push_back(std::move(session));
  }
  return Status::OK();
}

// TIME's reply in ms.
Result<int64_t> RedisTimeMs(const RedisReply& reply) {
  int64_t seconds = 0;
  int64_t micros = 0;
  if (!reply.is_array() || reply.elements.size() != 2 ||
      !ParseDecimal(reply.elements[0].str, &seconds) ||
      !ParseDecimal(reply.elements[1].str, &micros)) {
    return Status::Internal("redis: unexpected reply to TIME");
  }
  return seconds * 1000 + micros / 1000;
}

Status ReplyStatus(const RedisReply& reply) {
  if (reply.is_error()) return Status::Internal("redis: " + reply.str);
  return Status::OK();
}

// Thread-safety: every method is safe from any thread.
class RedisSessionStore final : public SessionStore {
 public:
  RedisSessionStore(std::shared_ptr<RedisClient> client, RedisSessionOptions options)
      : client_(std::move(client)), options_(std::move(options)) {
    refresher_ = std::thread([this] { RefreshLoop(); });
  }

  ~RedisSessionStore() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    wake_.notify_all();
    refresher_.join();
  }

  Result<std::vector<SessionInfo>> Put(const SessionInfo& session, KickPolicy policy) override {
    if (session.session_id.empty()) return Status::BadRequest("session_id is empty");
    if (HasControl(session.session_id) || HasControl(session.node)) {
      return Status::BadRequest("session_id and node must not hold control characters");
    }
    Result<RedisArgs> put = client_->EvalCommand(
        PutScript(), {SessionsKey(session.user)},
        {session.device, session.session_id,
         session.node + "\n" + std::to_string(session.connection_id) + "\n" +
             std::to_string(session.login_ms),
         std::to_string(options_.session_ttl_ms),
         policy == KickPolicy::kPerAccount ? "account" : "device"});
    if (!put.ok()) return put.status();
    const std::string online = OnlineKey(session.user.tenant);
    Result<std::vector<RedisReply>> replies = client_->Pipeline(
        {std::move(put).value(),
         {"ZADD", online, std::to_string(NodeNowMs() + options_.session_ttl_ms),
          session.session_id},
         {"SADD", std::string(kTenantsKey), session.user.tenant}});
    if (!replies.ok()) return replies.status();
    for (const RedisReply& reply : *replies) {
      if (Status s = ReplyStatus(reply); !s.ok()) return s;
    }
    std::vector<SessionInfo> displaced;
    if (Status s = DecodeEntries(session.user, (*replies)[0], kAllEntries, &displaced); !s.ok()) return s;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const SessionInfo& old : displaced) tracked_.erase(old.session_id);
      tracked_[session.session_id] = session;
    }
    if (!displaced.empty()) {
      RedisArgs zrem = {"ZREM", online};
      for (const SessionInfo& old : displaced) zrem.push_back(old.session_id);
      // The kick already happened: a failure here leaves the displaced ids in the count until
      // their score passes, which is all the count loses.
      (void)client_->Command(zrem);
    }
    return displaced;
  }

  Result<bool> Remove(const SessionInfo& session) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = tracked_.find(session.session_id);
      if (it != tracked_.end() && it->second.user == session.user) tracked_.erase(it);
    }
    Result<RedisArgs> remove = client_->EvalCommand(RemoveScript(), {SessionsKey(session.user)},
                                                    {session.device, session.session_id});
    if (!remove.ok()) return remove.status();
    // The id leaves the count either way: when the compare fails, that session is not online.
    Result<std::vector<RedisReply>> replies = client_->Pipeline(
        {std::move(remove).value(),
         {"ZREM", OnlineKey(session.user.tenant), session.session_id}});
    if (!replies.ok()) return replies.status();
    const RedisReply& removed = (*replies)[0];
    if (Status s = ReplyStatus(removed); !s.ok()) return s;
    if (!removed.is_integer()) return Status::Internal("redis: unexpected reply to a remove");
    return removed.integer == 1;
  }

  Result<std::vector<SessionInfo>> Find(const UserKey& user) override { return FindMany({user}); }

  // One round trip per kFindBatch users: TIME, then HGETALL per user, pipelined. No script:
  // every command reads one key, and the one TIME (Redis's clock, as for Put and Refresh)
  // decides which entries are live.
  Result<std::vector<SessionInfo>> FindMany(const std::vector<UserKey>& users) override {
    std::vector<SessionInfo> out;
    for (size_t begin = 0; begin < users.size(); begin += kFindBatch) {
      const size_t end = std::min(users.size(), begin + kFindBatch);
      std::vector<RedisArgs> commands;
      commands.reserve(end - begin + 1);
      commands.push_back({"TIME"});
      for (size_t i = begin; i < end; ++i) commands.push_back({"HGETALL", SessionsKey(users[i])});
      Result<std::vector<RedisReply>> replies = client_->Pipeline(commands);
      if (!replies.ok()) return replies.status();
      if (Status s = ReplyStatus((*replies)[0]); !s.ok()) return s;
      Result<int64_t> now = RedisTimeMs((*replies)[0]);
      if (!now.ok()) return now.status();
      for (size_t i = begin; i < end; ++i) {
        const RedisReply& reply = (*replies)[i - begin + 1];
        if (Status s = ReplyStatus(reply); !s.ok()) return s;
        if (Status s = DecodeEntries(users[i], reply, *now, &out); !s.ok()) return s;
      }
    }
    return out;
  }

  Result<size_t> Count(std::string_view tenant) override {
    std::vector<std::string> tenants;
    if (!tenant.empty()) {
      tenants.emplace_back(tenant);
    } else {
      Result<RedisReply> all = client_->Command({"SMEMBERS", std::string(kTenantsKey)});
      if (!all.ok()) return all.status();
      for (const RedisReply& name : all->elements) tenants.push_back(name.str);
    }
    if (tenants.empty()) return size_t{0};
    const std::string now = std::to_string(NodeNowMs());
    std::vector<RedisArgs> commands;
    for (const std::string& name : tenants) {
      const std::string key = OnlineKey(name);
      commands.push_back({"ZREMRANGEBYSCORE", key, "-inf", now});
      commands.push_back({"ZCARD", key});
    }
    Result<std::vector<RedisReply>> replies = client_->Pipeline(commands);
    if (!replies.ok()) return replies.status();
    size_t total = 0;
    for (size_t i = 1; i < replies->size(); i += 2) {
      if (Status s = ReplyStatus((*replies)[i]); !s.ok()) return s;
      total += static_cast<size_t>((*replies)[i].integer);
    }
    return total;
  }

 private:
  void RefreshLoop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      wake_.wait_for(lock, std::chrono::milliseconds(options_.refresh_interval_ms));
      if (stopping_) break;
      std::vector<SessionInfo> sessions;
      sessions.reserve(tracked_.size());
      for (const auto& [id, session] : tracked_) sessions.push_back(session);
      lock.unlock();
      for (size_t begin = 0; begin < sessions.size(); begin += kRefreshBatch) {
        RefreshBatch(sessions.data() + begin,
                     std::min(sessions.size(), begin + kRefreshBatch) - begin);
      }
      lock.lock();
    }
  }

  // Extends the expiry of `count` sessions; forgets and reports those that are gone. A failed
  // round trip is tried again at the next interval.
  void RefreshBatch(const SessionInfo* sessions, size_t count) {
    std::vector<RedisArgs> commands;
    for (size_t i = 0; i < count; ++i) {
      Result<RedisArgs> refresh = client_->EvalCommand(
          RefreshScript(), {SessionsKey(sessions[i].user)},
          {sessions[i].device, sessions[i].session_id, std::to_string(options_.session_ttl_ms)});
      if (!refresh.ok()) return;
      commands.push_back(std::move(refresh).value());
    }
    Result<std::vector<RedisReply>> replies = client_->Pipeline(commands);
    if (!replies.ok()) return;
    const std::string score = std::to_string(NodeNowMs() + options_.session_ttl_ms);
    std::vector<RedisArgs> scores;
    std::vector<SessionInfo> lost;
    for (size_t i = 0; i < count; ++i) {
      const RedisReply& reply = (*replies)[i];
      if (!reply.is_integer()) continue;  // an error reply: tried again next time
      if (reply.integer == 1) {
        scores.push_back({"ZADD", OnlineKey(sessions[i].user.tenant), "XX", score,
                          sessions[i].session_id});
        continue;
      }
      std::lock_guard<std::mutex> lock(mu_);
      // Only if it is still tracked: a Remove may have come first.
      if (tracked_.erase(sessions[i].session_id) != 0) lost.push_back(sessions[i]);
    }
    if (!scores.empty()) (void)client_->Pipeline(scores);
    if (options_.on_lost) {
      for (const SessionInfo& session : lost) options_.on_lost(session);
    }
  }

  const std::shared_ptr<RedisClient> client_;
  const RedisSessionOptions options_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mu_
  // The sessions put through this store and not removed, by session id; guarded by mu_.
  std::unordered_map<std::string, SessionInfo> tracked_;
  std::thread refresher_;  // last: started when everything above is ready
};

}  // namespace

Result<std::shared_ptr<SessionStore>> NewRedisSessionStore(std::shared_ptr<RedisClient> client,
                                                           RedisSessionOptions options) {
  if (options.session_ttl_ms < 2 || options.refresh_interval_ms < 1 ||
      options.refresh_interval_ms >= options.session_ttl_ms) {
    return Status::BadRequest(
        "redis sessions: need 1 <= refresh_interval_ms < session_ttl_ms");
  }
  return std::shared_ptr<SessionStore>(
      std::make_shared<RedisSessionStore>(std::move(client), std::move(options)));
}

}  // namespace im::internal

namespace im {

Result<std::shared_ptr<SessionStore>> OpenRedisSessionStore(const RedisOptions& redis,
                                                            RedisSessionOptions sessions) {
  if (internal::IsShardedRedisUrl(redis.url)) {
    return internal::OpenShardedSessionStore(redis, std::move(sessions));
  }
  Result<std::shared_ptr<internal::RedisClient>> client = internal::RedisClient::Create(redis);
  if (!client.ok()) return client.status();
  return internal::NewRedisSessionStore(std::move(client).value(), std::move(sessions));
}

}  // namespace im
