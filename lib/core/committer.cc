#include "core/committer.h"

#include <unordered_map>

#include "protocol/codec.h"

namespace im::internal {

Committer::Committer(Deps deps) : deps_(deps), mids_(deps.node_number) {}

Committer::~Committer() { Stop(); }

void Committer::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_) return;
  started_ = true;
  thread_ = std::thread([this] { Run(); });
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
  std::deque<PendingSend> rest;
  {
    std::lock_guard<std::mutex> lock(mu_);
    rest.swap(queue_);
  }
  for (auto& p : rest) p.done(Status::Unavailable("server stopping"));
}

Status Committer::Submit(PendingSend send) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return Status::Unavailable("server stopping");
    if (queue_.size() >= deps_.queue_limit) {
      return Status::Unavailable("the server is overloaded; retry with the same cid");
    }
    queue_.push_back(std::move(send));
  }
  cv_.notify_one();
  return Status::OK();
}

size_t Committer::depth() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

void Committer::Run() {
  std::vector<PendingSend> batch;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      size_t n = std::min(queue_.size(), deps_.batch_max);
      batch.clear();
      batch.reserve(n);
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    Commit(batch);
  }
}

void Committer::Commit(std::vector<PendingSend>& batch) {
  std::vector<AppendRequest> requests;
  requests.reserve(batch.size());
  TimestampMs now = deps_.clock->NowMs();
  for (PendingSend& p : batch) {
    p.message->mid = mids_.Next(now);
    p.message->ts = now;
    AppendRequest r;
    r.message = p.message;
    r.recipients = p.recipients;
    r.sender_index = p.sender_index;
    r.dedup_key = p.dedup_key;
    requests.push_back(std::move(r));
  }
  std::vector<Result<AppendResult>> results = deps_.inbox->AppendBatch(requests);
  // The ack means stored: only now answer the senders.
  for (size_t i = 0; i < batch.size(); ++i) {
    if (i >= results.size()) {
      batch[i].done(Status::Internal("storage returned too few results"));
      continue;
    }
    const Result<AppendResult>& r = results[i];
    if (!r.ok()) {
      batch[i].done(r.status());
      continue;
    }
    SendReceipt receipt;
    receipt.mid = r->mid;
    receipt.seq = r->sender_seq;
    receipt.ts = r->ts;
    receipt.duplicate = r->duplicate;
    batch[i].done(receipt);
  }
  FanOut(batch, results);
}

void Committer::FanOut(const std::vector<PendingSend>& batch,
                       const std::vector<Result<AppendResult>>& results) {
  // One session lookup for every recipient of the batch.
  std::vector<UserKey> users;
  std::unordered_map<UserKey, std::vector<SessionInfo>, UserKeyHash> online;
  for (size_t i = 0; i < batch.size() && i < results.size(); ++i) {
    if (!results[i].ok() || results[i]->duplicate) continue;
    for (const UserKey& u : batch[i].recipients) {
      if (online.emplace(u, std::vector<SessionInfo>{}).second) users.push_back(u);
    }
  }
  if (users.empty()) return;
  Result<std::vector<SessionInfo>> found = deps_.sessions->FindMany(users);
  if (!found.ok()) return;  // recipients will sync; nothing acked is lost
  for (SessionInfo& s : *found) online[s.user].push_back(std::move(s));

  uint64_t delivered = 0;
  for (size_t i = 0; i < batch.size() && i < results.size(); ++i) {
    if (!results[i].ok() || results[i]->duplicate) continue;
    const PendingSend& p = batch[i];
    const AppendResult& r = *results[i];
    std::optional<ChatPushEncoder> encoder;  // built on first use, shared by every receiver
    for (size_t k = 0; k < p.recipients.size() && k < r.seqs.size(); ++k) {
      auto it = online.find(p.recipients[k]);
      if (it == online.end()) continue;
      for (const SessionInfo& s : it->second) {
        if (s.session_id == p.origin_session) continue;
        if (!encoder) encoder.emplace(*p.message);
        if (deps_.router->Deliver(s, encoder->ForSeq(r.seqs[k])) != SendResult::kDropped) {
          ++delivered;
        }
      }
    }
  }
  deliveries_.fetch_add(delivered, std::memory_order_relaxed);
}

}  // namespace im::internal
