// Test support: a gate that holds the threads passing it while closed, so a test can stop a
// server at a chosen step (a login at its token check, an append in storage) and see who waits.
#ifndef IM_TESTS_SUPPORT_GATE_H_
#define IM_TESTS_SUPPORT_GATE_H_

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace im::test {

class Gate {
 public:
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = false;
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  // Returns at once when open; else waits for Open(), at most 30 s so a failed test ends.
  void Pass() {
    std::unique_lock<std::mutex> lock(mu_);
    if (open_) return;
    ++held_;
    cv_.notify_all();
    cv_.wait_for(lock, std::chrono::seconds(30), [this] { return open_; });
    --held_;
  }
  // Waits until a thread is held at the gate; false after `timeout_ms`.
  bool WaitHeld(int timeout_ms) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [this] { return held_ > 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  int held_ = 0;
};

}  // namespace im::test

#endif  // IM_TESTS_SUPPORT_GATE_H_
