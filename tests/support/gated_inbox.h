// Test support: an OfflineQueue that forwards to another one and can hold its callers at a gate,
// so a test can keep a worker or the committer busy for as long as it needs (a slow disk, made
// deterministic).
#ifndef IM_TESTS_SUPPORT_GATED_INBOX_H_
#define IM_TESTS_SUPPORT_GATED_INBOX_H_

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "im/offline_queue.h"

namespace im::test {

// Thread-safety: every method is safe from any thread.
class GatedInbox final : public OfflineQueue {
 public:
  enum class Op { kFetch, kAppend };  // kAppend holds AppendBatch, the committer's call

  explicit GatedInbox(std::shared_ptr<OfflineQueue> inner) : inner_(std::move(inner)) {}

  // Later calls of `op` wait at the gate until Open(op).
  void Close(Op op) {
    std::lock_guard<std::mutex> lock(mu_);
    gate(op).closed = true;
  }
  void Open(Op op) {
    std::lock_guard<std::mutex> lock(mu_);
    gate(op).closed = false;
    cv_.notify_all();
  }
  // Waits until `n` calls of `op` are held at the gate; false after `timeout_ms`.
  bool WaitHeld(Op op, int n, int timeout_ms = 10000) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                        [&] { return gate(op).held >= n; });
  }
  // The size of every AppendBatch call so far, in call order.
  std::vector<size_t> batch_sizes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return batch_sizes_;
  }

  Result<AppendResult> Append(const AppendRequest& request) override {
    return inner_->Append(request);
  }
  std::vector<Result<AppendResult>> AppendBatch(const std::vector<AppendRequest>& batch) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      batch_sizes_.push_back(batch.size());
    }
    Pass(Op::kAppend);
    return inner_->AppendBatch(batch);
  }
  Result<FetchResult> Fetch(const UserKey& user, uint64_t after, size_t limit) override {
    Pass(Op::kFetch);
    return inner_->Fetch(user, after, limit);
  }
  Result<InboxInfo> Info(const UserKey& user) override { return inner_->Info(user); }
  Status Ack(const UserKey& user, const std::string& device, uint64_t seq) override {
    return inner_->Ack(user, device, seq);
  }
  Result<uint64_t> Acked(const UserKey& user, const std::string& device) override {
    return inner_->Acked(user, device);
  }
  Result<size_t> Expire(TimestampMs now) override { return inner_->Expire(now); }

 private:
  struct Gate {
    bool closed = false;
    int held = 0;
  };
  Gate& gate(Op op) { return op == Op::kFetch ? fetch_ : append_; }

  void Pass(Op op) {
    std::unique_lock<std::mutex> lock(mu_);
    Gate& g = gate(op);
    if (!g.closed) return;
    ++g.held;
    cv_.notify_all();
    cv_.wait(lock, [&] { return !g.closed; });
    --g.held;
  }

  std::shared_ptr<OfflineQueue> inner_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  Gate fetch_, append_;
  std::vector<size_t> batch_sizes_;
};

// Opens both gates when it goes out of scope, so a failed check cannot leave a server's threads
// held while it stops. Declare it after the server.
class OpenGatesOnExit {
 public:
  explicit OpenGatesOnExit(GatedInbox& inbox) : inbox_(inbox) {}
  ~OpenGatesOnExit() {
    inbox_.Open(GatedInbox::Op::kFetch);
    inbox_.Open(GatedInbox::Op::kAppend);
  }
  OpenGatesOnExit(const OpenGatesOnExit&) = delete;
  OpenGatesOnExit& operator=(const OpenGatesOnExit&) = delete;

 private:
  GatedInbox& inbox_;
};

}  // namespace im::test

#endif  // IM_TESTS_SUPPORT_GATED_INBOX_H_
