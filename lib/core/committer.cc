#include "core/committer.h"

#include <algorithm>
#include <utility>

#include "base/thread_name.h"
#include "ops/log.h"
#include "ops/metrics.h"

namespace im::internal {

namespace {

// A user's own sends (from any of its sessions) share a lane; server-side sends (no session:
// host API, REST) have lanes of their own, per sender name.
std::string LaneOf(const PendingSend& p) {
  std::string key(1, p.origin_session.empty() ? 's' : 'u');
  key += p.message->tenant;
  key += '\x1f';
  key += p.sender;
  return key;
}

}  // namespace

Committer::Committer(Deps deps)
    : deps_(deps),
      mids_(deps.node_number),
      fanout_(FanOut::Deps{deps.sessions, deps.router, deps.fanout_queue_limit,
                           deps.fanout_slice, deps.metrics, deps.thread_slice_us}) {
  // Zero would refuse or stall everything; one is the least that works.
  deps_.batch_max = std::max<size_t>(deps_.batch_max, 1);
  deps_.lane_limit = std::max<size_t>(deps_.lane_limit, 1);
  deps_.batch_recipients = std::max<size_t>(deps_.batch_recipients, 1);
  segments_.emplace_back();
}

Committer::~Committer() { Stop(); }

void Committer::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_ || stopping_) return;
  started_ = true;
  fanout_.Start();
  thread_ = std::thread([this] {
    SetUpThisThread("im-commit", deps_.thread_slice_us);
    Run();
  });
}

void Committer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // Anything still queued (never started, or submitted during the stop) is refused, not lost:
  // the sender was not acked and retries.
  std::deque<Item> rest;
  {
    std::lock_guard<std::mutex> lock(mu_);
    rest.swap(intake_);
    lane_depth_.clear();
    queued_ = 0;
  }
  Stage(rest);
  for (Segment& segment : segments_) {
    for (auto& [key, lane] : segment.lanes) {
      for (PendingSend& p : lane.sends) {
        if (p.done) p.done(Status::Unavailable("server stopping"));
      }
    }
  }
  for (Parked& p : parked_) {
    if (p.send.done) p.send.done(Status::Unavailable("server stopping"));
  }
  segments_.clear();
  segments_.emplace_back();
  parked_.clear();
  // Then the pushes of everything stored.
  fanout_.Stop();
}

Status Committer::Enqueue(Item item) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return Status::Unavailable("server stopping");
    if (queued_ >= deps_.queue_limit) {
      return Status::Unavailable("the server is overloaded; retry with the same cid");
    }
    if (!item.op) {
      size_t& lane = lane_depth_[item.lane];
      if (lane >= deps_.lane_limit) {
        if (deps_.metrics != nullptr) deps_.metrics->CommitLaneRejected();
        return Status::Unavailable(
                   "too many of your sends are waiting to be stored; retry with the same cid")
            .WithRetryAfter(kLaneRetryMs);
      }
      ++lane;
    }
    ++queued_;
    intake_.push_back(std::move(item));
  }
  cv_.notify_one();
  return Status::OK();
}

Status Committer::Submit(PendingSend send, bool store_here) {
  if (!send.message) return Status::Internal("a send without a message");
  if (store_here && TryStoreHere(send)) return Status::OK();
  std::string lane = LaneOf(send);
  return Enqueue(Item{std::move(send), nullptr, std::move(lane)});
}

bool Committer::TryStoreHere(PendingSend& send) {
  // 1:1 only: a group send reads its members in the committer's order with the barriers.
  if (!send.message->group.empty() || fanout_.depth() != 0) return false;
  {
    std::lock_guard<std::mutex> flight(flight_mu_);
    if (in_flight_ != 0) return false;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Idle and nothing queued: every send and barrier submitted so far is stored, so this one
    // goes next in every order the committer keeps; whatever comes meanwhile waits for it.
    if (stopping_ || !idle_ || borrowed_ || !intake_.empty()) return false;
    borrowed_ = true;
  }
  std::vector<PendingSend> batch;
  batch.push_back(std::move(send));
  Commit(batch);
  {
    std::lock_guard<std::mutex> lock(mu_);
    borrowed_ = false;
  }
  cv_.notify_all();
  return true;
}

Status Committer::SubmitOp(PendingOp op) {
  if (!op) return Status::Internal("an empty membership change");
  return Enqueue(Item{PendingSend{}, std::move(op), {}});
}

size_t Committer::depth() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queued_;
}

