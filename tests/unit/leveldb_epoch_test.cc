// Inbox epochs (store/leveldb/inbox_recovery.h): 16 lowercase hex characters, never the same
// twice from one thread or from several, and each thread's sequence starts from a key of its own
// (two threads' first epochs differ, as two processes' do).

#include <doctest/doctest.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/leveldb/inbox_recovery.h"

namespace im::internal::leveldb_queue {
namespace {

bool IsEpoch(const std::string& e) {
  if (e.size() != 16) return false;
  for (char c : e) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

TEST_CASE("leveldb epoch: 16 hex characters, no repeat within or across threads") {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20000;
  std::vector<std::vector<std::string>> made(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&made, t] {
      for (int i = 0; i < kPerThread; ++i) made[t].push_back(NewEpoch());
    });
  }
  for (std::thread& th : threads) th.join();
  std::set<std::string> all;
  for (const auto& list : made) {
    for (const std::string& e : list) {
      REQUIRE(IsEpoch(e));
      all.insert(e);
    }
  }
  CHECK(all.size() == size_t{kThreads} * kPerThread);
  // Not a counter: consecutive epochs of one thread share no long prefix as a rule.
  size_t same_prefix = 0;
  for (size_t i = 1; i < made[0].size(); ++i) {
    if (made[0][i].compare(0, 8, made[0][i - 1], 0, 8) == 0) ++same_prefix;
  }
  CHECK(same_prefix < 10);
}

TEST_CASE("leveldb epoch: a new thread starts from its own key, not from another thread's") {
  std::string first_a;
  std::string first_b;
  std::thread a([&] { first_a = NewEpoch(); });
  a.join();
  std::thread b([&] { first_b = NewEpoch(); });
  b.join();
  // Both are the first epoch (counter 0) of their thread: equal only if the keys were.
  CHECK(IsEpoch(first_a));
  CHECK(first_a != first_b);
}

}  // namespace
}  // namespace im::internal::leveldb_queue
