#include "core/push_catch_up.h"

#include <asio/post.hpp>

#include <algorithm>
#include <string>
#include <utility>

#include "ops/log.h"
#include "ops/metrics.h"
#include "protocol/codec.h"
#include "route/local_router.h"

namespace im::internal {
namespace {

// The catch-up pushes of every server of the process, for GET /metrics.
std::atomic<uint64_t> g_pushed{0};

std::string CatchUpMetricsText() {
  return "# HELP im_cluster_catchup_pushes_total Newest messages pushed again after a lost "
         "cluster subscription\n"
         "# TYPE im_cluster_catchup_pushes_total counter\n"
         "im_cluster_catchup_pushes_total " +
         std::to_string(g_pushed.load(std::memory_order_relaxed)) + "\n";
}

}  // namespace

PushCatchUp::PushCatchUp(Deps deps) : deps_(deps) {
  static std::once_flag metrics;
  std::call_once(metrics, [] { AddScrapeSource(CatchUpMetricsText); });
}

void PushCatchUp::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_) return;
  again_ = true;
  if (posted_) return;  // the slice under way posts the next, from a new snapshot
  posted_ = true;
  asio::post(*deps_.pool, [this] { RunSlice(); });
}

void PushCatchUp::Stop() {
  std::unique_lock<std::mutex> lock(mu_);
  stopped_ = true;
  idle_.wait(lock, [this] { return !posted_; });
}

bool PushCatchUp::running() const {
  std::lock_guard<std::mutex> lock(mu_);
  return posted_;
}

void PushCatchUp::RunSlice() {
  std::vector<UserKey> slice;
  bool again = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    again = again_ && !stopped_;
    again_ = false;
  }
  if (again) {
    std::vector<UserKey> users = deps_.local->Users();  // outside mu_: it takes shard locks
    std::lock_guard<std::mutex> lock(mu_);
    users_ = std::move(users);
    next_ = 0;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    const size_t end = std::min(users_.size(), next_ + kSlice);
    if (!stopped_) slice.assign(users_.begin() + next_, users_.begin() + end);
    next_ = end;
  }
  for (const UserKey& user : slice) CatchUp(user);
  std::lock_guard<std::mutex> lock(mu_);
  if (!stopped_ && (again_ || next_ < users_.size())) {
    asio::post(*deps_.pool, [this] { RunSlice(); });
    return;
  }
  users_.clear();
  users_.shrink_to_fit();
  next_ = 0;
  posted_ = false;
  idle_.notify_all();
}

void PushCatchUp::CatchUp(const UserKey& user) {
  users_read_.fetch_add(1, std::memory_order_relaxed);
  Result<InboxInfo> info = deps_.inbox->Info(user);
  if (!info.ok()) {
    IM_LOG_WARN("cluster catch-up: inbox of {}/{} not read: {}", user.tenant, user.user,
                info.status().ToString());
    return;
  }
  std::vector<LocalRouter::Target> targets;
  const UserKey* key = &user;
  deps_.local->CollectUsers(&key, 1, "", &targets);
  if (deps_.move_if_epoch_stale) {
    targets.erase(std::remove_if(targets.begin(), targets.end(),
                                 [&](const LocalRouter::Target& t) {
                                   return deps_.move_if_epoch_stale(*t.connection, info->epoch);
                                 }),
                  targets.end());
  }
  if (targets.empty() || info->last_seq == 0) return;
  const uint64_t after = info->last_seq > kLookBack ? info->last_seq - kLookBack : 0;
  Result<FetchResult> page = deps_.inbox->Fetch(user, after, kLookBack);
  if (!page.ok()) {
    IM_LOG_WARN("cluster catch-up: inbox of {}/{} not read: {}", user.tenant, user.user,
                page.status().ToString());
    return;
  }
  const InboxEntry* newest = nullptr;
  for (auto it = page->entries.rbegin(); it != page->entries.rend(); ++it) {
    if (it->message && it->message->from != user.user) {
      newest = &*it;
      break;
    }
  }
  if (newest == nullptr) return;
  const Frame frame = ChatPushEncoder(*newest->message).ForSeq(newest->seq);
  for (LocalRouter::Target& t : targets) {
    if (t.connection->Send(frame) != SendResult::kDropped) {
      pushed_.fetch_add(1, std::memory_order_relaxed);
      g_pushed.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

}  // namespace im::internal
