// imd starts on a data directory whose inbox database an older imd wrote (record format 1, the
// fixture tests/data/leveldb_inbox_v1): it migrates it in place and serves the same epochs, seqs
// and acks, and new messages continue the seqs.
#include <doctest/doctest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "im/client.h"
#include "support/imd_process.h"
#include "support/temp_dir.h"

#ifdef IMD_PATH
namespace {

namespace fs = std::filesystem;

struct InboxLine {
  std::string epoch;
  uint64_t last_seq = 0;
  std::vector<std::string> entries;  // "SEQ MID TS FROM|TO|GROUP|TYPE|BODY|EXTRA"
};

// The fixture's "inbox default USER EPOCH FIRST_SEQ LAST_SEQ GAP" line for `user`, with the
// "entry" lines after it.
InboxLine ExpectedInbox(const std::string& user) {
  std::ifstream in(fs::path(IM_TEST_DATA_DIR) / "leveldb_inbox_v1/expected.txt");
  REQUIRE(in.good());
  std::string line;
  InboxLine inbox;
  bool found = false;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string kind, tenant, name;
    fields >> kind;
    if (found && kind == "entry") {
      inbox.entries.push_back(line.substr(6));
      continue;
    }
    if (found) break;
    uint64_t first_seq = 0;
    fields >> tenant >> name >> inbox.epoch >> first_seq >> inbox.last_seq;
    found = kind == "inbox" && tenant == "default" && name == user;
  }
  REQUIRE_MESSAGE(found, "no inbox line for " << user);
  return inbox;
}

std::unique_ptr<im::Client> LoggedIn(const im::test::ImdProcess& imd, const std::string& data,
                                     const std::string& user, const std::string& device,
                                     im::LoginInfo* login) {
  im::ClientOptions options;
  options.url = imd.tcp_url;
  auto client = std::make_unique<im::Client>(options);
  REQUIRE(client->Connect().ok());
  auto answer = client->Login(im::test::ImdToken(IMD_PATH, data, user), device);
  REQUIRE_MESSAGE(answer.ok(), answer.status().ToString());
  *login = *answer;
  return client;
}

}  // namespace

TEST_CASE("inbox migration: imd serves a format 1 inbox database with its epochs and seqs") {
  im::test::TempDir data;
  fs::copy(fs::path(IM_TEST_DATA_DIR) / "leveldb_inbox_v1/inbox", data.path() + "/inbox",
           fs::copy_options::recursive);
  const InboxLine alice = ExpectedInbox("alice");
  const InboxLine bob = ExpectedInbox("bob");
  // The fixture's messages are from 2023: a retention long enough to keep them through the run.
  const std::vector<std::string> config =
      im::test::WriteImdConfig(data.path(), "[storage]\nretention_s = 315360000\n");
  im::test::ImdProcess imd =
      im::test::StartImd(IMD_PATH, data.path(), "127.0.0.1:0", "127.0.0.1:0", config);

  im::LoginInfo bob_login;
  auto b = LoggedIn(imd, data.path(), "bob", "phone", &bob_login);
  CHECK(bob_login.epoch == bob.epoch);
  CHECK(bob_login.last_seq == bob.last_seq);
  CHECK(bob_login.acked_seq == 9);  // acked by bob's phone in the fixture
  auto old = b->Sync(0);
  REQUIRE(old.ok());
  std::vector<std::string> entries;
  for (const im::ReceivedMessage& r : old->messages) {
    const im::Message& m = r.message;
    entries.push_back(std::to_string(r.seq) + " " + std::to_string(m.mid) + " " +
                      std::to_string(m.ts) + " " + m.from + "|" + m.to + "|" + m.group + "|" +
                      m.type + "|" + m.body + "|" + m.extra);
  }
  CHECK(entries == bob.entries);
  im::LoginInfo alice_login;
  auto a = LoggedIn(imd, data.path(), "alice", "default", &alice_login);
  CHECK(alice_login.epoch == alice.epoch);
  CHECK(alice_login.last_seq == alice.last_seq);

  auto sent = a->SendText("bob", "after the upgrade");
  REQUIRE(sent.ok());
  CHECK(sent->seq == alice.last_seq + 1);
  auto page = b->Sync(bob.last_seq);
  REQUIRE(page.ok());
  CHECK(page->epoch == bob.epoch);
  REQUIRE(page->messages.size() == 1);
  CHECK(page->messages[0].seq == bob.last_seq + 1);
  CHECK(page->messages[0].message.body == "after the upgrade");
  imd.process->Signal(SIGTERM);
  CHECK(imd.process->Wait(20000) == 0);
}
#endif  // IMD_PATH
