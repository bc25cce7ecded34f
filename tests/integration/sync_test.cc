// chat.sync at its bounds in a running server, over memory and LevelDB inboxes: pages cut by
// max_sync_bytes, and entries deleted by max_inbox or retention reported as a gap.
#include <doctest/doctest.h>

#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "im/backends.h"
#include "support/temp_dir.h"
#include "support/test_server.h"

using im::test::CodeOf;
using im::test::RawClient;
using im::test::Str;
using im::test::TestServer;
using Storage = std::function<void(im::ServerDeps&)>;

namespace {

// Runs `body` once per inbox backend, each in its own SUBCASE, with an inbox made with
// `options`.
void ForEachInbox(const im::OfflineQueueOptions& options,
                  const std::function<void(const Storage&)>& body) {
  SUBCASE("memory") {
    body([options](im::ServerDeps& d) { d.inbox = im::NewMemoryOfflineQueue(options); });
  }
  SUBCASE("leveldb") {
    im::test::TempDir dir;
    body([options, path = dir.path()](im::ServerDeps& d) {
      auto inbox = im::OpenLevelDbOfflineQueue(path + "/inbox", options);
      if (!inbox.ok()) throw std::runtime_error(inbox.status().ToString());
      d.inbox = *inbox;
    });
  }
}

void Send(RawClient& c, uint32_t id, const std::string& to, const std::string& body) {
  rapidjson::Document d;
  REQUIRE(c.Call(
      id, "chat.send",
      R"({"to":")" + to + R"(","cid":"c)" + std::to_string(id) + R"(","body":")" + body + R"("})",
      &d));
  REQUIRE(CodeOf(d) == 0);
}

struct Page {
  std::vector<uint64_t> seqs;
  std::vector<size_t> body_sizes;
  bool more = false;
  bool gap = false;
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  size_t frame_bytes = 0;  // the whole response as sent
};

Page Sync(RawClient& c, uint32_t id, uint64_t after, int limit = 100) {
  Page p;
  c.Send(R"({"id":)" + std::to_string(id) + R"(,"cmd":"chat.sync","body":{"after":)" +
         std::to_string(after) + R"(,"limit":)" + std::to_string(limit) + "}}");
  // Read frames in order until this response (nothing else is expected on this connection).
  rapidjson::Document d;
  for (;;) {
    auto text = c.NextText();
    REQUIRE(text.has_value());
    REQUIRE(im::test::ParseJson(*text, &d));
    if (d.HasMember("id") && d["id"].GetUint() == id) {
      p.frame_bytes = text->size();
      break;
    }
  }
  REQUIRE(CodeOf(d) == 0);
  const auto& b = d["body"];
  for (const auto& m : b["messages"].GetArray()) {
    p.seqs.push_back(m["seq"].GetUint64());
    p.body_sizes.push_back(Str(m, "body").size());
  }
  p.more = b["more"].GetBool();
  p.gap = b["gap"].GetBool();
  p.first_seq = b["first_seq"].GetUint64();
  p.last_seq = b["last_seq"].GetUint64();
  return p;
}

}  // namespace

TEST_CASE("sync: a page stops early at max_sync_bytes - an entry larger than it comes alone") {
  ForEachInbox({}, [](const Storage& storage) {
    im::ServerOptions o;
    o.max_sync_bytes = 4096;
    TestServer ts(o, storage);
    RawClient alice(ts.TcpUrl()), bob(ts.WsUrl());
    REQUIRE(alice.Login(ts.Token("alice")) == 0);
    // 20 messages of 1000 bytes, then a small one, one over the page bound, and a small one.
    uint32_t id = 1;
    for (int i = 0; i < 20; ++i) Send(alice, id++, "bob", std::string(1000, 'a' + i % 26));
    Send(alice, id++, "bob", "small-1");
    Send(alice, id++, "bob", std::string(6000, 'B'));
    Send(alice, id++, "bob", "small-2");
    REQUIRE(bob.Login(ts.Token("bob")) == 0);

    // The 1000-byte messages and small-1 come in pages cut by bytes, far under the limit of 100
    // entries; every page ends with more=true, the last one because the large message would
    // take it over the bound.
    uint64_t after = 0;
    uint32_t sync_id = 100;
    int pages = 0;
    while (after < 21) {
      Page p = Sync(bob, sync_id++, after);
      CAPTURE(after);
      REQUIRE_FALSE(p.seqs.empty());
      CHECK(p.more);
      CHECK_FALSE(p.gap);
      ++pages;
      size_t bodies = 0;
      for (size_t k = 0; k < p.seqs.size(); ++k) {
        CHECK(p.seqs[k] == after + 1);  // consecutive: nothing skipped or repeated
        after = p.seqs[k];
        bodies += p.body_sizes[k];
      }
      // Under the bound; JSON fields around the bodies add a little (the docs' "somewhat").
      CHECK(bodies <= o.max_sync_bytes);
      CHECK(p.frame_bytes <= o.max_sync_bytes + 512);
    }
    CHECK(after == 21);
    CHECK(pages >= 20 * 1000 / 4096);
    CHECK(pages < 20);  // more than one entry per page where they fit
    // The large one comes alone, on its own page, although it is over the bound.
    Page p = Sync(bob, sync_id++, 21);
    CHECK(p.seqs == std::vector<uint64_t>{22});
    CHECK(p.body_sizes == std::vector<size_t>{6000});
    CHECK(p.more);
    p = Sync(bob, sync_id++, 22);
    CHECK(p.seqs == std::vector<uint64_t>{23});
    CHECK_FALSE(p.more);
    CHECK(p.last_seq == 23);
  });
}

