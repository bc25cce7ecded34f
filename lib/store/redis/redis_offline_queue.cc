// The Redis OfflineQueue: per-user inboxes with the semantics of the LevelDB one
// (lib/store/leveldb/leveldb_offline_queue.cc), shared by every node on one Redis.
//
// Layout (store/redis/redis_offline_queue.h; docs/operations.md, Redis backends): per user an
// `inbox` hash (epoch, seq counter, and `ack:<device>` per device: one read serves an ack's check
// of the seq and of the current ack) and an `entries` list ("<mid> <ts>" per retained seq, oldest
// first); earlier versions kept the acks in an `acks` hash, still read for a device with no `ack:`
// field yet; per message one `body` key, whatever the fan-out, with a TTL of the retention period
// (RedisBodyTtlMs); per dedup key one string with a TTL. The retained seqs of an inbox are
// consecutive and end at its counter (an append increments the counter and pushes the entry in one
// script; retention pops from the front only), so first_seq = seq - LLEN + 1 and an entry's seq is
// its list index + first_seq.
//
// Every append, fetch, info, ack and acked is one Lua script (EVALSHA): one round trip, atomic.
// AppendBatch is one script for the whole batch (split only past kMaxScriptRecipients
// recipients, never inside a request), so every request is all or nothing, and the seqs of one
// request are assigned in one step: any two messages are in the same relative order in every
// inbox that holds both. The scripts touch keys in several hash-tag slots (every recipient's,
// the body's, the sweep index): they need every key on one Redis (a standalone primary). A
// Redis Cluster deployment needs another scheme (docs/operations.md says which).
//
// Epochs: an inbox's epoch is "<its own random part>.<instance token>". Each script first
// compares the redis-server's run_id (INFO server; once per connection, kInstancePrelude) with
// the one recorded in im:instance: a
// different one means Redis restarted (or a replica took over) since, and may have lost the
// writes of its last moments, counters included. The script then does nothing and the node
// "adopts" the new process: it keeps the token only when Redis says that nothing acked can have
// been lost (appendonly yes, appendfsync always, not a promoted replica), and otherwise writes a
// new token, which gives every inbox a new epoch: a seq handed out again after a loss is never
// under the epoch it had before. A database without im:instance (new, flushed, restarted
// without persistence) gets a new token too. Acks carry the token they were made under and
// count as 0 under another one.
//
// Retention: an append trims its inboxes to max_inbox at once. Expire pops from the front of
// the inboxes whose oldest entry is older than the retention period (found through
// im:inbox-heads, so a sweep costs what it deletes, not the number of users). Bodies and dedup
// keys are not swept: they expire with their TTLs (a body outlives its entry by up to a minute;
// an entry whose body is gone is skipped by Fetch and reported as `gap`, as in LevelDB), which
// saves two sorted-set writes per message. Expire still drains the indexes of bodies and dedup
// keys that earlier versions wrote (im:message-index, im:dedup-index). Each sweep script is
// bounded (kSweepBudget), so Redis is never blocked for long.

#include "store/redis/redis_offline_queue.h"

#include <sodium.h>

#include <algorithm>
#include <charconv>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "im/offline_queue.h"
#include "im/redis.h"
#include "ops/log.h"
#include "store/append_rules.h"
#include "store/leveldb/coding.h"
#include "store/redis/redis_client.h"
#include "store/redis/redis_keys.h"
#include "store/redis/redis_queue_scripts.h"
#include "store/redis/redis_shards.h"