void Committer::Run() {
  std::deque<Item> incoming;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      const bool busy = HasWork();
      if (!busy) {
        idle_ = true;
        cv_.wait(lock, [this] { return stopping_ || !intake_.empty(); });
      }
      // A send being stored on another thread (TryStoreHere) goes before anything queued.
      cv_.wait(lock, [this] { return !borrowed_; });
      idle_ = false;
      if (!busy && intake_.empty()) break;  // stopping, and everything taken
      incoming.swap(intake_);
    }
    Stage(incoming);
    incoming.clear();
    Step();
  }
  WaitInFlight(0);  // everything stored and acked
}

void Committer::Stage(std::deque<Item>& incoming) {
  for (Item& item : incoming) {
    if (item.op) {
      segments_.back().barrier = std::move(item.op);
      segments_.emplace_back();
      continue;
    }
    Segment& segment = segments_.back();
    auto [it, added] = segment.lanes.try_emplace(item.lane);
    Lane& lane = it->second;
    if (added) lane.key = std::move(item.lane);
    lane.sends.push_back(std::move(item.send));
    if (!lane.in_ring && !lane.parked) {
      lane.in_ring = true;
      segment.ring.push_back(&lane);
    }
  }
}

bool Committer::HasWork() const {
  const Segment& front = segments_.front();
  return !front.ring.empty() || !parked_.empty() || front.barrier != nullptr;
}

void Committer::Requeue(Segment& segment, Lane* lane) {
  if (!lane->sends.empty()) {
    lane->in_ring = true;
    segment.ring.push_back(lane);
  } else {
    const std::string key = lane->key;  // the lane dies with the erase
    segment.lanes.erase(key);
  }
}

void Committer::Taken(const std::vector<std::string>& lanes, size_t ops) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const std::string& key : lanes) {
    auto it = lane_depth_.find(key);
    if (it != lane_depth_.end() && --it->second == 0) lane_depth_.erase(it);
  }
  queued_ -= std::min(queued_, lanes.size() + ops);
}

void Committer::Step() {
  Segment& segment = segments_.front();
  if (segment.ring.empty() && parked_.empty()) {
    if (!segment.barrier) return;
    // Everything queued before the barrier is taken: once it is stored, run the barrier, then
    // the next segment.
    WaitInFlight(0);
    PendingOp op = std::move(segment.barrier);
    segments_.pop_front();
    Taken({}, 1);
    op(*this);
    return;
  }
  // Round-robin over the lanes, one send per lane per turn, within the batch's budget.
  std::vector<PendingSend> batch;
  std::vector<std::string> taken;
  size_t recipients = 0;
  while (!segment.ring.empty() && batch.size() < deps_.batch_max &&
         recipients < deps_.batch_recipients) {
    Lane* lane = segment.ring.front();
    segment.ring.pop_front();
    lane->in_ring = false;
    PendingSend p = std::move(lane->sends.front());
    lane->sends.pop_front();
    taken.push_back(lane->key);
    if (!p.message->group.empty() && !ResolveGroup(p)) {
      Requeue(segment, lane);
      continue;
    }
    if (recipients + p.recipients.size() > deps_.batch_recipients) {
      // Too big for what is left: stored after this batch, and the lane waits for it.
      lane->parked = true;
      parked_.push_back(Parked{lane, std::move(p)});
      continue;
    }
    recipients += p.recipients.size();
    batch.push_back(std::move(p));
    Requeue(segment, lane);
  }
  Taken(taken, 0);
  if (!batch.empty()) Commit(batch);

  // Then the sends set aside, in order, in batches of their own.
  batch.clear();
  recipients = 0;
  while (!parked_.empty() && batch.size() < deps_.batch_max &&
         (batch.empty() ||
          recipients + parked_.front().send.recipients.size() <= deps_.batch_recipients)) {
    Parked& p = parked_.front();
    recipients += p.send.recipients.size();
    batch.push_back(std::move(p.send));
    p.lane->parked = false;
    Requeue(segment, p.lane);
    parked_.pop_front();
  }
  if (!batch.empty()) Commit(batch);
}

bool Committer::ResolveGroup(PendingSend& p) {
  if (deps_.groups == nullptr) {
    p.done(Status::Unavailable("group chat is not enabled on this server"));
    return false;
  }
  GroupKey key{p.message->tenant, p.message->group};
  Result<std::vector<std::string>> members = deps_.groups->AllMembers(key);
  bool member = false;
  if (members.ok()) {
    for (const std::string& u : *members) member = member || u == p.sender;
  }
  // Permission before existence: a missing group and another tenant's gid look the same.
  if (!p.sender.empty() && (!member || !members.ok())) {
    if (members.ok() || members.status().code() == Code::kNotFound) {
      p.done(Status::Forbidden("not_member", "only members may send to this group"));
    } else {
      p.done(members.status());
    }
    return false;
  }
  if (!members.ok()) {
    p.done(members.status());
    return false;
  }
  p.recipients.clear();
  p.recipients.reserve(members->size());
  if (!p.sender.empty()) p.recipients.push_back(UserKey{key.tenant, p.sender});
  for (std::string& u : *members) {
    if (u != p.sender) p.recipients.push_back(UserKey{key.tenant, std::move(u)});
  }
  p.sender_index = p.sender.empty() ? -1 : 0;
  return true;
}