TEST_CASE("sync: entries trimmed by max_inbox surface as a gap") {
  im::OfflineQueueOptions q;
  q.max_inbox = 5;
  ForEachInbox(q, [](const Storage& storage) {
    TestServer ts({}, storage);
    RawClient alice(ts.TcpUrl()), bob(ts.WsUrl());
    REQUIRE(alice.Login(ts.Token("alice")) == 0);
    for (uint32_t i = 1; i <= 8; ++i) Send(alice, i, "bob", "m" + std::to_string(i));
    REQUIRE(bob.Login(ts.Token("bob")) == 0);
    // The three oldest were trimmed when the later ones were appended.
    Page p = Sync(bob, 1, 0);
    CHECK(p.gap);
    CHECK(p.first_seq == 4);
    CHECK(p.last_seq == 8);
    CHECK(p.seqs == std::vector<uint64_t>{4, 5, 6, 7, 8});
    CHECK_FALSE(p.more);
    p = Sync(bob, 2, 2);  // seq 3 is gone
    CHECK(p.gap);
    CHECK(p.seqs == std::vector<uint64_t>{4, 5, 6, 7, 8});
    p = Sync(bob, 3, 3);  // nothing after 3 is gone
    CHECK_FALSE(p.gap);
    CHECK(p.seqs == std::vector<uint64_t>{4, 5, 6, 7, 8});
    // The sender's own inbox is bounded the same way.
    p = Sync(alice, 100, 0);
    CHECK(p.gap);
    CHECK(p.first_seq == 4);
  });
}

TEST_CASE("sync: entries past retention are swept in a running server and surface as a gap") {
  // The server, its sweeps and the inbox read one clock that the test moves.
  im::test::FakeClock clock;
  im::OfflineQueueOptions q;
  q.retention_ms = 60000;
  q.clock = &clock;
  ForEachInbox(q, [&](const Storage& storage) {
    im::ServerOptions o;
    o.clock = &clock;
    o.sweep_interval_ms = 20;     // real time between sweeps
    o.retention_sweep_ms = 1000;  // on the server's clock
    TestServer ts(o, storage);
    RawClient alice(ts.TcpUrl()), bob(ts.WsUrl());
    REQUIRE(alice.Login(ts.Token("alice")) == 0);
    REQUIRE(bob.Login(ts.Token("bob")) == 0);
    for (uint32_t i = 1; i <= 3; ++i) Send(alice, i, "bob", "old" + std::to_string(i));
    clock.Advance(30000);
    for (uint32_t i = 4; i <= 5; ++i) Send(alice, i, "bob", "new" + std::to_string(i));
    // Not yet past retention: several sweeps run and keep everything.
    clock.Advance(20000);  // the old ones are 50 s old
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    Page p = Sync(bob, 1, 0);
    CHECK_FALSE(p.gap);
    CHECK(p.seqs == std::vector<uint64_t>{1, 2, 3, 4, 5});
    // Past it for the first three only: a sweep deletes them (wait for it, 10 s at most).
    clock.Advance(20000);  // 70 s and 40 s old
    uint32_t sync_id = 2;
    for (int i = 0; i < 500; ++i) {
      p = Sync(bob, sync_id++, 0);
      if (p.gap) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CHECK(p.gap);
    CHECK(p.first_seq == 4);
    CHECK(p.last_seq == 5);
    CHECK(p.seqs == std::vector<uint64_t>{4, 5});
    p = Sync(bob, sync_id++, 3);
    CHECK_FALSE(p.gap);
    CHECK(p.seqs == std::vector<uint64_t>{4, 5});
    // Sessions on the moved clock are still alive (70 s is under three heartbeats).
    rapidjson::Document d;
    REQUIRE(bob.Call(999, "ping", "", &d));
    CHECK(CodeOf(d) == 0);
  });
}