namespace im {
namespace internal {

std::string RedisInboxKey(const UserKey& user) { return UserKeyPrefix(user) + "inbox"; }
std::string RedisInboxEntriesKey(const UserKey& user) { return UserKeyPrefix(user) + "entries"; }
std::string RedisInboxAcksKey(const UserKey& user) { return UserKeyPrefix(user) + "acks"; }

namespace {

std::string MessageKeyPrefix(std::string_view tenant) {
  return "im:{m:" + EscapeKeyPart(tenant) + "/";
}
constexpr std::string_view kMessageKeySuffix = "}:body";

}  // namespace

namespace {

// A TTL's grace beyond the period it covers, so that clock differences between nodes (and
// Redis) do not cut the period short.
constexpr int64_t kTtlGraceMs = 60'000;
constexpr int64_t kMaxTtlMs = 10LL * 365 * 24 * 3600 * 1000;

}  // namespace

int64_t RedisBodyTtlMs(int64_t retention_ms) {
  const int64_t retention = std::clamp<int64_t>(retention_ms, 1, kMaxTtlMs);
  return retention + std::min(retention, kTtlGraceMs);
}

int64_t RedisDedupTtlMs(int64_t window_ms) {
  return std::clamp<int64_t>(window_ms, 0, kMaxTtlMs) + kTtlGraceMs;
}

std::string RedisMessageKey(std::string_view tenant, uint64_t mid) {
  return MessageKeyPrefix(tenant) + std::to_string(mid) + std::string(kMessageKeySuffix);
}

namespace redis_queue {
namespace {

constexpr size_t kMaxFetchLimit = 500;
// One append script indexes at most this many entries (unless one request alone has more):
// a script blocks Redis while it runs, about a microsecond per command.
constexpr size_t kMaxScriptRecipients = 10000;
// Deletions per sweep script.
constexpr int kSweepBudget = 2000;
constexpr char kBodyVersion = 1;
constexpr char kBodyVersionGseq = 2;

// version | ts | from | to | group | type | body | extra (length-prefixed), then for version 2
// (a message with a gseq: sharded inboxes only) the gseq. Tenant and mid are in the key.
std::string EncodeMessage(const Message& m) {
  std::string out(1, m.gseq != 0 ? kBodyVersionGseq : kBodyVersion);
  coding::PutBigEndian(&out, static_cast<uint64_t>(m.ts));
  for (const std::string* field : {&m.from, &m.to, &m.group, &m.type, &m.body, &m.extra}) {
    coding::PutLengthPrefixed(&out, *field);
  }
  if (m.gseq != 0) coding::PutBigEndian(&out, m.gseq);
  return out;
}

std::shared_ptr<Message> DecodeMessage(std::string_view in, const std::string& tenant,
                                       uint64_t mid) {
  auto m = std::make_shared<Message>();
  uint64_t ts = 0;
  const bool with_gseq = coding::GetVersion(&in, kBodyVersionGseq);
  if ((!with_gseq && !coding::GetVersion(&in, kBodyVersion)) || !coding::GetBigEndian(&in, &ts)) {
    return nullptr;
  }
  for (std::string* field : {&m->from, &m->to, &m->group, &m->type, &m->body, &m->extra}) {
    if (!coding::GetLengthPrefixed(&in, field)) return nullptr;
  }
  if (with_gseq && !coding::GetBigEndian(&in, &m->gseq)) return nullptr;
  if (!in.empty()) return nullptr;
  m->ts = static_cast<TimestampMs>(ts);
  m->tenant = tenant;
  m->mid = mid;
  return m;
}

bool ParseU64(std::string_view text, uint64_t* out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return !text.empty() && ec == std::errc() && end == text.data() + text.size();
}

bool ParseI64(std::string_view text, int64_t* out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return !text.empty() && ec == std::errc() && end == text.data() + text.size();
}

Status Unexpected(std::string_view what) {
  return Status::Internal("redis: unexpected reply to " + std::string(what));
}

// What every RunChecked script answers: an array whose first element is a string.
Status ScriptReplyShape(const RedisReply& reply) {
  if (!reply.is_array() || reply.elements.empty() || !reply.elements[0].is_string()) {
    return Unexpected("a script");
  }
  return Status::OK();
}

// The value of a CONFIG GET reply ("" when refused or absent).
std::string ConfigValue(const RedisReply& reply) {
  if (!reply.is_array() || reply.elements.size() != 2) return "";
  return reply.elements[1].str;
}

// Thread-safety: every method is safe from any thread (the state is in Redis).
class RedisOfflineQueue final : public OfflineQueue {
 public:
  RedisOfflineQueue(std::shared_ptr<RedisClient> client, const OfflineQueueOptions& options)
      : client_(std::move(client)),
        options_(options),
        clock_(options.clock ? options.clock : SystemClock()) {}

