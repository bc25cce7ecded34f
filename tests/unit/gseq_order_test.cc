// The client's gseq ordering of group messages (lib/client/gseq_order.h).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "client/gseq_order.h"

namespace im::internal {
namespace {

ReceivedMessage G(const std::string& group, uint64_t gseq) {
  ReceivedMessage m;
  m.message.group = group;
  m.message.gseq = gseq;
  m.message.mid = gseq * 100 + group.size();
  return m;
}

std::vector<uint64_t> Gseqs(const std::vector<ReceivedMessage>& out) {
  std::vector<uint64_t> v;
  for (const auto& m : out) v.push_back(m.message.gseq);
  return v;
}

TEST_CASE("GseqOrder: a group's messages come out in gseq order, others at once") {
  GseqOrder order(1000, 100);
  std::vector<ReceivedMessage> out;
  order.Offer(G("g", 1), 0, &out);  // the first gseq of a group: nothing comes before it
  order.Offer(G("g", 3), 0, &out);
  order.Offer(G("g", 4), 0, &out);
  CHECK(Gseqs(out) == std::vector<uint64_t>{1});
  order.Offer(G("", 0), 0, &out);  // a 1:1 message passes
  CHECK(out.size() == 2);
  order.Offer(G("g", 2), 10, &out);
  CHECK(Gseqs(out) == std::vector<uint64_t>{1, 0, 2, 3, 4});
  CHECK(order.held() == 0);
  CHECK(order.NextDeadline() == GseqOrder::kNever);
}

TEST_CASE("GseqOrder: a missing gseq is given up after the hold, and a late one still comes") {
  GseqOrder order(1000, 100);
  std::vector<ReceivedMessage> out;
  order.Offer(G("g", 1), 0, &out);
  order.Offer(G("g", 3), 100, &out);
  CHECK(order.NextDeadline() == 1100);
  order.Expire(1099, &out);
  CHECK(Gseqs(out) == std::vector<uint64_t>{1});
  order.Expire(1100, &out);
  CHECK(Gseqs(out) == std::vector<uint64_t>{1, 3});
  order.Offer(G("g", 2), 1200, &out);  // late: out of order, but not lost
  order.Offer(G("g", 4), 1200, &out);
  CHECK(Gseqs(out) == std::vector<uint64_t>{1, 3, 2, 4});
}

TEST_CASE("GseqOrder: the first message of an unknown group waits for lower ones") {
  GseqOrder order(500, 100);
  std::vector<ReceivedMessage> out;
  order.Offer(G("g", 7), 0, &out);
  order.Offer(G("g", 6), 10, &out);
  CHECK(out.empty());
  order.Expire(500, &out);  // the hold of the longest-waiting (7, since 0) ends
  CHECK(Gseqs(out) == std::vector<uint64_t>{6, 7});
}

TEST_CASE("GseqOrder: the sender's own sends fill their places") {
  GseqOrder order(1000, 100);
  std::vector<ReceivedMessage> out;
  order.Offer(G("g", 1), 0, &out);
  order.Offer(G("g", 3), 0, &out);
  order.OwnSent("g", 2, &out);
  CHECK(Gseqs(out) == std::vector<uint64_t>{1, 3});
  order.OwnSent("g", 5, &out);  // ahead: remembered
  order.Offer(G("g", 4), 0, &out);
  order.Offer(G("g", 6), 0, &out);
  CHECK(Gseqs(out) == std::vector<uint64_t>{1, 3, 4, 6});
}

TEST_CASE("GseqOrder: past max_held, the longest-waiting group's next message is released") {
  GseqOrder order(1000, 2);
  std::vector<ReceivedMessage> out;
  order.Offer(G("a", 1), 0, &out);
  order.Offer(G("b", 1), 0, &out);
  out.clear();
  order.Offer(G("a", 5), 0, &out);
  order.Offer(G("b", 5), 10, &out);
  CHECK(out.empty());
  order.Offer(G("b", 7), 20, &out);  // three held: a's wait began first
  CHECK(Gseqs(out) == std::vector<uint64_t>{5});
  CHECK(out[0].message.group == "a");
  CHECK(order.held() == 2);
}

TEST_CASE("SortByGseq: each group's messages take its places in gseq order") {
  std::vector<ReceivedMessage> page = {G("a", 3), G("", 0), G("a", 2), G("b", 9), G("a", 1),
                                       G("b", 8)};
  SortByGseq(&page);
  std::vector<std::string> order;
  for (const auto& m : page) order.push_back(m.message.group + std::to_string(m.message.gseq));
  CHECK(order == std::vector<std::string>{"a1", "0", "a2", "b8", "a3", "b9"});
}

}  // namespace
}  // namespace im::internal
