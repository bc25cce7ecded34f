#include "route/redis_router.h"


#include <algorithm>
#include <cstring>
#include <iterator>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "base/thread_name.h"
#include "ops/log.h"
#include "ops/metrics.h"
#include "protocol/codec.h"

namespace im::internal {
namespace {

// The failed publishes of every router of the process, for GET /metrics.
std::atomic<uint64_t> g_republished{0};
std::atomic<uint64_t> g_publish_dropped{0};

std::string ClusterMetricsText() {
  return "# HELP im_cluster_publish_retried_total Failed cluster publishes sent again\n"
         "# TYPE im_cluster_publish_retried_total counter\n"
         "im_cluster_publish_retried_total " +
         std::to_string(g_republished.load(std::memory_order_relaxed)) +
         "\n# HELP im_cluster_publish_dropped_total Failed cluster publishes given up\n"
         "# TYPE im_cluster_publish_dropped_total counter\n"
         "im_cluster_publish_dropped_total " +
         std::to_string(g_publish_dropped.load(std::memory_order_relaxed)) + "\n";
}


void PutU32(std::string* out, uint32_t v) {
  char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
               static_cast<char>(v)};
  out->append(b, 4);
}
void PutStr(std::string* out, std::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

// Reads what PutU32/PutStr wrote; every read checks the bounds, a short payload fails.
struct Reader {
  std::string_view in;
  bool ok = true;
  uint32_t U32() {
    if (in.size() < 4) {
      ok = false;
      return 0;
    }
    const auto* p = reinterpret_cast<const unsigned char*>(in.data());
    in.remove_prefix(4);
    return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
  }
  std::string Str() {
    const uint32_t n = U32();
    if (!ok || in.size() < n) {
      ok = false;
      return {};
    }
    std::string s(in.substr(0, n));
    in.remove_prefix(n);
    return s;
  }
};

constexpr uint32_t kNoTail = 0xFFFFFFFF;

// Each distinct tail of `tails_of` once: writes the count and the tails to `out`; `index` maps
// a tail to its position.
template <typename T, typename TailOf>
void PutTails(const std::vector<T>& all, TailOf tail_of, std::string* out,
              std::unordered_map<const std::string*, uint32_t>* index) {
  std::vector<const std::string*> tails;
  for (const T& one : all) {
    const std::string* t = tail_of(one);
    if (t != nullptr && index->emplace(t, static_cast<uint32_t>(tails.size())).second) {
      tails.push_back(t);
    }
  }
  PutU32(out, static_cast<uint32_t>(tails.size()));
  for (const std::string* t : tails) PutStr(out, *t);
}

// Reads what PutTails wrote; false when it does not decode.
bool GetTails(Reader& r, std::vector<std::shared_ptr<const std::string>>* tails) {
  const uint32_t count = r.U32();
  // Each tail takes at least 4 bytes: a count beyond that is damage, not a huge allocation.
  if (!r.ok || count > r.in.size() / 4) return false;
  tails->reserve(count);
  for (uint32_t i = 0; i < count && r.ok; ++i) {
    tails->push_back(std::make_shared<const std::string>(r.Str()));
  }
  return r.ok;
}

size_t ItemBytes(const RedisRouter::Item& item) {
  return item.frame.size() + item.target.user.tenant.size() + item.target.user.user.size() +
         item.target.session_id.size() + item.reason.size() + 32;
}

}  // namespace

std::string RedisNodeChannel(std::string_view id) { return "im:node:" + std::string(id); }
std::string RedisFanoutChannel(int db) { return "im:fanout:" + std::to_string(db); }

std::string RedisRouter::Encode(const std::vector<Item>& items) {
  // Tails first, each once: a group fan-out shares one tail among all its recipients.
  std::unordered_map<const std::string*, uint32_t> index;
  std::string out;
  PutTails(items, [](const Item& item) { return item.frame.tail.get(); }, &out, &index);
  PutU32(&out, static_cast<uint32_t>(items.size()));
  for (const Item& item : items) {
    out.push_back(item.close ? 'C' : 'D');
    PutStr(&out, item.target.user.tenant);
    PutStr(&out, item.target.user.user);
    PutStr(&out, item.target.session_id);
    PutStr(&out, item.frame.head);
    PutU32(&out, item.frame.tail ? index.at(item.frame.tail.get()) : kNoTail);
    if (item.close) {
      PutU32(&out, static_cast<uint32_t>(item.code));
      PutStr(&out, item.reason);
    }
  }
  return out;
}

bool RedisRouter::Decode(std::string_view payload, std::vector<Item>* items) {
  Reader r{payload};
  std::vector<std::shared_ptr<const std::string>> tails;
  if (!GetTails(r, &tails)) return false;
  const uint32_t count = r.U32();
  if (!r.ok || count > r.in.size() / 21) return false;  // an item is at least 21 bytes
  items->clear();
  items->reserve(count);
  for (uint32_t i = 0; i < count && r.ok; ++i) {
    if (r.in.empty()) return false;
    const char kind = r.in[0];
    r.in.remove_prefix(1);
    if (kind != 'C' && kind != 'D') return false;
    Item item;
    item.close = kind == 'C';
    item.target.user.tenant = r.Str();
    item.target.user.user = r.Str();
    item.target.session_id = r.Str();
    item.frame.head = r.Str();
    const uint32_t tail = r.U32();
    if (tail != kNoTail) {
      if (tail >= tails.size()) return false;
      item.frame.tail = tails[tail];
    }
    if (item.close) {
      item.code = static_cast<int>(r.U32());
      item.reason = r.Str();
    }
    items->push_back(std::move(item));
  }
  return r.ok && r.in.empty();
}

// origin, tails, then per message: its tail's index, the session to skip, the push count and
// per push tenant, user and seq (two U32s).
std::string RedisRouter::EncodeFanned(std::string_view origin, const std::vector<Fanned>& fanned) {
  std::string out;
  PutStr(&out, origin);
  std::unordered_map<const std::string*, uint32_t> index;
  PutTails(fanned, [](const Fanned& f) { return f.tail.get(); }, &out, &index);
  PutU32(&out, static_cast<uint32_t>(fanned.size()));
  for (const Fanned& f : fanned) {
    PutU32(&out, f.tail ? index.at(f.tail.get()) : kNoTail);
    PutStr(&out, f.skip);
    PutU32(&out, static_cast<uint32_t>(f.pushes.size()));
    for (const auto& [user, seq] : f.pushes) {
      PutStr(&out, user.tenant);
      PutStr(&out, user.user);
      PutU32(&out, static_cast<uint32_t>(seq >> 32));
      PutU32(&out, static_cast<uint32_t>(seq));
    }
  }
  return out;
}

bool RedisRouter::DecodeFanned(std::string_view payload, std::string* origin,
                               std::vector<Fanned>* fanned) {
  Reader r{payload};
  *origin = r.Str();
  std::vector<std::shared_ptr<const std::string>> tails;
  if (!r.ok || !GetTails(r, &tails)) return false;
  const uint32_t count = r.U32();
  if (!r.ok || count > r.in.size() / 12) return false;  // a message is at least 12 bytes
  fanned->clear();
  fanned->reserve(count);
  for (uint32_t i = 0; i < count && r.ok; ++i) {
    Fanned f;
    const uint32_t tail = r.U32();
    if (tail == kNoTail || tail >= tails.size()) return false;
    f.tail = tails[tail];
    f.skip = r.Str();
    const uint32_t n = r.U32();
    if (!r.ok || n > r.in.size() / 16) return false;  // a push is at least 16 bytes
    f.pushes.reserve(n);
    for (uint32_t k = 0; k < n && r.ok; ++k) {
      UserKey user;
      user.tenant = r.Str();
      user.user = r.Str();
      const uint64_t high = r.U32();
      f.pushes.emplace_back(std::move(user), (high << 32) | r.U32());
    }
    fanned->push_back(std::move(f));
  }
  return r.ok && r.in.empty();
}

Result<std::shared_ptr<RedisRouter>> RedisRouter::Start(std::shared_ptr<RedisClient> client,
                                                        const RedisOptions& redis,
                                                        std::string node_id) {
  if (!IsValidId(node_id)) {
    return Status::BadRequest("node id must be 1-64 bytes without control characters");
  }
  static std::once_flag metrics;
  std::call_once(metrics, [] { AddScrapeSource(ClusterMetricsText); });
  std::shared_ptr<RedisRouter> router(
      new RedisRouter(std::move(client), redis, std::move(node_id)));
  RedisRouter* r = router.get();
  router->listener_ = RedisChannelListener::Start(
      router->client_, redis, {RedisNodeChannel(router->node_id_), router->fanout_channel_},
      [r](std::string_view channel, std::string_view payload) {
        if (channel == r->fanout_channel_) {
          r->DispatchFanned(payload);
        } else {
          r->Dispatch(payload);
        }
      });
  return router;
}

RedisRouter::RedisRouter(std::shared_ptr<RedisClient> client, const RedisOptions& redis,
                         std::string node_id)
    : client_(std::move(client)),
      redis_(redis),
      node_id_(std::move(node_id)),
      fanout_channel_(RedisFanoutChannel(client_->url().db)) {}

RedisRouter::~RedisRouter() {
  listener_.reset();  // its thread calls into this router: stop it first
  {
    std::lock_guard<std::mutex> lock(retry_mu_);
    stopping_ = true;
  }
  retry_cv_.notify_all();
  if (retrier_.joinable()) retrier_.join();
}

SendResult RedisRouter::Deliver(const SessionInfo& target, const Frame& frame) {
  if (IsLocal(target)) return local_.Deliver(target, frame);
  Item item;
  item.target.user = target.user;
  item.target.session_id = target.session_id;
  item.frame = frame;
  std::map<std::string, std::vector<Item>> full;
  std::vector<Fanned> fanned;
  {
    std::lock_guard<std::mutex> lock(mu_);
    buffered_bytes_ += ItemBytes(item);
    buffered_[target.node].push_back(std::move(item));
    if (buffered_bytes_ > kMaxBufferBytes) {
      full.swap(buffered_);
      fanned.swap(fanned_);
      buffered_bytes_ = 0;
    }
  }
  if (!full.empty()) Publish(std::move(full), std::move(fanned));
  return SendResult::kQueued;
}

void RedisRouter::Broadcast(const std::shared_ptr<const std::string>& tail,
                            std::string_view skip, const UserPush* pushes, size_t n) {
  if (n == 0) return;
  Fanned f;
  f.tail = tail;
  f.skip = std::string(skip);
  f.pushes.reserve(n);
  size_t bytes = (tail ? tail->size() : 0) + skip.size() + 16;
  for (size_t i = 0; i < n; ++i) {
    f.pushes.emplace_back(*pushes[i].user, pushes[i].seq);
    bytes += pushes[i].user->tenant.size() + pushes[i].user->user.size() + 16;
  }
  std::map<std::string, std::vector<Item>> by_node;
  std::vector<Fanned> full;
  {
    std::lock_guard<std::mutex> lock(mu_);
    buffered_bytes_ += bytes;
    fanned_.push_back(std::move(f));
    if (buffered_bytes_ > kMaxBufferBytes) {
      by_node.swap(buffered_);
      full.swap(fanned_);
      buffered_bytes_ = 0;
    }
  }
  if (!full.empty()) Publish(std::move(by_node), std::move(full));
}

void RedisRouter::Flush() {
  std::map<std::string, std::vector<Item>> batch;
  std::vector<Fanned> fanned;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (buffered_.empty() && fanned_.empty()) return;
    batch.swap(buffered_);
    fanned.swap(fanned_);
    buffered_bytes_ = 0;
  }
  Publish(std::move(batch), std::move(fanned));
}

