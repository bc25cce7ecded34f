// Writes the inbox database of tests/data/leveldb_inbox_v1/inbox and its expected answers
// (expected.txt) through the public OfflineQueue API. Built against the code of the first record
// layout (format 1: one header write per append, time index records), it made the committed
// fixture that the migration test opens with the current code (built at commit db674c3, the last
// one writing format 1; the program also builds and runs against later code, but then writes
// the later format). Not part of the build:
//
//   g++ -std=c++17 -DFMT_SHARED -Iinclude -Ilib tests/data/leveldb_inbox_v1/make_fixture.cc
//       build/libim.a -lleveldb -lsnappy -lsodium -lspdlog -lfmt -lprometheus-cpp-core -lutf8proc
//       -o make_fixture
//   ./make_fixture OUT_DIR   # writes OUT_DIR/inbox and OUT_DIR/expected.txt
//
// What it holds: two tenants; 1:1 messages with dedup keys; a group message indexed into four
// inboxes; server-side sends without a sender inbox; inboxes trimmed by max_inbox (first_seq > 1),
// an inbox emptied by retention (its last_seq is kept by the header alone), an inbox whose oldest
// entry was swept; acks of several devices. Two sessions, so that the first one's writes are in a
// table and the second one's in the log.

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "im/backends.h"
#include "im/offline_queue.h"

