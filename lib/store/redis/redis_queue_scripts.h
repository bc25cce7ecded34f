// The Lua scripts of the Redis OfflineQueue (redis_offline_queue.cc) and of the sharded one
// (sharded_offline_queue.cc): what each takes in KEYS and ARGV and what it answers. The key
// layout is in redis_offline_queue.h; docs/operations.md (Redis backends) describes it.
#ifndef IM_STORE_REDIS_REDIS_QUEUE_SCRIPTS_H_
#define IM_STORE_REDIS_REDIS_QUEUE_SCRIPTS_H_

#include <string_view>

namespace im::internal {

class RedisScript;

// Lua shared by the scripts that keep dedup records, "<mid> <ts> <n> <recorded ms>" (n: the
// sender's seq, or the gseq of a claim). dedup_fresh(key, now, window, floor_key): {mid, ts, n}
// of the record at `key` when it was recorded after now - window and after the floor (read once
// per script), else nil. dedup_record(key, mid, ts, n, now, ttl): writes one with a TTL of
// `ttl` ms.
inline constexpr std::string_view kRedisDedupLua = R"lua(
local dedup_since = nil
local function dedup_fresh(key, now, window, floor_key)
  if not dedup_since then
    dedup_since = now - window
    local floor = tonumber(redis.call('GET', floor_key))
    if floor and floor > dedup_since then dedup_since = floor end
  end
  local d = redis.call('GET', key)
  if not d then return nil end
  local mid, ts, n, recorded = string.match(d, '^(%d+) (%-?%d+) (%d+) (%-?%d+)$')
  if recorded and tonumber(recorded) > dedup_since then return {mid, ts, n} end
  return nil
end
local function dedup_record(key, mid, ts, n, now, ttl)
  redis.call('SET', key, mid .. ' ' .. ts .. ' ' .. n .. ' ' .. now, 'PX', ttl)
end
)lua";

// The bounded sweep of an index of keys scored by time (KEYS: the index; ARGV: the score bound,
// '(' for exclusive, and the budget): deletes the keys scored up to it and returns how many.
const RedisScript& RedisSweepIndexScript();

namespace redis_queue {

// KEYS: instance, heads, dedup floor; then the call's distinct inboxes, each as its inbox and
// entries keys; then per request its body key and its dedup key (when it has one). ARGV: token,
// now, dedup window, dedup TTL, max_inbox, epoch base, request count, body TTL, distinct inbox
// count; then per request: mid, ts, encoded message, sender index, has dedup (0/1), recipient
// count, max_inbox (the request's own: its tenant's; ARGV[5] is the queue's, which the sweep
// keeps), range count, and per range its first distinct inbox (1-based) and length: the
// recipients in order.
// Seqs are handed out in request order, so a call has one relative order in every inbox; each
// inbox costs one HINCRBY and one RPUSH per call however many of the call's messages it gets.
// Returns 'ok' then per request: 'dup', mid, ts, sender seq; or 'new', then one seq per
// recipient.
const RedisScript& AppendScript();

// KEYS: instance, inbox, entries. ARGV: token, epoch for a new inbox, after, limit (0: the
// header only), message key prefix, message key suffix.
// Returns 'ok', epoch, first_seq, last_seq, more, gap, then seq, mid, body per entry.
const RedisScript& FetchScript();

// KEYS: instance, inbox, acks (earlier versions' place). ARGV: token, device, seq. Returns 'ok',
// or 'beyond' and last_seq. The seq and the device's ack come in one read of the inbox hash.
const RedisScript& AckScript();

// KEYS: instance, inbox, acks (earlier versions' place). ARGV: token, device. Returns 'ok' and
// the ack (0 when none, or made under another instance token).
const RedisScript& AckedScript();

// KEYS: instance. ARGV: the run_id seen, keep the token (1/0), a new token. Returns 0 when the
// run_id changed again meanwhile, 1 when adopted with the token kept (or already adopted), 2
// when adopted with a new token.
const RedisScript& AdoptScript();

// KEYS: heads. ARGV: cutoff, max_inbox, budget. Pops entries older than the cutoff from the
// front of the inboxes whose oldest entry is, stopping at the first young one. Returns the
// number dropped and 1 when candidates may remain.
const RedisScript& SweepInboxesScript();

// KEYS: an index (message or dedup). ARGV: the score bound ('(' for exclusive), budget.
// Deletes the indexed keys scored up to it. Returns how many.
const RedisScript& SweepIndexScript();

// KEYS: the dedup floor. ARGV: a new floor. Raises the floor to it when lower.
const RedisScript& RaiseDedupFloorScript();

}  // namespace redis_queue
}  // namespace im::internal

#endif  // IM_STORE_REDIS_REDIS_QUEUE_SCRIPTS_H_