void RedisRouter::Close(const SessionInfo& target, const Frame& notice, int code,
                        std::string_view reason) {
  if (IsLocal(target)) return local_.Close(target, notice, code, reason);
  Item item;
  item.close = true;
  item.target.user = target.user;
  item.target.session_id = target.session_id;
  item.frame = notice;
  item.code = code;
  item.reason = std::string(reason);
  std::map<std::string, std::vector<Item>> one;
  one[target.node].push_back(std::move(item));
  Publish(std::move(one));
}

void RedisRouter::Publish(std::map<std::string, std::vector<Item>> by_node,
                          std::vector<Fanned> fanned) {
  std::vector<RedisArgs> commands;
  commands.reserve(by_node.size() + 1);
  for (const auto& [node, items] : by_node) {
    commands.push_back({"PUBLISH", RedisNodeChannel(node), Encode(items)});
  }
  if (!fanned.empty()) {
    commands.push_back({"PUBLISH", fanout_channel_, EncodeFanned(node_id_, fanned)});
  }
  Run(std::move(commands), /*since=*/nullptr);
}

namespace {
size_t CommandBytes(const RedisArgs& command) {
  size_t n = 0;
  for (const std::string& a : command) n += a.size() + 16;
  return n;
}
}  // namespace

size_t RedisRouter::Run(std::vector<RedisArgs> commands,
                        const std::vector<std::chrono::steady_clock::time_point>* since) {
  const bool retry = since != nullptr;
  Result<std::vector<RedisReply>> replies = client_->Pipeline(commands);
  publishes_.fetch_add(commands.size(), std::memory_order_relaxed);
  std::vector<Failed> failed;
  std::chrono::steady_clock::time_point now;  // a first attempt's failures: stamped once
  std::string why;
  size_t sent = 0;
  for (size_t i = 0; i < commands.size(); ++i) {
    const bool ok = replies.ok() && i < replies->size() && !(*replies)[i].is_error();
    if (ok) {
      ++sent;
      continue;
    }
    if (why.empty()) {
      why = !replies.ok() ? replies.status().ToString()
            : i < replies->size() ? (*replies)[i].str
                                  : "too few replies";
    }
    if (failed.empty() && !retry) now = std::chrono::steady_clock::now();
    failed.push_back(Failed{std::move(commands[i]), retry ? (*since)[i] : now});
  }
  if (retry && sent > 0) g_republished.fetch_add(sent, std::memory_order_relaxed);
  if (failed.empty()) return sent;
  if (!retry) {
    // Sent again by the retry thread; meanwhile the receivers may notice the seq gap and sync.
    IM_LOG_WARN("cluster: publish to {} node(s) failed, retrying: {}", failed.size(), why);
  }
  std::lock_guard<std::mutex> lock(retry_mu_);
  if (stopping_) return sent;
  if (!retrier_.joinable()) retrier_ = std::thread([this] { RetryLoop(); });
  for (const Failed& f : failed) failed_bytes_ += CommandBytes(f.command);
  if (retry) {
    // The oldest: in front of what failed meanwhile.
    failed_.insert(failed_.begin(), std::make_move_iterator(failed.begin()),
                   std::make_move_iterator(failed.end()));
  } else {
    failed_.insert(failed_.end(), std::make_move_iterator(failed.begin()),
                   std::make_move_iterator(failed.end()));
  }
  size_t dropped = 0;
  for (; failed_bytes_ > kMaxRetryBytes && !failed_.empty(); ++dropped) DropOldestLocked();
  if (dropped > 0) {
    g_publish_dropped.fetch_add(dropped, std::memory_order_relaxed);
    IM_LOG_ERROR("cluster: {} failed publish(es) dropped: over {} bytes waiting for a retry",
                 dropped, kMaxRetryBytes);
  }
  return sent;
}

