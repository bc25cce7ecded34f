// The Lua scripts of the Redis OfflineQueue (redis_queue_scripts.h says what each takes and
// answers).
#include "store/redis/redis_queue_scripts.h"

#include <string>
#include <string_view>

#include "store/redis/redis_client.h"

namespace im::internal {
namespace redis_queue {
namespace {

// The prelude of every script that hands out or reports seqs. KEYS[1] is im:instance, ARGV[1]
// a fresh token for a database that has none, the last ARGV kRedisConnectionCheck ('1' on a
// connection that has not passed the check yet). Returns the token, or nil and the run_id when
// this redis-server process has not been adopted yet (the script then answers
// kRedisCheckFailed). The run_id comparison (an INFO) runs once per connection: a restart
// always breaks the connections, so a connection that saw this process adopted keeps seeing
// the same process. The token is read at every call (another node may have written a new one).
constexpr std::string_view kInstancePrelude = R"lua(
local function instance()
  local inst = redis.call('HMGET', KEYS[1], 'run', 'token')
  if ARGV[#ARGV] == '0' and inst[1] and inst[2] then return inst[2] end
  local run = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
  if not inst[1] or not inst[2] then
    redis.call('HSET', KEYS[1], 'run', run, 'token', ARGV[1])
    return ARGV[1]
  end
  if inst[1] ~= run then return nil, run end
  return inst[2]
end
local token, run = instance()
if not token then return {'restarted', run} end
)lua";

}  // namespace

const RedisScript& AppendScript() {
  static const RedisScript script(std::string(kInstancePrelude) + std::string(kRedisDedupLua) +
                                  R"lua(
local now = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local out = {'ok'}
local a = 9
local k = 4
local created = 0
for r = 1, tonumber(ARGV[7]) do
  local mid, ts, body = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local sender, n = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 5])
  local max = tonumber(ARGV[a + 6])
  local body_key = KEYS[k]
  k = k + 1
  local dedup_key = nil
  if ARGV[a + 4] == '1' then
    dedup_key = KEYS[k]
    k = k + 1
  end
  a = a + 7
  local dup = dedup_key and dedup_fresh(dedup_key, now, window, KEYS[3])
  if dup then
    out[#out + 1] = 'dup'
    out[#out + 1] = dup[1]
    out[#out + 1] = dup[2]
    out[#out + 1] = dup[3]
    k = k + 2 * n
  else
    redis.call('SET', body_key, body, 'PX', ARGV[8])
    local entry = mid .. ' ' .. ts
    local sender_seq = 0
    out[#out + 1] = 'new'
    for i = 1, n do
      local inbox, entries = KEYS[k], KEYS[k + 1]
      k = k + 2
      local seq = redis.call('HINCRBY', inbox, 'seq', 1)
      if seq == 1 then
        created = created + 1
        redis.call('HSETNX', inbox, 'epoch', ARGV[6] .. created)
      end
      local len = redis.call('RPUSH', entries, entry)
      if len > max then
        redis.call('LTRIM', entries, len - max, -1)
        local head = redis.call('LINDEX', entries, 0)
        if head then
          redis.call('ZADD', KEYS[2], string.match(head, ' (.*)$'), inbox)
        else
          redis.call('ZREM', KEYS[2], inbox)
        end
      elseif len == 1 then
        redis.call('ZADD', KEYS[2], ts, inbox)
      end
      out[#out + 1] = seq
      if i == sender + 1 then sender_seq = seq end
    end
    if dedup_key then
      dedup_record(dedup_key, mid, ts, sender_seq, ARGV[2], ARGV[4])
    end
  end
end
return out
)lua");
  return script;
}

const RedisScript& FetchScript() {
  static const RedisScript script(std::string(kInstancePrelude) + R"lua(
local meta = redis.call('HMGET', KEYS[2], 'epoch', 'seq')
local epoch = meta[1]
if not epoch then
  epoch = ARGV[2]
  redis.call('HSET', KEYS[2], 'epoch', epoch)
end
local last = tonumber(meta[2] or '0')
local len = redis.call('LLEN', KEYS[3])
local first = last - len + 1
local after, limit = tonumber(ARGV[3]), tonumber(ARGV[4])
local gap = after < last and after + 1 < first
local out = {'ok', epoch .. '.' .. token, len > 0 and first or 0, last, 0, 0}
if limit > 0 and after < last then
  local index = math.max(after + 1, first) - first
  local got = 0
  while index < len and out[5] == 0 do
    local chunk = redis.call('LRANGE', KEYS[3], index, index + limit - got)
    if #chunk == 0 then break end
    for _, e in ipairs(chunk) do
      if got == limit then
        out[5] = 1
        break
      end
      local mid = string.match(e, '^(%d+) ')
      local body = redis.call('GET', ARGV[5] .. mid .. ARGV[6])
      if body then
        out[#out + 1] = first + index
        out[#out + 1] = mid
        out[#out + 1] = body
        got = got + 1
      else
        gap = true
      end
      index = index + 1
    end
  end
end
if gap then out[6] = 1 end
return out
)lua");
  return script;
}

const RedisScript& AckScript() {
  static const RedisScript script(std::string(kInstancePrelude) + R"lua(
local field = 'ack:' .. ARGV[2]
local got = redis.call('HMGET', KEYS[2], 'seq', field)
local last = tonumber(got[1] or '0')
local seq = tonumber(ARGV[3])
if seq > last then return {'beyond', last} end
if seq > 0 then
  local cur = got[2] or redis.call('HGET', KEYS[3], ARGV[2])
  local cur_seq, cur_token = 0, nil
  if cur then cur_seq, cur_token = string.match(cur, '^(%d+) (.*)$') end
  if cur_token ~= token or seq > tonumber(cur_seq) then
    redis.call('HSET', KEYS[2], field, ARGV[3] .. ' ' .. token)
  end
end
return {'ok'}
)lua");
  return script;
}

const RedisScript& AckedScript() {
  static const RedisScript script(std::string(kInstancePrelude) + R"lua(
local cur = redis.call('HGET', KEYS[2], 'ack:' .. ARGV[2])
if not cur then cur = redis.call('HGET', KEYS[3], ARGV[2]) end
if not cur then return {'ok', 0} end
local seq, at = string.match(cur, '^(%d+) (.*)$')
if at ~= token then return {'ok', 0} end
return {'ok', tonumber(seq)}
)lua");
  return script;
}

const RedisScript& AdoptScript() {
  static const RedisScript script(R"lua(
local run = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
if run ~= ARGV[1] then return 0 end
local inst = redis.call('HMGET', KEYS[1], 'run', 'token')
if inst[1] == run and inst[2] then return 1 end
if ARGV[2] == '1' and inst[2] then
  redis.call('HSET', KEYS[1], 'run', run)
  return 1
end
redis.call('HSET', KEYS[1], 'run', run, 'token', ARGV[3])
return 2
)lua");
  return script;
}

const RedisScript& SweepInboxesScript() {
  static const RedisScript script(R"lua(
local cutoff, max, budget = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local dropped = 0
local candidates = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, 100)
for _, inbox in ipairs(candidates) do
  local entries = string.sub(inbox, 1, -6) .. 'entries'
  local len = redis.call('LLEN', entries)
  local head_ts = nil
  while len > 0 do
    head_ts = string.match(redis.call('LINDEX', entries, 0), ' (.*)$')
    if (len <= max and tonumber(head_ts) >= cutoff) or dropped >= budget then break end
    redis.call('LPOP', entries)
    len = len - 1
    dropped = dropped + 1
  end
  if len == 0 then
    redis.call('ZREM', KEYS[1], inbox)
  else
    redis.call('ZADD', KEYS[1], head_ts, inbox)
  end
  if dropped >= budget then return {dropped, 1} end
end
return {dropped, #candidates == 100 and 1 or 0}
)lua");
  return script;
}

const RedisScript& SweepIndexScript() {
  static const RedisScript script(R"lua(
local keys = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #keys > 0 then
  redis.call('DEL', unpack(keys))
  redis.call('ZREM', KEYS[1], unpack(keys))
end
return #keys
)lua");
  return script;
}

const RedisScript& RaiseDedupFloorScript() {
  static const RedisScript script(R"lua(
local floor = tonumber(redis.call('GET', KEYS[1]))
if not floor or floor < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return 0
)lua");
  return script;
}

}  // namespace redis_queue

const RedisScript& RedisSweepIndexScript() { return redis_queue::SweepIndexScript(); }

}  // namespace im::internal
