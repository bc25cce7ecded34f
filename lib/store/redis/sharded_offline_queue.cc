// The OfflineQueue over several Redis primaries (redis_shards.h): each inbox lives on the
// shard of its user, and one RedisOfflineQueue per shard does the work there.
//
// An append whose recipients span shards runs one append script per shard (in parallel), so
// it is atomic per shard, not across shards. Exactly-once across retries rests on two things:
//
// 1. A claim, taken first, in one script on one shard (the group's shard for a group message,
//    else the shard of the dedup key): the dedup key -> "<mid> <ts> <gseq> <recorded>", with
//    the dedup window's TTL, and for a group message the next gseq of the group (INCR of
//    im:{g:<tenant>/<gid>}:gseq). A retry within the window finds the claim and takes the first
//    attempt's mid, ts and gseq instead of its own.
// 2. Each shard's append is idempotent on the mid: it carries the dedup key "\x01mid:<mid>"
//    (a key no client can make: ids hold no control characters), so a shard that applied the
//    first attempt answers `dup` and appends nothing, and a shard that did not appends now.
//
// So a retry completes what a failed attempt left undone, and answers duplicate (the first
// attempt's mid, ts and sender seq); the recipients it completed get no push for it (they see
// the message at their next sync). Without a retry, a failure between shards leaves the
// message in the inboxes of some shards only. When a retry runs while its first attempt is
// still in flight, whichever reaches a shard first appends there; the first attempt's result
// then has seq 0 for the recipients of the shards the retry filled (AppendResult::seqs).

#include <algorithm>
#include <cstdlib>
#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "im/offline_queue.h"
#include "im/redis.h"
#include "store/append_rules.h"
#include "store/redis/redis_client.h"
#include "store/redis/redis_keys.h"
#include "store/redis/redis_offline_queue.h"
#include "store/redis/redis_queue_scripts.h"
#include "store/redis/redis_shards.h"

