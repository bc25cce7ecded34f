#include <doctest/doctest.h>

#include <set>
#include <thread>
#include <vector>

#include "core/mid.h"

using im::internal::MidGenerator;

TEST_CASE("mid: increasing - unique - carries the node and the time") {
  MidGenerator gen(5);
  const int64_t now = 1800000000000;
  uint64_t prev = 0;
  for (int i = 0; i < 10000; ++i) {  // more than 4096 in one millisecond: borrows the next
    uint64_t m = gen.Next(now);
    CHECK(m > prev);
    CHECK(((m >> 12) & 0x3FF) == 5);
    prev = m;
  }
  CHECK(MidGenerator::TimeOf(gen.Next(now + 10)) >= now + 2);
  // A clock stepping back never produces a smaller id.
  uint64_t before = gen.Next(now + 100);
  CHECK(gen.Next(now - 100000) > before);
  // Two nodes never collide: each carries its own node number in every id, also when the
  // counter runs over within a millisecond.
  MidGenerator five(5), six(6);
  std::set<uint64_t> from_five;
  for (int i = 0; i < 10000; ++i) {
    uint64_t m = five.Next(now);
    CHECK(((m >> 12) & 0x3FF) == 5);
    from_five.insert(m);
  }
  for (int i = 0; i < 10000; ++i) {
    uint64_t m = six.Next(now);
    CHECK(((m >> 12) & 0x3FF) == 6);
    CHECK(from_five.count(m) == 0);
  }
}

TEST_CASE("mid: unique across threads") {
  MidGenerator gen(1);
  std::vector<std::vector<uint64_t>> got(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20000; ++i) got[t].push_back(gen.Next(1800000000000));
    });
  }
  for (auto& th : threads) th.join();
  std::set<uint64_t> all;
  for (auto& v : got) all.insert(v.begin(), v.end());
  CHECK(all.size() == 80000);
}
