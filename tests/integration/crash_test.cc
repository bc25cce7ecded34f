// Crash safety: imd (LevelDB inbox) is killed with SIGKILL at random moments while a client
// sends; after restarts on the same data dir every acked message is present exactly once, in
// send order, and no seq was handed out twice.
#include <doctest/doctest.h>
#include <signal.h>

#include <asio.hpp>
#include <filesystem>
#include <random>
#include <regex>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "im/client.h"
#include "support/child_process.h"

#ifdef IMD_PATH
using im::test::ChildProcess;

namespace {

uint16_t FreePort() {
  asio::io_context io;
  asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

std::unique_ptr<ChildProcess> StartImd(const std::string& data, uint16_t tcp, uint16_t http) {
  auto p = std::make_unique<ChildProcess>(std::vector<std::string>{
      IMD_PATH, "--data", data, "--tcp", "127.0.0.1:" + std::to_string(tcp), "--http",
      "127.0.0.1:" + std::to_string(http)});
  REQUIRE_FALSE(p->WaitForLine("serving", 10000).empty());
  return p;
}

}  // namespace

TEST_CASE("crash: kill -9 mid-stream loses no acked message and reuses no seq") {
  std::string data = im::test::MakeTempDir();
  const uint16_t tcp = FreePort(), http = FreePort();
  auto imd = StartImd(data, tcp, http);
  int rc = 0;
  std::string alice_token =
      im::test::RunAndCapture({IMD_PATH, "token", "--user", "alice", "--data", data}, &rc);
  std::string bob_token =
      im::test::RunAndCapture({IMD_PATH, "token", "--user", "bob", "--data", data}, &rc);
  REQUIRE(rc == 0);

  im::ClientOptions co;
  co.url = "tcp://127.0.0.1:" + std::to_string(tcp);
  co.reconnect_min_ms = 20;
  co.reconnect_max_ms = 200;
  co.request_timeout_ms = 2000;
  co.send_timeout_ms = 20000;
  im::Client alice(co);
  REQUIRE(alice.Connect().ok());
  REQUIRE(alice.Login(alice_token).ok());

  const int kCount = 1200;
  std::mt19937 rng(std::random_device{}());
  std::set<int> kill_at;
  while (kill_at.size() < 4) kill_at.insert(100 + static_cast<int>(rng() % 1000));
  std::vector<uint64_t> mids(kCount);
  uint64_t last_ack_seq = 0;
  std::atomic<bool> sending{true};
  std::atomic<int> acked{0};
  std::thread sender([&] {
    for (int i = 0; i < kCount; ++i) {
      im::OutgoingMessage m;
      m.to = "bob";
      m.cid = "k" + std::to_string(i);
      m.body = "m" + std::to_string(i);
      auto ack = alice.Send(m);
      if (!ack.ok()) {
        FAIL_CHECK("send " << i << ": " << ack.status().ToString());
        break;
      }
      CHECK(ack->seq > last_ack_seq);  // the sender's seqs never go back, across restarts
      last_ack_seq = ack->seq;
      mids[static_cast<size_t>(i)] = ack->mid;
      ++acked;
    }
    sending = false;
  });
  int kills = 0;
  for (int point : kill_at) {
    while (sending && acked < point) std::this_thread::sleep_for(std::chrono::microseconds(200));
    if (!sending) break;
    imd->Signal(SIGKILL);
    CHECK(imd->Wait(5000) == 128 + SIGKILL);
    ++kills;
    imd = StartImd(data, tcp, http);
  }
  sender.join();
  CHECK(kills == 4);
  REQUIRE(acked == kCount);

  // The receiver was offline all along: it syncs in pages of 100.
  co.url = "ws://127.0.0.1:" + std::to_string(http) + "/ws";
  im::Client bob(co);
  REQUIRE(bob.Connect().ok());
  auto login = bob.Login(bob_token, "laptop");
  REQUIRE(login.ok());
  CHECK(login->last_seq == kCount);
  std::vector<im::ReceivedMessage> all;
  uint64_t after = 0;
  for (bool more = true; more;) {
    auto page = bob.Sync(after, 100);
    REQUIRE(page.ok());
    CHECK_FALSE(page->gap);
    CHECK(page->epoch == login->epoch);
    CHECK(page->messages.size() <= 100);
    for (auto& m : page->messages) {
      CHECK(m.seq == after + 1);
      after = m.seq;
      all.push_back(std::move(m));
    }
    more = page->more;
  }
  REQUIRE(all.size() == kCount);
  for (int i = 0; i < kCount; ++i) {
    CHECK(all[static_cast<size_t>(i)].message.body == "m" + std::to_string(i));
    CHECK(all[static_cast<size_t>(i)].message.mid == mids[static_cast<size_t>(i)]);
  }
  REQUIRE(bob.Ack(after).ok());
  bob.Close();

  // The ack survives a restart too.
  imd->Signal(SIGKILL);
  imd->Wait(5000);
  imd = StartImd(data, tcp, http);
  im::Client bob2(co);
  REQUIRE(bob2.Connect().ok());
  auto again = bob2.Login(bob_token, "laptop");
  REQUIRE(again.ok());
  CHECK(again->acked_seq == kCount);
  CHECK(again->epoch == login->epoch);
  imd->Signal(SIGTERM);
  CHECK(imd->Wait(10000) == 0);
  std::filesystem::remove_all(data);
}

#endif