namespace im::internal {
namespace {

// KEYS: the dedup floor (kRedisDedupFloorKey), then per claim its claim key (when it has a
// dedup key), then its gseq key (when a group message). ARGV: now, dedup window, TTL, claim
// count; then per claim: mid, ts, has dedup (0/1), has group (0/1). Returns per claim: 'new' or
// 'dup', mid, ts, gseq (0 for none).
const RedisScript& ClaimScript() {
  static const RedisScript script(std::string(kRedisDedupLua) + R"lua(
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local out = {}
local a, k = 5, 2
for c = 1, tonumber(ARGV[4]) do
  local mid, ts = ARGV[a], ARGV[a + 1]
  local dkey, gkey = nil, nil
  if ARGV[a + 2] == '1' then dkey = KEYS[k]; k = k + 1 end
  if ARGV[a + 3] == '1' then gkey = KEYS[k]; k = k + 1 end
  a = a + 4
  local got = nil
  local fresh = dkey and dedup_fresh(dkey, now, window, KEYS[1])
  if fresh then
    got = {'dup', fresh[1], fresh[2], tonumber(fresh[3])}
  else
    local g = 0
    if gkey then g = redis.call('INCR', gkey) end
    if dkey then dedup_record(dkey, mid, ts, g, ARGV[1], ARGV[3]) end
    got = {'new', mid, ts, g}
  end
  for _, v in ipairs(got) do out[#out + 1] = v end
end
return out
)lua");
  return script;
}

// Written by earlier versions, no longer (a claim key has a TTL): claim keys scored by the time
// they were recorded. Expire drains what is left in it (RedisSweepIndexScript).
constexpr std::string_view kLegacyClaimIndexKey = "im:claim-index";
constexpr int kSweepBudget = 2000;

std::string ClaimKey(const std::string& tenant, const std::string& dedup_key) {
  return "im:{d:" + EscapeKeyPart(tenant) + "/" + EscapeKeyPart(dedup_key) + "}:claim";
}

struct Claim {
  bool duplicate = false;
  uint64_t mid = 0;
  TimestampMs ts = 0;
  uint64_t gseq = 0;
};

// Thread-safety: immutable; the shards and clients are safe from any thread.
class ShardedOfflineQueue final : public OfflineQueue {
 public:
  ShardedOfflineQueue(std::vector<std::shared_ptr<OfflineQueue>> shards,
                      std::vector<std::shared_ptr<RedisClient>> clients,
                      const OfflineQueueOptions& options)
      : shards_(std::move(shards)),
        clients_(std::move(clients)),
        ring_(shards_.size()),
        options_(options),
        clock_(options.clock ? options.clock : SystemClock()) {}

  Result<AppendResult> Append(const AppendRequest& request) override {
    return std::move(AppendBatch({request}).front());
  }

  std::vector<Result<AppendResult>> AppendBatch(const std::vector<AppendRequest>& batch) override;

  Result<FetchResult> Fetch(const UserKey& user, uint64_t after, size_t limit) override {
    return Of(user).Fetch(user, after, limit);
  }
  Result<InboxInfo> Info(const UserKey& user) override { return Of(user).Info(user); }
  Status Ack(const UserKey& user, const std::string& device, uint64_t seq) override {
    return Of(user).Ack(user, device, seq);
  }
  Result<uint64_t> Acked(const UserKey& user, const std::string& device) override {
    return Of(user).Acked(user, device);
  }
  // Every shard's sweep, and what is left in its legacy claim index.
  Result<size_t> Expire(TimestampMs now) override {
    size_t dropped = 0;
    const std::string bound = std::to_string(SaturatingSub(now, options_.dedup_window_ms));
    for (size_t s = 0; s < shards_.size(); ++s) {
      Result<size_t> n = shards_[s]->Expire(now);
      if (!n.ok()) return n.status();
      dropped += *n;
      for (;;) {
        Result<RedisReply> r =
            clients_[s]->Eval(RedisSweepIndexScript(), {std::string(kLegacyClaimIndexKey)},
                              {bound, std::to_string(kSweepBudget)});
        if (!r.ok()) return r.status();
        if (!r->is_integer()) return Status::Internal("redis: unexpected reply to a sweep");
        if (r->integer < kSweepBudget) break;
      }
    }
    return dropped;
  }

 private:
  OfflineQueue& Of(const UserKey& user) { return *shards_[ring_.ShardOf(user)]; }

  // The shard that holds the claim of `request` (nullopt-like SIZE_MAX when it needs none).
  size_t ClaimShard(const AppendRequest& request) const {
    const Message& m = *request.message;
    if (!m.group.empty()) return ring_.ShardOf(GroupKey{m.tenant, m.group});
    if (!request.dedup_key.empty()) {
      return ring_.ShardOf("d:" + EscapeKeyPart(m.tenant) + "/" + EscapeKeyPart(request.dedup_key));
    }
    return kNoShard;
  }

  // Takes the claims of `indexes` (all on `shard`), in order, in one script.
  Status TakeClaims(size_t shard, const std::vector<AppendRequest>& batch,
                    const std::vector<size_t>& indexes, std::vector<Claim>* claims);

  static constexpr size_t kNoShard = static_cast<size_t>(-1);

  const std::vector<std::shared_ptr<OfflineQueue>> shards_;
  const std::vector<std::shared_ptr<RedisClient>> clients_;
  const ShardRing ring_;
  const OfflineQueueOptions options_;
  Clock* const clock_;
};

Status ShardedOfflineQueue::TakeClaims(size_t shard, const std::vector<AppendRequest>& batch,
                                       const std::vector<size_t>& indexes,
                                       std::vector<Claim>* claims) {
  const int64_t ttl = RedisDedupTtlMs(options_.dedup_window_ms);
  RedisArgs keys = {std::string(kRedisDedupFloorKey)};
  RedisArgs args = {std::to_string(clock_->NowMs()), std::to_string(options_.dedup_window_ms),
                    std::to_string(ttl), std::to_string(indexes.size())};
  for (size_t i : indexes) {
    const AppendRequest& request = batch[i];
    const Message& m = *request.message;
    const bool dedup = !request.dedup_key.empty();
    const bool group = !m.group.empty();
    if (dedup) keys.push_back(ClaimKey(m.tenant, request.dedup_key));
    if (group) keys.push_back(GroupKeyPrefix(GroupKey{m.tenant, m.group}) + "gseq");
    args.push_back(std::to_string(m.mid));
    args.push_back(std::to_string(m.ts));
    args.push_back(dedup ? "1" : "0");
    args.push_back(group ? "1" : "0");
  }
  Result<RedisReply> reply = clients_[shard]->Eval(ClaimScript(), keys, args);
  if (!reply.ok()) return reply.status();
  const std::vector<RedisReply>& out = reply->elements;
  if (!reply->is_array() || out.size() != 4 * indexes.size()) {
    return Status::Internal("redis: unexpected reply to a claim");
  }
  for (size_t c = 0; c < indexes.size(); ++c) {
    Claim& claim = (*claims)[indexes[c]];
    const RedisReply* e = &out[4 * c];
    claim.duplicate = e[0].str == "dup";
    claim.mid = std::strtoull(e[1].str.c_str(), nullptr, 10);
    claim.ts = std::strtoll(e[2].str.c_str(), nullptr, 10);
    claim.gseq = static_cast<uint64_t>(e[3].integer);
  }
  return Status::OK();
}

std::vector<Result<AppendResult>> ShardedOfflineQueue::AppendBatch(
    const std::vector<AppendRequest>& batch) {
  std::vector<Result<AppendResult>> results;
  results.reserve(batch.size());
  for (const AppendRequest& request : batch) {
    Status invalid = ValidateAppendRequest(request);
    results.emplace_back(invalid.ok() ? Result<AppendResult>(AppendResult()) : invalid);
  }
  // 1. Claims: one script per shard that holds some.
  std::vector<Claim> claims(batch.size());
  std::vector<std::vector<size_t>> claims_of(shards_.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    if (!results[i].ok()) continue;
    const Message& m = *batch[i].message;
    claims[i] = Claim{false, m.mid, m.ts, 0};
    if (size_t s = ClaimShard(batch[i]); s != kNoShard) claims_of[s].push_back(i);
  }
  for (size_t s = 0; s < shards_.size(); ++s) {
    if (claims_of[s].empty()) continue;
    if (Status st = TakeClaims(s, batch, claims_of[s], &claims); !st.ok()) {
      for (size_t i : claims_of[s]) results[i] = st;
    }
  }
  // 2. One sub-batch per shard: each request's recipients on that shard, in request order.
  struct Part {
    size_t request;
    std::vector<size_t> recipients;  // positions in the request's recipients
  };
  std::vector<std::vector<AppendRequest>> sub(shards_.size());
  std::vector<std::vector<Part>> parts(shards_.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    if (!results[i].ok()) continue;
    const AppendRequest& request = batch[i];
    const Claim& claim = claims[i];
    std::shared_ptr<const Message> message = request.message;
    if (claim.mid != message->mid || claim.ts != message->ts || claim.gseq != 0) {
      auto copy = std::make_shared<Message>(*message);
      copy->mid = claim.mid;
      copy->ts = claim.ts;
      copy->gseq = claim.gseq;
      message = std::move(copy);
    }
    std::vector<size_t> first_part(shards_.size(), kNoShard);
    for (size_t r = 0; r < request.recipients.size(); ++r) {
      const size_t s = ring_.ShardOf(request.recipients[r]);
      if (first_part[s] == kNoShard) {
        first_part[s] = sub[s].size();
        AppendRequest part;
        part.message = message;
        part.max_inbox = request.max_inbox;
        if (!request.dedup_key.empty()) part.dedup_key = "\x01mid:" + std::to_string(claim.mid);
        sub[s].push_back(std::move(part));
        parts[s].push_back(Part{i, {}});
      }
      AppendRequest& part = sub[s][first_part[s]];
      if (static_cast<int>(r) == request.sender_index) {
        part.sender_index = static_cast<int>(part.recipients.size());
      }
      part.recipients.push_back(request.recipients[r]);
      parts[s][first_part[s]].recipients.push_back(r);
    }
  }
  std::vector<std::vector<Result<AppendResult>>> out(shards_.size());
  std::vector<std::future<void>> running;
  size_t last = kNoShard;
  for (size_t s = 0; s < shards_.size(); ++s) {
    if (sub[s].empty()) continue;
    if (last != kNoShard) {
      running.push_back(std::async(std::launch::async, [this, &sub, &out, last] {
        out[last] = shards_[last]->AppendBatch(sub[last]);
      }));
    }
    last = s;
  }
  if (last != kNoShard) out[last] = shards_[last]->AppendBatch(sub[last]);
  for (auto& f : running) f.get();
  // 3. Merge.
  for (size_t i = 0; i < batch.size(); ++i) {
    if (!results[i].ok()) continue;
    AppendResult& r = *results[i];
    r.duplicate = claims[i].duplicate;
    r.mid = claims[i].mid;
    r.ts = claims[i].ts;
    r.gseq = claims[i].gseq;
    r.seqs.assign(batch[i].recipients.size(), 0);
  }
  for (size_t s = 0; s < shards_.size(); ++s) {
    for (size_t p = 0; p < parts[s].size(); ++p) {
      const Part& part = parts[s][p];
      Result<AppendResult>& merged = results[part.request];
      if (!merged.ok()) continue;
      const Result<AppendResult>& got = out[s].size() > p
                                            ? out[s][p]
                                            : Result<AppendResult>(Status::Internal(
                                                  "redis: a shard returned too few results"));
      if (!got.ok()) {
        merged = got.status();
        continue;
      }
      if (sub[s][p].sender_index >= 0) merged->sender_seq = got->sender_seq;
      // Done already: by an earlier attempt (this is a retry), or by a concurrent retry that
      // got there first (the seqs of those inboxes stay 0 here).
      if (got->duplicate) continue;
      for (size_t k = 0; k < part.recipients.size(); ++k) {
        merged->seqs[part.recipients[k]] = got->seqs[k];
      }
    }
  }
  for (auto& r : results) {
    if (r.ok() && r->duplicate) r->seqs.clear();
  }
  return results;
}

}  // namespace

Result<std::shared_ptr<OfflineQueue>> OpenShardedOfflineQueue(const RedisOptions& redis,
                                                              OfflineQueueOptions options) {
  Result<std::vector<std::string>> urls = SplitRedisUrls(redis.url);
  if (!urls.ok()) return urls.status();
  std::vector<std::shared_ptr<OfflineQueue>> shards;
  std::vector<std::shared_ptr<RedisClient>> clients;
  for (const std::string& url : *urls) {
    Result<std::shared_ptr<OfflineQueue>> shard =
        OpenRedisOfflineQueue(ShardOptions(redis, url), options);
    if (!shard.ok()) return shard.status();
    Result<std::shared_ptr<RedisClient>> client = RedisClient::Create(ShardOptions(redis, url));
    if (!client.ok()) return client.status();
    shards.push_back(std::move(shard).value());
    clients.push_back(std::move(client).value());
  }
  return std::shared_ptr<OfflineQueue>(
      std::make_shared<ShardedOfflineQueue>(std::move(shards), std::move(clients), options));
}

}  // namespace im::internal