  Result<AppendResult> Append(const AppendRequest& request) override {
    return std::move(AppendMany(&request, 1).front());
  }

  std::vector<Result<AppendResult>> AppendBatch(const std::vector<AppendRequest>& batch) override {
    if (batch.empty()) return {};
    return AppendMany(batch.data(), batch.size());
  }

  // Pipelined: batches in flight share one connection (RedisClient::EvalAsync).
  void AppendBatchAsync(std::shared_ptr<const std::vector<AppendRequest>> batch,
                        AppendDone done) override;

  Result<FetchResult> Fetch(const UserKey& user, uint64_t after, size_t limit) override {
    if (limit < 1 || limit > kMaxFetchLimit) return Status::BadRequest("limit must be 1..500");
    return FetchOrInfo(user, after, limit);
  }

  Result<InboxInfo> Info(const UserKey& user) override {
    Result<FetchResult> r = FetchOrInfo(user, 0, 0);
    if (!r.ok()) return r.status();
    InboxInfo info;
    info.epoch = std::move(r->epoch);
    info.first_seq = r->first_seq;
    info.last_seq = r->last_seq;
    return info;
  }

  Status Ack(const UserKey& user, const std::string& device, uint64_t seq) override {
    Result<RedisReply> r = RunChecked(
        AckScript(), {std::string(kRedisInstanceKey), RedisInboxKey(user), RedisInboxAcksKey(user)},
        {device, std::to_string(seq)});
    if (!r.ok()) return r.status();
    if (r->elements[0].str == "beyond" && r->elements.size() == 2) {
      return Status::BadRequest("ack seq " + std::to_string(seq) + " is beyond last_seq " +
                                std::to_string(r->elements[1].integer));
    }
    return Status::OK();
  }

  Result<uint64_t> Acked(const UserKey& user, const std::string& device) override {
    Result<RedisReply> r = RunChecked(
        AckedScript(),
        {std::string(kRedisInstanceKey), RedisInboxKey(user), RedisInboxAcksKey(user)}, {device});
    if (!r.ok()) return r.status();
    if (r->elements.size() != 2 || !r->elements[1].is_integer()) return Unexpected("acked");
    return static_cast<uint64_t>(r->elements[1].integer);
  }

  Result<size_t> Expire(TimestampMs now) override;

 private:
  std::vector<Result<AppendResult>> AppendMany(const AppendRequest* requests, size_t count);
  // Validates the requests (their results: a default AppendResult, or the error) and groups
  // the valid ones into chunks of at most kMaxScriptRecipients recipients (but one request at
  // least), one script each.
  std::vector<std::vector<size_t>> SplitChunks(const AppendRequest* requests, size_t count,
                                               std::vector<Result<AppendResult>>* results);
  // Runs the requests at `indexes` (valid ones) as one script; fills their results.
  void AppendChunk(const AppendRequest* requests, const std::vector<size_t>& indexes,
                   std::vector<Result<AppendResult>>* results);
  // The append script's KEYS and ARGV (without RunChecked's token) for the requests at
  // `indexes`, and the reading of its reply into their results.
  void ChunkCommand(const AppendRequest* requests, const std::vector<size_t>& indexes,
                    RedisArgs* keys, RedisArgs* args);
  void ReadChunk(const AppendRequest* requests, const std::vector<size_t>& indexes,
                 const Result<RedisReply>& reply, std::vector<Result<AppendResult>>* results);
  Result<FetchResult> FetchOrInfo(const UserKey& user, uint64_t after, size_t limit);