struct Committer::Flight {
  std::vector<PendingSend> sends;
  std::shared_ptr<std::vector<AppendRequest>> requests;
};

void Committer::WaitInFlight(size_t n) {
  std::unique_lock<std::mutex> lock(flight_mu_);
  flight_cv_.wait(lock, [&] { return in_flight_ <= n; });
}

size_t Committer::MaxInboxOf(const std::string& tenant) const {
  std::shared_ptr<const TenantDirectory::Policy> policy =
      deps_.tenants ? deps_.tenants->Find(tenant) : nullptr;
  return policy ? static_cast<size_t>(policy->record.quotas.max_inbox) : 0;
}

void Committer::Commit(std::vector<PendingSend>& batch) {
  auto flight = std::make_shared<Flight>();
  flight->requests = std::make_shared<std::vector<AppendRequest>>();
  flight->sends.reserve(batch.size());
  flight->requests->reserve(batch.size());
  TimestampMs now = deps_.clock->NowMs();
  for (PendingSend& p : batch) {
    // Group sends queued by Submit were resolved when taken; CommitNow's come with recipients.
    p.message->mid = mids_.Next(now);
    p.message->ts = now;
    AppendRequest r;
    r.message = p.message;
    r.recipients = std::move(p.recipients);
    r.sender_index = p.sender_index;
    r.dedup_key = p.dedup_key;
    r.max_inbox = MaxInboxOf(p.message->tenant);
    flight->requests->push_back(std::move(r));
    flight->sends.push_back(std::move(p));
  }
  batch.clear();
  if (flight->sends.empty()) return;
  WaitInFlight(std::max<size_t>(deps_.inflight, 1) - 1);
  {
    std::lock_guard<std::mutex> lock(flight_mu_);
    ++in_flight_;
  }
  deps_.inbox->AppendBatchAsync(flight->requests,
                                [this, flight](std::vector<Result<AppendResult>> results) {
                                  Answer(*flight, results);
                                  {
                                    std::lock_guard<std::mutex> lock(flight_mu_);
                                    --in_flight_;
                                  }
                                  flight_cv_.notify_all();
                                });
}

void Committer::Answer(Flight& flight, std::vector<Result<AppendResult>>& results) {
  std::vector<PendingSend>& sends = flight.sends;
  std::vector<AppendRequest>& requests = *flight.requests;
  // The ack means stored: only now answer the senders.
  std::vector<FanOutJob> jobs;
  jobs.reserve(sends.size());
  for (size_t i = 0; i < sends.size(); ++i) {
    if (i >= results.size()) {
      sends[i].done(Status::Internal("storage returned too few results"));
      continue;
    }
    Result<AppendResult>& r = results[i];
    if (!r.ok()) {
      if (r.status().code() == Code::kInternal || r.status().code() == Code::kUnavailable) {
        IM_LOG_ERROR("storage append failed: {}", r.status().ToString());
      }
      sends[i].done(r.status());
      continue;
    }
    SendReceipt receipt;
    receipt.mid = r->mid;
    receipt.seq = r->sender_seq;
    receipt.ts = r->ts;
    receipt.duplicate = r->duplicate;
    receipt.gseq = r->gseq;
    sends[i].done(receipt);
    if (r->duplicate) continue;  // pushed when it was first stored
    sends[i].message->gseq = r->gseq;
    FanOutJob job;
    job.message = sends[i].message;
    job.recipients = std::move(requests[i].recipients);
    job.seqs = std::move(r->seqs);
    // Seq 0: a concurrent retry stored it in that inbox first (sharded Redis): no push, the
    // recipient sees it at its next sync.
    for (size_t k = job.seqs.size(); k-- > 0;) {
      if (job.seqs[k] != 0 || k >= job.recipients.size()) continue;
      job.seqs.erase(job.seqs.begin() + static_cast<std::ptrdiff_t>(k));
      job.recipients.erase(job.recipients.begin() + static_cast<std::ptrdiff_t>(k));
    }
    job.origin_session = sends[i].origin_session;
    jobs.push_back(std::move(job));
  }
  // Delivery is the fan-out thread's; this waits only when that stage is full.
  fanout_.Push(std::move(jobs));
}

}  // namespace im::internal
