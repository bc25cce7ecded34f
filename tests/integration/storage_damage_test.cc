// Damaged LevelDB storage is never silent: after each kind of damage (the log cut short, a table
// file with flipped bytes, CURRENT or the MANIFEST deleted or damaged) the inbox database either
// refuses to open with a message naming the directory and the repair, or opens with a new epoch,
// or opens with everything it had. Never the same epoch with a lower last_seq or a missing
// entry, which would hand seqs out again. Then the repair makes it open with a new epoch.
#include <doctest/doctest.h>
#include <leveldb/env.h>
#include <leveldb/options.h>
#include <leveldb/table.h>
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "im/backends.h"
#include "im/client.h"
#include "support/child_process.h"

namespace {

namespace fs = std::filesystem;

constexpr uint64_t kPerSession = 150;
const im::UserKey kAlice{"default", "alice"};
const im::UserKey kBob{"default", "bob"};
// Gets messages in the first session only: her header and entries are then in a table alone.
const im::UserKey kCarol{"default", "carol"};

// alice -> `to`, stored in both inboxes (as chat.send does), each message `mid`.
void Send(im::OfflineQueue& queue, uint64_t mid, const im::UserKey& to = kBob) {
  auto message = std::make_shared<im::Message>();
  message->mid = mid;
  message->tenant = "default";
  message->from = "alice";
  message->to = to.user;
  message->ts = 1000 + static_cast<int64_t>(mid);
  // Bodies that do not compress away, so the log holds many blocks.
  for (uint64_t i = 0; i < 40; ++i) message->body += std::to_string(mid * 7919 + i * 104729);
  im::AppendRequest request;
  request.message = message;
  request.recipients = {to, kAlice};
  request.sender_index = 1;
  auto result = queue.Append(request);
  REQUIRE(result.ok());
}

// An inbox as it was before the damage.
struct InboxState {
  std::string epoch;
  uint64_t last_seq = 0;
};
struct Inboxes {
  InboxState alice;
  InboxState bob;
};

// Two sessions: the first one's log becomes a table when the second opens the database; the
// second one's writes stay in the log. The inboxes as they were when closed.
Inboxes Fill(const std::string& dir) {
  Inboxes state;
  for (uint64_t session = 0; session < 2; ++session) {
    auto queue = im::OpenLevelDbOfflineQueue(dir);
    REQUIRE(queue.ok());
    for (uint64_t i = 1; i <= kPerSession; ++i) Send(**queue, session * kPerSession + i);
    if (session == 0) {
      for (uint64_t i = 1; i <= kPerSession; ++i) Send(**queue, 100 * kPerSession + i, kCarol);
    }
    for (auto [user, inbox] : {std::pair{kAlice, &state.alice}, std::pair{kBob, &state.bob}}) {
      auto info = (*queue)->Info(user);
      REQUIRE(info.ok());
      *inbox = {info->epoch, info->last_seq};
    }
  }
  REQUIRE(state.bob.last_seq == 2 * kPerSession);
  REQUIRE(state.alice.last_seq == 3 * kPerSession);
  return state;
}

// The contract for one inbox of an opened database: "new epoch", or "intact" (the same epoch,
// every entry still there).
std::string CheckInbox(im::OfflineQueue& queue, const im::UserKey& user, const InboxState& before) {
  CAPTURE(user.user);
  auto info = queue.Info(user);
  REQUIRE(info.ok());
  auto page = queue.Fetch(user, 0, 500);
  REQUIRE(page.ok());
  for (const im::InboxEntry& entry : page->entries) CHECK(entry.seq <= info->last_seq);
  if (info->epoch != before.epoch) return "new epoch";
  // Same epoch: nothing may be gone, or its seqs would be handed out again.
  CHECK(info->last_seq >= before.last_seq);
  CHECK(page->entries.size() == before.last_seq);
  CHECK_FALSE(page->gap);
  return "intact";
}

// Reopens after damage; "refused", "new epoch" or "intact", checking the contract on the way.
std::string Reopen(const std::string& dir, const Inboxes& before) {
  auto queue = im::OpenLevelDbOfflineQueue(dir);
  if (!queue.ok()) {
    const std::string message(queue.status().message());
    CHECK(queue.status().error() == "damaged");
    CHECK(message.find(dir) != std::string::npos);
    CHECK(message.find("imd repair") != std::string::npos);
    CHECK(message.find("new epoch") != std::string::npos);
    return "refused";
  }
  const std::string alice = CheckInbox(**queue, kAlice, before.alice);
  const std::string bob = CheckInbox(**queue, kBob, before.bob);
  auto info = (*queue)->Info(kBob);
  REQUIRE(info.ok());
  Send(**queue, 10 * kPerSession);  // a new mid
  auto after = (*queue)->Info(kBob);
  REQUIRE(after.ok());
  CHECK(after->last_seq == info->last_seq + 1);
  return alice == bob ? bob : alice + ", " + bob;
}

// After RepairLevelDbOfflineQueue, an inbox has a new epoch (when `old_epoch` is given), holds
// entries (`entries` of them when not 0) but none above its last_seq, and the next append goes
// above everything present.
void ExpectRepairedInbox(im::OfflineQueue& queue, const im::UserKey& user,
                         const std::string& old_epoch, uint64_t entries) {
  CAPTURE(user.user);
  auto info = queue.Info(user);
  REQUIRE(info.ok());
  if (!old_epoch.empty()) CHECK(info->epoch != old_epoch);
  uint64_t highest = 0;
  uint64_t count = 0;
  for (uint64_t after = 0;;) {
    auto page = queue.Fetch(user, after, 500);
    REQUIRE(page.ok());
    count += page->entries.size();
    for (const im::InboxEntry& entry : page->entries) highest = std::max(highest, entry.seq);
    if (!page->more) break;
    after = page->entries.back().seq;
  }
  CHECK(highest <= info->last_seq);
  CHECK(highest > 0);  // the repair kept what the files still hold
  if (entries != 0) CHECK(count == entries);
  Send(queue, 20 * kPerSession + highest, user);
  auto next = queue.Info(user);
  REQUIRE(next.ok());
  CHECK(next->last_seq == info->last_seq + 1);
  CHECK(next->epoch == info->epoch);
}

void ExpectRepaired(const std::string& dir, const Inboxes& before) {
  auto renewed = im::RepairLevelDbOfflineQueue(dir);
  REQUIRE(renewed.ok());
  CHECK(*renewed == 3);  // alice, bob and carol
  auto queue = im::OpenLevelDbOfflineQueue(dir);
  REQUIRE(queue.ok());
  ExpectRepairedInbox(**queue, kBob, before.bob.epoch, 0);
  // Carol's header may be lost with a damaged table, or only its older versions kept; her
  // entries, all in blocks no damage here reaches, must all be back and below her last_seq.
  ExpectRepairedInbox(**queue, kCarol, "", kPerSession);
}

std::vector<fs::path> FilesOf(const std::string& dir, const std::string& pattern) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (std::regex_match(entry.path().filename().string(), std::regex(pattern))) {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

void FlipBytes(const fs::path& file, size_t from, size_t count) {
  std::fstream stream(file, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(stream.good());
  for (size_t i = from; i < from + count; ++i) {
    stream.seekg(static_cast<std::streamoff>(i));
    const char c = static_cast<char>(stream.get() ^ 0x5A);
    stream.seekp(static_cast<std::streamoff>(i));
    stream.put(c);
  }
}

// The file offsets of the data blocks holding `first` and `last` in the table `file`.
std::pair<uint64_t, uint64_t> BlockRange(const fs::path& file, const std::string& first,
                                         const std::string& last) {
  leveldb::Env* env = leveldb::Env::Default();
  leveldb::RandomAccessFile* raw = nullptr;
  REQUIRE(env->NewRandomAccessFile(file.string(), &raw).ok());
  std::unique_ptr<leveldb::RandomAccessFile> reader(raw);
  leveldb::Table* table = nullptr;
  REQUIRE(leveldb::Table::Open(leveldb::Options(), reader.get(), fs::file_size(file), &table).ok());
  std::unique_ptr<leveldb::Table> owned(table);
  // Table keys are internal keys (user key, then 8 bytes of sequence and type); the offsets
  // only need to sort right.
  return {table->ApproximateOffsetOf(first), table->ApproximateOffsetOf(last)};
}

// Fills an inbox database, damages it with `damage`, reopens it (expecting `outcome`, or any
// outcome that keeps the contract when empty), then repairs it.
void DamageReopenRepair(const std::string& outcome,
                        const std::function<void(const std::string& dir)>& damage) {
  const std::string dir = im::test::MakeTempDir() + "/inbox";
  const Inboxes before = Fill(dir);
  damage(dir);
  const std::string reopened = Reopen(dir, before);
  if (!outcome.empty()) CHECK(reopened == outcome);
  // A refusal changed nothing: the table files are still there for the repair.
  if (reopened == "refused") CHECK_FALSE(FilesOf(dir, R"(\d+\.(ldb|sst))").empty());
  ExpectRepaired(dir, before);
  fs::remove_all(fs::path(dir).parent_path());
}

}  // namespace

TEST_CASE("storage damage: a log cut to half opens with a new epoch, never reused seqs") {
  DamageReopenRepair("new epoch", [](const std::string& dir) {
    const std::vector<fs::path> logs = FilesOf(dir, R"(\d+\.log)");
    REQUIRE(logs.size() == 1);
    fs::resize_file(logs[0], fs::file_size(logs[0]) / 2);
  });
}

TEST_CASE("storage damage: a log with flipped bytes in its middle is refused") {
  DamageReopenRepair("refused", [](const std::string& dir) {
    const std::vector<fs::path> logs = FilesOf(dir, R"(\d+\.log)");
    REQUIRE(logs.size() == 1);
    // Without paranoid checks LevelDB drops the damaged block and replays the writes after it.
    FlipBytes(logs[0], fs::file_size(logs[0]) / 3, 8);
  });
}

TEST_CASE("storage damage: a table file with flipped bytes is refused") {
  // Every block holding inbox headers (record type 'h'), up to and with the first block with an
  // inbox entry ('i'): every header is then lost (a header is written once per inbox, so they
  // share a block), carol's entries are not.
  DamageReopenRepair("refused", [](const std::string& dir) {
    const std::vector<fs::path> tables = FilesOf(dir, R"(\d+\.(ldb|sst))");
    REQUIRE(tables.size() == 1);
    const auto [from, to] = BlockRange(tables[0], "h", "i");
    REQUIRE(from <= to);
    for (uint64_t at = from; at < to; at += 128) FlipBytes(tables[0], at, 1);
    FlipBytes(tables[0], to, 1);
  });
}

TEST_CASE("storage damage: a missing CURRENT is refused, not taken for a new database") {
  DamageReopenRepair("refused", [](const std::string& dir) { fs::remove(dir + "/CURRENT"); });
}

TEST_CASE("storage damage: groups and users databases without CURRENT are refused too") {
  const std::string root = im::test::MakeTempDir();
  {
    auto groups = im::OpenLevelDbGroupService(root + "/groups");
    REQUIRE(groups.ok());
    REQUIRE((*groups)->Create(im::GroupKey{"default", "g"}, "g", "alice", {"bob"}, 1000).ok());
    auto users = im::OpenLevelDbUserStore(root + "/users");
    REQUIRE(users.ok());
    REQUIRE((*users)->Create(kAlice, "password1", "Alice", 1000).ok());
  }
  for (const char* name : {"groups", "users"}) {
    CAPTURE(name);
    const std::string dir = root + "/" + name;
    fs::remove(dir + "/CURRENT");
    const im::Status status = std::string(name) == "groups"
                                  ? im::OpenLevelDbGroupService(dir).status()
                                  : im::OpenLevelDbUserStore(dir).status();
    CHECK(status.error() == "damaged");
    CHECK(std::string(status.message()).find(dir + " is damaged") != std::string::npos);
    CHECK(FilesOf(dir, R"(\d+\.log)").size() == 1);  // nothing was deleted
    REQUIRE(im::RepairLevelDb(dir).ok());
  }
  auto groups = im::OpenLevelDbGroupService(root + "/groups");
  REQUIRE(groups.ok());
  auto members = (*groups)->AllMembers(im::GroupKey{"default", "g"});
  REQUIRE(members.ok());
  CHECK(members->size() == 2);
  auto users = im::OpenLevelDbUserStore(root + "/users");
  REQUIRE(users.ok());
  CHECK((*users)->VerifyPassword(kAlice, "password1").ok());
  fs::remove_all(root);
}

TEST_CASE("storage damage: a deleted or damaged MANIFEST is refused") {
  for (const std::string damage : {"deleted", "flipped", "halved"}) {
    CAPTURE(damage);
    // A MANIFEST cut short may read as complete; LevelDB then opens from what it names.
    DamageReopenRepair(damage == "halved" ? "" : "refused", [&damage](const std::string& dir) {
      const std::vector<fs::path> manifests = FilesOf(dir, R"(MANIFEST-\d+)");
      REQUIRE(manifests.size() == 1);
      if (damage == "deleted") {
        fs::remove(manifests[0]);
      } else if (damage == "flipped") {
        FlipBytes(manifests[0], 10, 4);
      } else {
        fs::resize_file(manifests[0], fs::file_size(manifests[0]) / 2);
      }
    });
  }
}

TEST_CASE("storage damage: repair refuses a database that is open") {
  const std::string dir = im::test::MakeTempDir() + "/inbox";
  auto queue = im::OpenLevelDbOfflineQueue(dir);
  REQUIRE(queue.ok());
  auto renewed = im::RepairLevelDbOfflineQueue(dir);
  REQUIRE_FALSE(renewed.ok());
  CHECK(renewed.status().code() == im::Code::kUnavailable);
  CHECK(std::string(renewed.status().message()).find("in use") != std::string::npos);
  fs::remove_all(fs::path(dir).parent_path());
}

TEST_CASE("storage damage: a database from before the write count opens as it was") {
  const std::string dir = im::test::MakeTempDir() + "/inbox";
  const Inboxes before = Fill(dir);
  fs::remove(dir + "/WRITE-COUNT");  // as an older version left it
  CHECK(Reopen(dir, before) == "intact");
  CHECK(fs::file_size(dir + "/WRITE-COUNT") == 16);
  fs::remove_all(fs::path(dir).parent_path());
}

#ifdef IMD_PATH
namespace {

// Runs imd with `args` to completion (at most 60 s) and returns stdout and stderr together.
std::string RunImd(const std::string& args, int* exit_code) {
  return im::test::RunAndCapture(
      {"/bin/sh", "-c", std::string("timeout 60 '") + IMD_PATH + "' " + args + " 2>&1"}, exit_code);
}

// Starts imd on `data` and returns its TCP URL ("" when it did not start).
std::string StartImd(im::test::ChildProcess& imd) {
  std::string serving = imd.WaitForLine("serving", 20000);
  std::smatch m;
  if (!std::regex_search(serving, m, std::regex(R"(tcp://(127\.0\.0\.1:\d+))"))) return "";
  return "tcp://" + m[1].str();
}

// A client of the imd at `url`, logged in as `user` with a token signed by `data`'s key.
std::unique_ptr<im::Client> LoggedIn(const std::string& url, const std::string& data,
                                     const std::string& user, im::LoginInfo* login) {
  int rc = 0;
  const std::string token =
      im::test::RunAndCapture({IMD_PATH, "token", "--user", user, "--data", data}, &rc);
  REQUIRE(rc == 0);
  im::ClientOptions options;
  options.url = url;
  auto client = std::make_unique<im::Client>(options);
  REQUIRE(client->Connect().ok());
  auto answer = client->Login(token);
  REQUIRE(answer.ok());
  *login = *answer;
  return client;
}

}  // namespace

TEST_CASE("storage damage: imd refuses a damaged inbox, imd repair gives it a new epoch") {
  const std::string data = im::test::MakeTempDir();
  const std::vector<std::string> serve = {IMD_PATH,      "--data", data,         "--http",
                                          "127.0.0.1:0", "--tcp",  "127.0.0.1:0"};
  int rc = 0;
  std::string epoch;
  {
    im::test::ChildProcess imd(serve);
    const std::string url = StartImd(imd);
    REQUIRE_FALSE(url.empty());
    im::LoginInfo login;
    auto a = LoggedIn(url, data, "alice", &login);
    for (int i = 0; i < 20; ++i) REQUIRE(a->SendText("bob", "m" + std::to_string(i)).ok());
    auto b = LoggedIn(url, data, "bob", &login);
    CHECK(login.last_seq == 20);
    epoch = login.epoch;

    // The running imd holds the databases: repair is refused and changes nothing.
    const std::string refused = RunImd("repair --data " + data, &rc);
    CHECK(rc == 1);
    CHECK(refused.find("in use") != std::string::npos);
    imd.Signal(SIGTERM);
    REQUIRE(imd.Wait(20000) == 0);
  }

  std::filesystem::remove(data + "/inbox/CURRENT");
  const std::string output =
      RunImd("--data " + data + " --http 127.0.0.1:0 --tcp 127.0.0.1:0", &rc);
  CAPTURE(output);
  CHECK(rc == 1);
  CHECK(output.find(data + "/inbox is damaged") != std::string::npos);
  CHECK(output.find("refusing to start") != std::string::npos);
  CHECK(output.find("`imd repair --data " + data + "`") != std::string::npos);
  CHECK(output.find("serving") == std::string::npos);

  const std::string repaired = RunImd("repair --data " + data, &rc);
  CAPTURE(repaired);
  CHECK(rc == 0);
  CHECK(repaired.find("inbox: repaired " + data + "/inbox; 2 inboxes have a new epoch") !=
        std::string::npos);
  CHECK(repaired.find("groups: repaired " + data + "/groups") != std::string::npos);
  CHECK(repaired.find("users: repaired " + data + "/users") != std::string::npos);
  CHECK(repaired.find("tenants: repaired " + data + "/tenants") != std::string::npos);

  im::test::ChildProcess imd(serve);
  const std::string url = StartImd(imd);
  REQUIRE_FALSE(url.empty());
  im::LoginInfo login;
  auto b = LoggedIn(url, data, "bob", &login);
  CHECK(login.epoch != epoch);
  CHECK(login.last_seq == 20);
  auto page = b->Sync(0);
  REQUIRE(page.ok());
  CHECK(page->messages.size() == 20);  // the repair recovered every message
  imd.Signal(SIGTERM);
  CHECK(imd.Wait(20000) == 0);
  std::filesystem::remove_all(data);
}
#endif  // IMD_PATH