  // Eval of a script that starts with kInstancePrelude (keys[0] is im:instance; a fresh token
  // goes first in ARGV). When it reports a redis-server not adopted yet, adopts it and runs
  // the script again. The reply is an array whose first element is a string.
  Result<RedisReply> RunChecked(const RedisScript& script, const RedisArgs& keys, RedisArgs args) {
    args.insert(args.begin(), RandomHexToken(8));
    args.emplace_back(kRedisConnectionCheck);
    for (int attempt = 0; attempt < 3; ++attempt) {
      Result<RedisReply> reply = client_->Eval(script, keys, args);
      if (!reply.ok()) return reply;
      if (Status shape = ScriptReplyShape(*reply); !shape.ok()) return shape;
      if (reply->elements[0].str != "restarted") return reply;
      if (reply->elements.size() != 2) return Unexpected("a script");
      if (Status s = Adopt(reply->elements[1].str); !s.ok()) return s;
    }
    return Status::Unavailable("redis: the server keeps restarting");
  }

  // Records redis-server process `run_id` in im:instance, with a new token (every inbox a new
  // epoch) unless Redis says that an acked write cannot have been lost across the restart.
  Status Adopt(const std::string& run_id) {
    Result<std::vector<RedisReply>> config = client_->Pipeline({{"CONFIG", "GET", "appendonly"},
                                                                {"CONFIG", "GET", "appendfsync"},
                                                                {"INFO", "replication"}});
    if (!config.ok()) return config.status();
    // A promoted replica (second_repl_offset set) may lack the old primary's last writes
    // whatever its own fsync policy. CONFIG refused (renamed, ACL): assume the worst.
    const bool durable = ConfigValue((*config)[0]) == "yes" &&
                         ConfigValue((*config)[1]) == "always" &&
                         (*config)[2].str.find("second_repl_offset:-1") != std::string::npos;
    Result<RedisReply> adopted = client_->Eval(AdoptScript(), {std::string(kRedisInstanceKey)},
                                               {run_id, durable ? "1" : "0", RandomHexToken(8)});
    if (!adopted.ok()) return adopted.status();
    if (adopted->is_integer() && adopted->integer == 2) {
      IM_LOG_WARN(
          "redis {}:{} restarted (run_id {}) without appendonly yes and appendfsync "
          "always, or is a promoted replica: it may have lost acknowledged writes, so "
          "every inbox gets a new epoch and clients resync",
          client_->url().host, client_->url().port, run_id);
    }
    return Status::OK();
  }

  TimestampMs DedupTtlMs() const { return RedisDedupTtlMs(options_.dedup_window_ms); }

