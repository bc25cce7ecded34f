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
local nd = tonumber(ARGV[9])
local out = {'ok'}
local a = 10
local k = 4 + 2 * nd
-- Pass 1, per request in order: the dedup check, the body, and how many entries each inbox
-- gets. A dedup key claimed by an earlier request of this call makes a duplicate of it.
local reqs = {}
local count = {}
local cap = {}
local claimed = {}
for r = 1, tonumber(ARGV[7]) do
  local req = {mid = ARGV[a], ts = ARGV[a + 1], sender = tonumber(ARGV[a + 3]),
               at = a + 8, ranges = tonumber(ARGV[a + 7])}
  local body, max = ARGV[a + 2], tonumber(ARGV[a + 6])
  local body_key = KEYS[k]
  k = k + 1
  if ARGV[a + 4] == '1' then
    req.dedup = KEYS[k]
    k = k + 1
  end
  a = req.at + 2 * req.ranges
  req.first = req.dedup and claimed[req.dedup]
  if not req.first then
    req.dup = req.dedup and dedup_fresh(req.dedup, now, window, KEYS[3])
    if not req.dup then
      redis.call('SET', body_key, body, 'PX', ARGV[8])
      if req.dedup then claimed[req.dedup] = req end
      for j = req.at, req.at + 2 * req.ranges - 1, 2 do
        local from = tonumber(ARGV[j])
        for d = from, from + tonumber(ARGV[j + 1]) - 1 do
          count[d] = (count[d] or 0) + 1
          if not cap[d] or max < cap[d] then cap[d] = max end
        end
      end
    end
  end
  reqs[r] = req
end
-- Pass 2, per inbox: its seqs in one HINCRBY.
local next_seq = {}
local created = 0
for d = 1, nd do
  local c = count[d]
  if c then
    local last = redis.call('HINCRBY', KEYS[2 + 2 * d], 'seq', c)
    if last == c then
      created = created + 1
      redis.call('HSETNX', KEYS[2 + 2 * d], 'epoch', ARGV[6] .. created)
    end
    next_seq[d] = last - c
  end
end
-- Pass 3, per request in order: the seqs, the entries, the dedup records.
local pushes = {}
for r = 1, #reqs do
  local req = reqs[r]
  local dup = req.dup
  if req.first then dup = {req.first.mid, req.first.ts, tostring(req.first.sender_seq)} end
  if dup then
    out[#out + 1] = 'dup'
    out[#out + 1] = dup[1]
    out[#out + 1] = dup[2]
    out[#out + 1] = dup[3]
  else
    local entry = req.mid .. ' ' .. req.ts
    local i = 0
    req.sender_seq = 0
    out[#out + 1] = 'new'
    for j = req.at, req.at + 2 * req.ranges - 1, 2 do
      local from = tonumber(ARGV[j])
      for d = from, from + tonumber(ARGV[j + 1]) - 1 do
        local seq = next_seq[d] + 1
        next_seq[d] = seq
        local list = pushes[d]
        if not list then
          list = {ts = req.ts}
          pushes[d] = list
        end
        list[#list + 1] = entry
        out[#out + 1] = seq
        if i == req.sender then req.sender_seq = seq end
        i = i + 1
      end
    end
    if req.dedup then
      dedup_record(req.dedup, req.mid, req.ts, req.sender_seq, ARGV[2], ARGV[4])
    end
  end
end
-- Pass 4, per inbox: its entries in one RPUSH (slices of 1000), then the trim to its
-- max_inbox and the heads index.
for d = 1, nd do
  local list = pushes[d]
  if list then
    local inbox, entries = KEYS[2 + 2 * d], KEYS[3 + 2 * d]
    local len = 0
    for s = 1, #list, 1000 do
      len = redis.call('RPUSH', entries, unpack(list, s, math.min(s + 999, #list)))
    end
    if len > cap[d] then
      redis.call('LTRIM', entries, len - cap[d], -1)
      local head = redis.call('LINDEX', entries, 0)
      if head then
        redis.call('ZADD', KEYS[2], string.match(head, ' (.*)$'), inbox)
      else
        redis.call('ZREM', KEYS[2], inbox)
      end
    elseif len == #list then
      redis.call('ZADD', KEYS[2], list.ts, inbox)
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