namespace {

constexpr im::TimestampMs kT0 = 1'700'000'000'000;
constexpr im::TimestampMs kOld = kT0 - 30LL * 24 * 3600 * 1000;

class FixedClock final : public im::Clock {
 public:
  im::TimestampMs NowMs() const override { return kT0; }
};

void Die(const std::string& what) {
  std::fprintf(stderr, "make_fixture: %s\n", what.c_str());
  std::exit(1);
}

struct Sent {
  std::string tenant;
  std::string dedup_key;
  im::AppendResult result;
};
std::vector<Sent> sent;

void Append(im::OfflineQueue& queue, uint64_t mid, const std::string& tenant,
            const std::string& from, const std::string& to, const std::string& group,
            std::vector<std::string> recipients, int sender_index, im::TimestampMs ts,  // 0: young
            const std::string& dedup_key) {
  auto message = std::make_shared<im::Message>();
  message->mid = mid;
  message->tenant = tenant;
  message->from = from;
  message->to = to;
  message->group = group;
  message->type = group.empty() ? "text" : "group";
  message->body = "body of " + std::to_string(mid);
  message->extra = mid % 2 ? "" : "{\"k\":" + std::to_string(mid) + "}";
  message->ts = ts != 0 ? ts : kT0 + static_cast<im::TimestampMs>(mid);  // 0: young
  im::AppendRequest request;
  request.message = message;
  for (const std::string& user : recipients) request.recipients.push_back({tenant, user});
  request.sender_index = sender_index;
  request.dedup_key = dedup_key;
  auto result = queue.Append(request);
  if (!result.ok()) Die(result.status().ToString());
  if (!dedup_key.empty()) sent.push_back({tenant, dedup_key, *result});
}

// Writes what `queue` answers now: every inbox with its entries, acks, and dedup answers.
void Dump(im::OfflineQueue& queue, const std::string& path) {
  std::ofstream expected(path);
  // inbox TENANT USER EPOCH FIRST_SEQ LAST_SEQ, then its entries:
  // entry SEQ MID TS FROM|TO|GROUP|TYPE|BODY|EXTRA
  const std::vector<std::pair<std::string, std::string>> users = {
      {"default", "alice"}, {"default", "bob"},   {"default", "carol"}, {"default", "dave"},
      {"default", "erin"},  {"default", "frank"}, {"acme", "alice"},    {"acme", "bob"}};
  for (const auto& [tenant, user] : users) {
    auto info = queue.Info({tenant, user});
    auto page = queue.Fetch({tenant, user}, 0, 500);
    if (!info.ok() || !page.ok()) Die("read");
    expected << "inbox " << tenant << " " << user << " " << info->epoch << " " << info->first_seq
             << " " << info->last_seq << " " << (page->gap ? 1 : 0) << "\n";
    for (const im::InboxEntry& e : page->entries) {
      const im::Message& m = *e.message;
      expected << "entry " << e.seq << " " << m.mid << " " << m.ts << " " << m.from << "|" << m.to
               << "|" << m.group << "|" << m.type << "|" << m.body << "|" << m.extra << "\n";
    }
  }
  // ack TENANT USER DEVICE SEQ
  for (auto [tenant, user, device] : {std::tuple{"default", "bob", "phone"},
                                      {"default", "bob", "laptop"},
                                      {"default", "alice", "phone"},
                                      {"acme", "alice", "web"},
                                      {"default", "dave", "phone"}}) {
    auto acked = queue.Acked({tenant, user}, device);
    if (!acked.ok()) Die("acked");
    expected << "ack " << tenant << " " << user << " " << device << " " << *acked << "\n";
  }
  // dedup TENANT KEY MID TS SENDER_SEQ
  for (const Sent& s : sent) {
    expected << "dedup " << s.tenant << " " << s.dedup_key << " " << s.result.mid << " "
             << s.result.ts << " " << s.result.sender_seq << "\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) Die("usage: make_fixture OUT_DIR");
  const std::string out = argv[1];
  FixedClock clock;
  im::OfflineQueueOptions options;
  options.max_inbox = 6;
  options.clock = &clock;
  uint64_t mid = 1000;
  for (int session = 0; session < 2; ++session) {
    auto queue = im::OpenLevelDbOfflineQueue(out + "/inbox", options);
    if (!queue.ok()) Die(queue.status().ToString());
    im::OfflineQueue& q = **queue;
    const std::string s = std::to_string(session);
    for (int i = 0; i < 4; ++i) {
      Append(q, ++mid, "default", "alice", "bob", "", {"bob", "alice"}, 1, 0,
             "alice/c" + s + std::to_string(i));
      Append(q, ++mid, "default", "bob", "alice", "", {"alice", "bob"}, 1, 0,
             "bob/c" + s + std::to_string(i));
    }
    Append(q, ++mid, "default", "carol", "", "team", {"carol", "alice", "bob", "dave"}, 0, 0,
           "carol/g" + s);
    Append(q, ++mid, "default", "", "dave", "", {"dave"}, -1, 0, "");
    Append(q, ++mid, "acme", "alice", "bob", "", {"bob", "alice"}, 1, 0, "alice/c" + s);
    if (session == 0) {
      // Erin's inbox is emptied by retention; frank's oldest entry is swept, his newer one kept.
      Append(q, ++mid, "default", "", "erin", "", {"erin"}, -1, kOld, "");
      Append(q, ++mid, "default", "", "erin", "", {"erin"}, -1, kOld + 1, "");
      Append(q, ++mid, "default", "", "frank", "", {"frank"}, -1, kOld, "");
      Append(q, ++mid, "default", "", "frank", "", {"frank"}, -1, 0, "");
      auto dropped = q.Expire(kT0);
      if (!dropped.ok() || *dropped != 3) Die("expire");
      for (auto [user, device, seq] :
           {std::tuple{"bob", "phone", 7}, {"bob", "laptop", 4}, {"alice", "phone", 2}}) {
        if (!q.Ack({"default", user}, device, seq).ok()) Die("ack");
      }
    } else {
      if (!q.Ack({"default", "bob"}, "phone", 9).ok()) Die("ack");
      if (!q.Ack({"default", "bob"}, "phone", 8).ok()) Die("ack");  // lower: ignored
      if (!q.Ack({"acme", "alice"}, "web", 1).ok()) Die("ack");
      Dump(q, out + "/expected.txt");  // before closing: this session's writes stay in the log
    }
  }
  return 0;
}