void RedisRouter::DropOldestLocked() {
  failed_bytes_ -= CommandBytes(failed_.front().command);
  failed_.pop_front();
}

void RedisRouter::RetryLoop() {
  SetUpThisThread("im-redis-retry", 0);
  for (;;) {
    std::vector<RedisArgs> commands;
    std::vector<std::chrono::steady_clock::time_point> since;
    {
      std::unique_lock<std::mutex> lock(retry_mu_);
      retry_cv_.wait_for(lock, std::chrono::milliseconds(kRetryMs), [this] { return stopping_; });
      if (stopping_) return;
      const auto limit = std::chrono::steady_clock::now() - std::chrono::milliseconds(kRetryForMs);
      size_t expired = 0;
      for (; !failed_.empty() && failed_.front().since < limit; ++expired) DropOldestLocked();
      if (expired > 0) {
        g_publish_dropped.fetch_add(expired, std::memory_order_relaxed);
        IM_LOG_ERROR("cluster: {} failed publish(es) dropped after {} ms of retries", expired,
                     kRetryForMs);
      }
      if (failed_.empty()) continue;
      commands.reserve(failed_.size());
      since.reserve(failed_.size());
      for (Failed& f : failed_) {
        commands.push_back(std::move(f.command));
        since.push_back(f.since);
      }
      failed_.clear();
      failed_bytes_ = 0;
    }
    const size_t n = commands.size();
    const size_t sent = Run(std::move(commands), &since);
    if (sent > 0) IM_LOG_INFO("cluster: {} of {} failed publish(es) sent again", sent, n);
  }
}

