#include "core/fanout.h"

#include <algorithm>
#include <utility>

#include "base/thread_name.h"
#include "ops/log.h"
#include "ops/metrics.h"
#include "route/broadcast_router.h"
#include "route/local_router.h"

namespace im::internal {

namespace {

LocalRouter* LocalOf(Router* router) {
  if (auto* local = dynamic_cast<LocalRouter*>(router)) return local;
  if (auto* broadcast = dynamic_cast<BroadcastRouter*>(router)) return &broadcast->local();
  return nullptr;
}

}  // namespace

FanOut::FanOut(Deps deps)
    : deps_(deps),
      local_(LocalOf(deps.router)),
      broadcast_(dynamic_cast<BroadcastRouter*>(deps.router)) {
  if (deps_.slice == 0) deps_.slice = 1;
}

FanOut::~FanOut() { Stop(); }

void FanOut::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ != State::kIdle) return;
  state_ = State::kRunning;
  thread_ = std::thread([this] {
    SetUpThisThread("im-fanout", deps_.thread_slice_us);
    Run();
  });
}

void FanOut::Stop() {
  // Held throughout, so that a Push after the stop delivers after what the stop delivers.
  std::lock_guard<std::mutex> inline_lock(inline_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_ == State::kStopped) return;
    stopping_ = true;
  }
  work_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // The thread delivered everything it saw before it ended; what was handed over before Start,
  // or as it ended, is still queued: deliver it here.
  std::vector<FanOutJob> rest;
  {
    std::lock_guard<std::mutex> lock(mu_);
    state_ = State::kStopped;
    rest.swap(queue_);
  }
  room_cv_.notify_all();
  DeliverHere(rest);
}

void FanOut::Push(std::vector<FanOutJob> jobs) {
  size_t n = 0;
  for (const FanOutJob& j : jobs) n += std::min(j.recipients.size(), j.seqs.size());
  if (n == 0) return;
  bool queued = false;
  {
    std::unique_lock<std::mutex> lock(mu_);
    // Full: wait for room; the thread frees it as it delivers (also while stopping).
    room_cv_.wait(lock, [&] {
      return state_ != State::kRunning || pending_ == 0 || pending_ + n <= deps_.queue_limit;
    });
    pending_ += n;
    if (deps_.metrics != nullptr) deps_.metrics->FanoutQueued(static_cast<int64_t>(n));
    queued = state_ != State::kStopped;
    if (queued) {
      for (FanOutJob& j : jobs) queue_.push_back(std::move(j));
    }
  }
  if (queued) {
    work_cv_.notify_one();
    return;
  }
  // Stopped: no thread delivers any more.
  std::lock_guard<std::mutex> inline_lock(inline_mu_);
  DeliverHere(jobs);
}

void FanOut::DeliverHere(std::vector<FanOutJob>& jobs) {
  Take(jobs);
  while (!active_.empty()) DeliverSlice();
}

size_t FanOut::depth() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pending_;
}

void FanOut::Run() {
  std::vector<FanOutJob> incoming;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (active_.empty()) {
        work_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, and everything delivered
      }
      incoming.swap(queue_);
    }
    if (!incoming.empty()) Take(incoming);
    incoming.clear();
    // One slice of the oldest big job, then whatever arrived meanwhile.
    if (!active_.empty()) DeliverSlice();
  }
}

void FanOut::Take(std::vector<FanOutJob>& incoming) {
  std::vector<PushRef> run;
  size_t run_pushes = 0;
  auto flush = [&] {
    if (run.empty()) return;
    Deliver(run);
    Release(run_pushes);
    run.clear();
    run_pushes = 0;
    smalls_.clear();
  };
  for (FanOutJob& j : incoming) {
    const size_t n = std::min(j.recipients.size(), j.seqs.size());
    if (n == 0) continue;
    if (n > deps_.slice) {
      // Big: delivered slice by slice from DeliverSlice. What came before it goes out first.
      flush();
      Active& a = active_.emplace_back();
      a.job = std::move(j);
      a.index.reserve(n);
      for (size_t k = 0; k < n; ++k) a.index.emplace(a.job.recipients[k], k);
      a.done.assign(n, false);
      a.left = n;
      continue;
    }
    Job& small = smalls_.emplace_back();
    small.job = std::move(j);
    // A receiver with a push still waiting in an older big job gets that one first.
    for (Active& a : active_) {
      if (a.left == 0) continue;
      for (size_t k = 0; k < n; ++k) {
        auto it = a.index.find(small.job.recipients[k]);
        if (it == a.index.end() || a.done[it->second]) continue;
        a.done[it->second] = true;
        --a.left;
        run.push_back(PushRef{&a, it->second});
        ++run_pushes;
      }
    }
    for (size_t k = 0; k < n; ++k) run.push_back(PushRef{&small, k});
    run_pushes += n;
  }
  flush();
  while (!active_.empty() && active_.front().left == 0) active_.pop_front();
}

