#include "core/committer.h"

#include <optional>
#include <unordered_map>

#include "base/thread_name.h"
#include "ops/log.h"
#include "protocol/codec.h"

namespace im::internal {

Committer::Committer(Deps deps) : deps_(deps), mids_(deps.node_number) {}

Committer::~Committer() { Stop(); }

void Committer::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_) return;
  started_ = true;
  thread_ = std::thread([this] {
    NameThisThread("im-commit");
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
    rest.swap(queue_);
  }
  for (auto& item : rest) {
    if (!item.op && item.send.done) item.send.done(Status::Unavailable("server stopping"));
  }
}

Status Committer::Enqueue(Item item) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return Status::Unavailable("server stopping");
    if (queue_.size() >= deps_.queue_limit) {
      return Status::Unavailable("the server is overloaded; retry with the same cid");
    }
    queue_.push_back(std::move(item));
  }
  cv_.notify_one();
  return Status::OK();
}

Status Committer::Submit(PendingSend send) { return Enqueue(Item{std::move(send), nullptr}); }

Status Committer::SubmitOp(PendingOp op) { return Enqueue(Item{PendingSend{}, std::move(op)}); }

size_t Committer::depth() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

void Committer::Run() {
  std::vector<Item> items;
  std::vector<PendingSend> batch;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      size_t n = std::min(queue_.size(), deps_.batch_max);
      items.clear();
      for (size_t i = 0; i < n; ++i) {
        items.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    // Sends between two membership changes go out as one storage batch.
    batch.clear();
    for (Item& item : items) {
      if (item.op) {
        if (!batch.empty()) Commit(batch);
        batch.clear();
        item.op(*this);
      } else {
        batch.push_back(std::move(item.send));
      }
    }
    if (!batch.empty()) Commit(batch);
  }
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

void Committer::Commit(std::vector<PendingSend>& batch) {
  std::vector<PendingSend*> sends;
  std::vector<AppendRequest> requests;
  sends.reserve(batch.size());
  requests.reserve(batch.size());
  TimestampMs now = deps_.clock->NowMs();
  for (PendingSend& p : batch) {
    if (!p.message->group.empty() && !ResolveGroup(p)) continue;
    p.message->mid = mids_.Next(now);
    p.message->ts = now;
    AppendRequest r;
    r.message = p.message;
    r.recipients = p.recipients;
    r.sender_index = p.sender_index;
    r.dedup_key = p.dedup_key;
    requests.push_back(std::move(r));
    sends.push_back(&p);
  }
  if (requests.empty()) return;
  std::vector<Result<AppendResult>> results = deps_.inbox->AppendBatch(requests);
  // The ack means stored: only now answer the senders.
  for (size_t i = 0; i < sends.size(); ++i) {
    if (i >= results.size()) {
      sends[i]->done(Status::Internal("storage returned too few results"));
      continue;
    }
    const Result<AppendResult>& r = results[i];
    if (!r.ok()) {
      if (r.status().code() == Code::kInternal || r.status().code() == Code::kUnavailable) {
        IM_LOG_ERROR("storage append failed: {}", r.status().ToString());
      }
      sends[i]->done(r.status());
      continue;
    }
    SendReceipt receipt;
    receipt.mid = r->mid;
    receipt.seq = r->sender_seq;
    receipt.ts = r->ts;
    receipt.duplicate = r->duplicate;
    sends[i]->done(receipt);
  }
  FanOut(sends, results);
}

void Committer::FanOut(const std::vector<PendingSend*>& sends,
                       const std::vector<Result<AppendResult>>& results) {
  // One session lookup for every recipient of the batch.
  std::vector<UserKey> users;
  std::unordered_map<UserKey, std::vector<SessionInfo>, UserKeyHash> online;
  for (size_t i = 0; i < sends.size() && i < results.size(); ++i) {
    if (!results[i].ok() || results[i]->duplicate) continue;
    for (const UserKey& u : sends[i]->recipients) {
      if (online.emplace(u, std::vector<SessionInfo>{}).second) users.push_back(u);
    }
  }
  if (users.empty()) return;
  Result<std::vector<SessionInfo>> found = deps_.sessions->FindMany(users);
  if (!found.ok()) {
    // Recipients will sync; nothing acked is lost.
    IM_LOG_ERROR("session lookup for fan-out failed: {}", found.status().ToString());
    return;
  }
  for (SessionInfo& s : *found) online[s.user].push_back(std::move(s));

  uint64_t delivered = 0;
  for (size_t i = 0; i < sends.size() && i < results.size(); ++i) {
    if (!results[i].ok() || results[i]->duplicate) continue;
    const PendingSend& p = *sends[i];
    const AppendResult& r = *results[i];
    std::optional<ChatPushEncoder> encoder;  // built on first use, shared by every receiver
    for (size_t k = 0; k < p.recipients.size() && k < r.seqs.size(); ++k) {
      auto it = online.find(p.recipients[k]);
      if (it == online.end() || it->second.empty()) continue;
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