  const std::shared_ptr<RedisClient> client_;
  const OfflineQueueOptions options_;
  Clock* const clock_;
};

std::vector<Result<AppendResult>> RedisOfflineQueue::AppendMany(const AppendRequest* requests,
                                                                size_t count) {
  std::vector<Result<AppendResult>> results;
  for (const std::vector<size_t>& chunk : SplitChunks(requests, count, &results)) {
    AppendChunk(requests, chunk, &results);
  }
  return results;
}

std::vector<std::vector<size_t>> RedisOfflineQueue::SplitChunks(
    const AppendRequest* requests, size_t count, std::vector<Result<AppendResult>>* results) {
  results->reserve(count);
  std::vector<std::vector<size_t>> chunks;
  size_t chunk_recipients = 0;
  for (size_t i = 0; i < count; ++i) {
    Status invalid = ValidateAppendRequest(requests[i]);
    results->emplace_back(invalid.ok() ? Result<AppendResult>(AppendResult()) : invalid);
    if (!invalid.ok()) continue;
    const size_t n = requests[i].recipients.size();
    if (chunks.empty() || chunk_recipients + n > kMaxScriptRecipients) {
      chunks.emplace_back();
      chunk_recipients = 0;
    }
    chunks.back().push_back(i);
    chunk_recipients += n;
  }
  return chunks;
}

// Each chunk is one pipelined script call; the batch is answered with the last chunk's reply
// (the pipe answers in call order, so batches are answered in hand-over order too). A batch
// with no valid request still makes a call, so that its answer waits for the batches before.
void RedisOfflineQueue::AppendBatchAsync(std::shared_ptr<const std::vector<AppendRequest>> batch,
                                         AppendDone done) {
  struct Pending {
    std::shared_ptr<const std::vector<AppendRequest>> batch;
    AppendDone done;
    std::vector<Result<AppendResult>> results;
  };
  auto pending = std::make_shared<Pending>();
  pending->batch = std::move(batch);
  pending->done = std::move(done);
  const AppendRequest* requests = pending->batch->data();
  std::vector<std::vector<size_t>> chunks =
      SplitChunks(requests, pending->batch->size(), &pending->results);
  if (chunks.empty()) {
    static const RedisScript kNothing("return {'ok'}");
    client_->EvalAsync(kNothing, {}, {}, [pending](Result<RedisReply>) {
      pending->done(std::move(pending->results));
    });
    return;
  }
  for (size_t c = 0; c < chunks.size(); ++c) {
    RedisArgs keys;
    RedisArgs args;
    ChunkCommand(requests, chunks[c], &keys, &args);
    args.insert(args.begin(), RandomHexToken(8));  // as RunChecked: a token for a new database
    args.emplace_back(kRedisConnectionCheck);
    const bool last = c + 1 == chunks.size();
    client_->EvalAsync(
        AppendScript(), std::move(keys), std::move(args),
        [this, pending, chunk = std::move(chunks[c]), last](Result<RedisReply> reply) {
          if (reply.ok()) {
            if (Status shape = ScriptReplyShape(*reply); !shape.ok()) {
              reply = shape;
            } else if (reply->elements[0].str == "restarted") {
              // Adopt the new redis-server; this batch did not run and cannot be run again in
              // its place (the calls behind it may have run), so its senders retry.
              Status adopted = reply->elements.size() == 2 ? Adopt(reply->elements[1].str)
                                                           : Unexpected("a script");
              reply = adopted.ok() ? Status::Unavailable("redis: restarted; retry") : adopted;
            }
          }
          ReadChunk(pending->batch->data(), chunk, reply, &pending->results);
          if (last) pending->done(std::move(pending->results));
        });
  }
}

void RedisOfflineQueue::AppendChunk(const AppendRequest* requests,
                                    const std::vector<size_t>& indexes,
                                    std::vector<Result<AppendResult>>* results) {
  RedisArgs keys;
  RedisArgs args;
  ChunkCommand(requests, indexes, &keys, &args);
  Result<RedisReply> reply = RunChecked(AppendScript(), keys, std::move(args));
  ReadChunk(requests, indexes, reply, results);
}

void RedisOfflineQueue::ChunkCommand(const AppendRequest* requests,
                                     const std::vector<size_t>& indexes, RedisArgs* keys_out,
                                     RedisArgs* args_out) {
  const TimestampMs now = clock_->NowMs();
  RedisArgs& keys = *keys_out;
  RedisArgs& args = *args_out;
  keys = {std::string(kRedisInstanceKey), std::string(kRedisInboxHeadsKey),
          std::string(kRedisDedupFloorKey)};
  args = {std::to_string(now),          std::to_string(options_.dedup_window_ms),
          std::to_string(DedupTtlMs()), std::to_string(options_.max_inbox),
          RandomHexToken(8) + "-",      std::to_string(indexes.size()),
          std::to_string(RedisBodyTtlMs(options_.retention_ms)), std::string()};
  // The distinct inboxes, numbered from 1 in order of first appearance (their two keys follow
  // the three fixed ones), and per request its recipients as runs of consecutive numbers.
  std::unordered_map<std::string, size_t> distinct;
  std::vector<size_t> numbers;
  RedisArgs request_keys;
  for (size_t i : indexes) {
    const AppendRequest& request = requests[i];
    const Message& message = *request.message;
    request_keys.push_back(RedisMessageKey(message.tenant, message.mid));
    const bool dedup = !request.dedup_key.empty();
    if (dedup) {
      request_keys.push_back("im:{d:" + EscapeKeyPart(message.tenant) + "/" +
                             EscapeKeyPart(request.dedup_key) + "}:dedup");
    }
    numbers.clear();
    for (const UserKey& user : request.recipients) {
      auto [it, added] = distinct.try_emplace(RedisInboxKey(user), distinct.size() + 1);
      if (added) {
        keys.push_back(it->first);
        keys.push_back(RedisInboxEntriesKey(user));
      }
      numbers.push_back(it->second);
    }
    args.push_back(std::to_string(message.mid));
    args.push_back(std::to_string(message.ts));
    args.push_back(EncodeMessage(message));
    args.push_back(std::to_string(request.sender_index));
    args.push_back(dedup ? "1" : "0");
    args.push_back(std::to_string(request.recipients.size()));
    args.push_back(std::to_string(AppendMaxInbox(request, options_.max_inbox)));
    const size_t ranges_at = args.size();
    args.emplace_back();
    size_t ranges = 0;
    for (size_t r = 0; r < numbers.size();) {
      size_t run = 1;
      while (r + run < numbers.size() && numbers[r + run] == numbers[r] + run) ++run;
      args.push_back(std::to_string(numbers[r]));
      args.push_back(std::to_string(run));
      ++ranges;
      r += run;
    }
    args[ranges_at] = std::to_string(ranges);
  }
  args[7] = std::to_string(distinct.size());
  keys.insert(keys.end(), std::make_move_iterator(request_keys.begin()),
              std::make_move_iterator(request_keys.end()));
}

void RedisOfflineQueue::ReadChunk(const AppendRequest* requests,
                                  const std::vector<size_t>& indexes,
                                  const Result<RedisReply>& reply,
                                  std::vector<Result<AppendResult>>* results) {
  auto fail = [&](const Status& status) {
    for (size_t i : indexes) (*results)[i] = status;
  };
  if (!reply.ok()) return fail(reply.status());
  const std::vector<RedisReply>& out = reply->elements;
  size_t pos = 1;
  for (size_t i : indexes) {
    const AppendRequest& request = requests[i];
    AppendResult result;
    if (pos < out.size() && out[pos].str == "dup" && pos + 3 < out.size()) {
      result.duplicate = true;
      if (!ParseU64(out[pos + 1].str, &result.mid) || !ParseI64(out[pos + 2].str, &result.ts) ||
          !ParseU64(out[pos + 3].str, &result.sender_seq)) {
        return fail(Unexpected("an append"));
      }
      pos += 4;
    } else if (pos < out.size() && out[pos].str == "new" &&
               pos + request.recipients.size() < out.size()) {
      result.mid = request.message->mid;
      result.ts = request.message->ts;
      for (size_t r = 0; r < request.recipients.size(); ++r) {
        result.seqs.push_back(static_cast<uint64_t>(out[pos + 1 + r].integer));
      }
      if (request.sender_index >= 0) {
        result.sender_seq = result.seqs[static_cast<size_t>(request.sender_index)];
      }
      pos += 1 + request.recipients.size();
    } else {
      return fail(Unexpected("an append"));
    }
    (*results)[i] = std::move(result);
  }
}

Result<FetchResult> RedisOfflineQueue::FetchOrInfo(const UserKey& user, uint64_t after,
                                                   size_t limit) {
  Result<RedisReply> reply =
      RunChecked(FetchScript(),
                 {std::string(kRedisInstanceKey), RedisInboxKey(user), RedisInboxEntriesKey(user)},
                 {RandomHexToken(8), std::to_string(after), std::to_string(limit),
                  MessageKeyPrefix(user.tenant), std::string(kMessageKeySuffix)});
  if (!reply.ok()) return reply.status();
  const std::vector<RedisReply>& out = reply->elements;
  if (out.size() < 6 || (out.size() - 6) % 3 != 0) return Unexpected("a fetch");
  FetchResult result;
  result.epoch = out[1].str;
  result.first_seq = static_cast<uint64_t>(out[2].integer);
  result.last_seq = static_cast<uint64_t>(out[3].integer);
  result.more = out[4].integer != 0;
  result.gap = out[5].integer != 0;
  result.entries.reserve((out.size() - 6) / 3);
  for (size_t i = 6; i < out.size(); i += 3) {
    uint64_t mid = 0;
    if (!ParseU64(out[i + 1].str, &mid)) return Unexpected("a fetch");
    std::shared_ptr<Message> message = DecodeMessage(out[i + 2].str, user.tenant, mid);
    if (message == nullptr) return Status::Internal("redis: corrupt message " + out[i + 1].str);
    result.entries.push_back(InboxEntry{static_cast<uint64_t>(out[i].integer), std::move(message)});
  }
  return result;
}

Result<size_t> RedisOfflineQueue::Expire(TimestampMs now) {
  const TimestampMs cutoff = SaturatingSub(now, options_.retention_ms);
  size_t dropped = 0;
  for (;;) {
    Result<RedisReply> r = client_->Eval(
        SweepInboxesScript(), {std::string(kRedisInboxHeadsKey)},
        {std::to_string(cutoff), std::to_string(options_.max_inbox), std::to_string(kSweepBudget)});
    if (!r.ok()) return r.status();
    if (!r->is_array() || r->elements.size() != 2) return Unexpected("a sweep");
    dropped += static_cast<size_t>(r->elements[0].integer);
    if (r->elements[1].integer == 0) break;
  }
  // Dedup records made at or before now - window are forgotten from here on, whatever the
  // appending node's clock says (a record is fresh while recorded_ms > now - window).
  const std::string dedup_bound = std::to_string(SaturatingSub(now, options_.dedup_window_ms));
  Result<RedisReply> floor =
      client_->Eval(RaiseDedupFloorScript(), {std::string(kRedisDedupFloorKey)}, {dedup_bound});
  if (!floor.ok()) return floor.status();
  // Bodies and dedup keys expire with their TTLs. The indexes that listed them before they had
  // TTLs (the bodies had none) are drained here as long as they hold anything: bodies with
  // ts < cutoff, dedup keys recorded at or before the bound. On a database without them this is
  // one empty call each.
  const std::pair<std::string_view, std::string> indexes[] = {
      {kRedisLegacyMessageIndexKey, "(" + std::to_string(cutoff)},
      {kRedisLegacyDedupIndexKey, dedup_bound}};
  for (const auto& [index, bound] : indexes) {
    for (;;) {
      Result<RedisReply> r = client_->Eval(SweepIndexScript(), {std::string(index)},
                                           {bound, std::to_string(kSweepBudget)});
      if (!r.ok()) return r.status();
      if (!r->is_integer()) return Unexpected("a sweep");
      if (r->integer < kSweepBudget) break;
    }
  }
  return dropped;
}

}  // namespace
}  // namespace redis_queue

}  // namespace internal

Result<std::shared_ptr<OfflineQueue>> OpenRedisOfflineQueue(const RedisOptions& redis,
                                                            OfflineQueueOptions options) {
  if (internal::IsShardedRedisUrl(redis.url)) {
    return internal::OpenShardedOfflineQueue(redis, options);
  }
  if (sodium_init() < 0) return Status::Internal("libsodium failed to initialize");
  Result<std::shared_ptr<internal::RedisClient>> client = internal::RedisClient::Create(redis);
  if (!client.ok()) return client.status();
  return std::shared_ptr<OfflineQueue>(std::make_shared<internal::redis_queue::RedisOfflineQueue>(
      std::move(client).value(), options));
}

}  // namespace im