void FanOut::DeliverSlice() {
  Active& a = active_.front();
  std::vector<PushRef> run;
  const size_t n = a.done.size();
  while (a.next < n && run.size() < deps_.slice) {
    if (!a.done[a.next]) {
      a.done[a.next] = true;
      run.push_back(PushRef{&a, a.next});
    }
    ++a.next;
  }
  a.left -= run.size();
  Deliver(run);
  Release(run.size());
  while (!active_.empty() && active_.front().left == 0) active_.pop_front();
}

void FanOut::DeliverLocal(const std::vector<PushRef>& pushes) {
  std::vector<const UserKey*> users;
  std::vector<LocalRouter::Target> targets;
  std::vector<BroadcastRouter::UserPush> remote;
  uint64_t delivered = 0;
  // One registry pass per run of pushes of the same job (they share the sender to skip).
  for (size_t i = 0; i < pushes.size();) {
    Job& job = *pushes[i].job;
    size_t end = i;
    users.clear();
    for (; end < pushes.size() && pushes[end].job == &job; ++end) {
      users.push_back(&job.job.recipients[pushes[end].k]);
    }
    targets.clear();
    local_->CollectUsers(users.data(), users.size(), job.job.origin_session, &targets);
    for (const LocalRouter::Target& t : targets) {
      if (!job.encoder) job.encoder.emplace(*job.job.message);
      const uint64_t seq = job.job.seqs[pushes[i + t.index].k];
      if (t.connection->Send(job.encoder->ForSeq(seq)) != SendResult::kDropped) ++delivered;
    }
    if (broadcast_ != nullptr) {
      // The other nodes deliver to their own connections of the same users.
      if (!job.encoder) job.encoder.emplace(*job.job.message);
      remote.clear();
      for (size_t p = i; p < end; ++p) {
        remote.push_back({users[p - i], job.job.seqs[pushes[p].k]});
      }
      broadcast_->Broadcast(job.encoder->tail(), job.job.origin_session, remote.data(),
                            remote.size());
    }
    i = end;
  }
  if (broadcast_ != nullptr) deps_.router->Flush();
  deliveries_.fetch_add(delivered, std::memory_order_relaxed);
}

void FanOut::Deliver(const std::vector<PushRef>& pushes) {
  if (local_ != nullptr) return DeliverLocal(pushes);
  std::vector<UserKey> users;
  std::unordered_map<UserKey, std::vector<SessionInfo>, UserKeyHash> online;
  for (const PushRef& p : pushes) {
    const UserKey& u = p.job->job.recipients[p.k];
    if (online.emplace(u, std::vector<SessionInfo>{}).second) users.push_back(u);
  }
  if (users.empty()) return;
  Result<std::vector<SessionInfo>> found = deps_.sessions->FindMany(users);
  if (!found.ok()) {
    // The receivers sync; nothing stored is lost.
    IM_LOG_ERROR("session lookup for fan-out failed: {}", found.status().ToString());
    return;
  }
  if (found->empty()) return;
  for (SessionInfo& s : *found) online[s.user].push_back(std::move(s));
  uint64_t delivered = 0;
  for (const PushRef& p : pushes) {
    Job& job = *p.job;
    auto it = online.find(job.job.recipients[p.k]);
    if (it == online.end()) continue;
    for (const SessionInfo& s : it->second) {
      if (s.session_id == job.job.origin_session) continue;
      if (!job.encoder) job.encoder.emplace(*job.job.message);
      if (deps_.router->Deliver(s, job.encoder->ForSeq(job.job.seqs[p.k])) !=
          SendResult::kDropped) {
        ++delivered;
      }
    }
  }
  deps_.router->Flush();
  deliveries_.fetch_add(delivered, std::memory_order_relaxed);
}

void FanOut::Release(size_t pushes) {
  if (pushes == 0) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_ -= std::min(pending_, pushes);
    if (deps_.metrics != nullptr) deps_.metrics->FanoutQueued(-static_cast<int64_t>(pushes));
  }
  room_cv_.notify_all();
}

}  // namespace im::internal
