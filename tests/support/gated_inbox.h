// Test support: an OfflineQueue that forwards to another one and can hold its callers at a gate,
// so a test can keep a worker or the committer busy for as long as it needs (a slow disk, made
// deterministic).
#ifndef IM_TESTS_SUPPORT_GATED_INBOX_H_
#define IM_TESTS_SUPPORT_GATED_INBOX_H_

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "im/offline_queue.h"
#include "support/gate.h"

namespace im::test {

// Thread-safety: every method is safe from any thread.
class GatedInbox final : public OfflineQueue {
 public:
  enum class Op { kFetch, kAppend };  // kAppend holds AppendBatch, the committer's call

  explicit GatedInbox(std::shared_ptr<OfflineQueue> inner) : inner_(std::move(inner)) {}

  // Later calls of `op` wait at the gate until Open(op).
  void Close(Op op) { gate(op).Close(); }
  void Open(Op op) { gate(op).Open(); }
  // Waits until a call of `op` is held at the gate; false after `timeout_ms`.
  bool WaitHeld(Op op, int timeout_ms = 10000) { return gate(op).WaitHeld(timeout_ms); }
  // The append requests of AppendBatch calls waiting at the gate now.
  size_t held_appends() const {
    std::lock_guard<std::mutex> lock(mu_);
    return held_appends_;
  }
  // Fetch calls that passed the gate so far.
  size_t fetches() const { return fetches_.load(); }
  // Every later Fetch takes at least `ms` more (after the gate): a slow read.
  void SetFetchDelay(int ms) { fetch_delay_ms_ = ms; }
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
      held_appends_ += batch.size();
    }
    append_.Pass();
    {
      std::lock_guard<std::mutex> lock(mu_);
      held_appends_ -= batch.size();
    }
    return inner_->AppendBatch(batch);
  }
  Result<FetchResult> Fetch(const UserKey& user, uint64_t after, size_t limit) override {
    fetch_.Pass();
    fetches_.fetch_add(1);
    if (const int ms = fetch_delay_ms_.load(); ms > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    }
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
  Gate& gate(Op op) { return op == Op::kFetch ? fetch_ : append_; }

  std::shared_ptr<OfflineQueue> inner_;
  Gate fetch_, append_;
  mutable std::mutex mu_;
  std::vector<size_t> batch_sizes_;  // guarded by mu_
  size_t held_appends_ = 0;          // guarded by mu_
  std::atomic<size_t> fetches_{0};
  std::atomic<int> fetch_delay_ms_{0};
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