void RedisRouter::Dispatch(std::string_view payload) {
  std::vector<Item> items;
  if (!Decode(payload, &items)) {
    IM_LOG_WARN("cluster: dropped a message on {} that does not decode ({} bytes)",
                RedisNodeChannel(node_id_), payload.size());
    return;
  }
  received_.fetch_add(1, std::memory_order_relaxed);
  for (const Item& item : items) {
    if (item.close) {
      local_.Close(item.target, item.frame, item.code, item.reason);
    } else {
      local_.Deliver(item.target, item.frame);
    }
  }
}

void RedisRouter::DispatchFanned(std::string_view payload) {
  std::string origin;
  std::vector<Fanned> fanned;
  if (!DecodeFanned(payload, &origin, &fanned)) {
    IM_LOG_WARN("cluster: dropped a message on {} that does not decode ({} bytes)",
                fanout_channel_, payload.size());
    return;
  }
  if (origin == node_id_) return;  // delivered here by the fan-out stage already
  received_.fetch_add(1, std::memory_order_relaxed);
  std::vector<const UserKey*> users;
  std::vector<LocalRouter::Target> targets;
  for (const Fanned& f : fanned) {
    users.clear();
    for (const auto& push : f.pushes) users.push_back(&push.first);
    targets.clear();
    local_.CollectUsers(users.data(), users.size(), f.skip, &targets);
    if (targets.empty()) continue;
    const ChatPushEncoder encoder(f.tail);
    for (const LocalRouter::Target& t : targets) {
      t.connection->Send(encoder.ForSeq(f.pushes[t.index].second));
    }
  }
}

}  // namespace im::internal

namespace im {

Result<std::shared_ptr<Router>> OpenRedisRouter(const RedisOptions& redis, std::string node_id) {
  auto client = internal::RedisClient::Create(redis);
  if (!client.ok()) return client.status();
  auto router = internal::RedisRouter::Start(*client, redis, std::move(node_id));
  if (!router.ok()) return router.status();
  return std::shared_ptr<Router>(*router);
}

}  // namespace im
