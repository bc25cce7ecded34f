// Test support: wait for a condition with a deadline instead of sleeping a fixed time.
#ifndef IM_TESTS_SUPPORT_WAIT_UNTIL_H_
#define IM_TESTS_SUPPORT_WAIT_UNTIL_H_

#include <chrono>
#include <thread>

namespace im::test {

// Polls `pred` every 5 ms until it holds (true) or `timeout_ms` passed (its last value).
template <typename Pred>
bool WaitUntil(Pred pred, int timeout_ms = 10000) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return pred();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace im::test

#endif  // IM_TESTS_SUPPORT_WAIT_UNTIL_H_
