// The event log's writer thread: lines keep their order, everything queued reaches the file at
// Stop, a line reaches it within flush_ms without Stop, lines gather until a flush instead of
// waking the writer each, the queue bound drops and counts, and size rotation still works. Real
// files in a temporary directory.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "im/log.h"
#include "ops/event_log.h"
#include "ops/metrics.h"
#include "protocol/json.h"
#include "support/temp_dir.h"
#include "support/wait_until.h"

namespace im::internal {
namespace {

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The `reason` field of each line (the tests put a sequence number there).
std::vector<std::string> Reasons(const std::vector<std::string>& lines) {
  std::vector<std::string> out;
  for (const std::string& line : lines) {
    rapidjson::Document d;
    REQUIRE(ParseJson(line, &d).ok());
    out.push_back(d["reason"].GetString());
  }
  return out;
}

BusinessEvent Numbered(const std::string& user, int n) {
  BusinessEvent e;
  e.event = "login";
  e.user = user;
  e.reason = std::to_string(n);
  return e;
}

std::unique_ptr<EventLog> OpenLog(const std::string& path, EventLogQueue queue,
                                  size_t max_file_bytes = 1 << 20, size_t max_files = 2) {
  auto log = EventLog::Open(path, "node-0", SystemClock(), max_file_bytes, max_files, queue);
  REQUIRE(log.ok());
  return std::move(*log);
}

TEST_CASE("event log: lines from many threads keep each thread's order and all reach the file "
          "at Stop") {
  test::TempDir dir;
  const std::string path = dir.path() + "/events.log";
  constexpr int kThreads = 4;
  constexpr int kEach = 3000;
  auto log = OpenLog(path, {kThreads * kEach, nullptr, 60000});  // no timed flush in the run
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&log, t] {
      for (int i = 0; i < kEach; ++i) log->Emit(Numbered("u" + std::to_string(t), i));
    });
  }
  for (auto& t : threads) t.join();
  log->Stop();
  CHECK(log->dropped() == 0);
  const auto lines = Lines(path);
  REQUIRE(lines.size() == kThreads * kEach);
  std::vector<int> next(kThreads, 0);
  for (const std::string& line : lines) {
    rapidjson::Document d;
    REQUIRE(ParseJson(line, &d).ok());
    const int t = std::stoi(std::string(d["user"].GetString()).substr(1));
    REQUIRE(std::stoi(d["reason"].GetString()) == next[t]);
    ++next[t];
  }
  // Stop is idempotent, and the destructor after it writes nothing twice.
  log->Stop();
  log.reset();
  CHECK(Lines(path).size() == kThreads * kEach);
}

TEST_CASE("event log: Stop writes every line still queued, in order") {
  test::TempDir dir;
  const std::string path = dir.path() + "/events.log";
  auto log = OpenLog(path, {1000, nullptr, 60000});
  log->HoldWriterForTest(true);  // everything stays queued until Stop
  for (int i = 0; i < 500; ++i) log->Emit(Numbered("alice", i));
  CHECK(Lines(path).empty());
  log->Stop();
  const auto reasons = Reasons(Lines(path));
  REQUIRE(reasons.size() == 500);
  for (int i = 0; i < 500; ++i) CHECK(reasons[static_cast<size_t>(i)] == std::to_string(i));
  CHECK(log->dropped() == 0);
}

TEST_CASE("event log: a line reaches the file within flush_ms while the log runs") {
  test::TempDir dir;
  const std::string path = dir.path() + "/events.log";
  auto log = OpenLog(path, {16, nullptr, 50});
  log->Emit(Numbered("alice", 1));
  CHECK(test::WaitUntil([&] { return Lines(path).size() == 1; }));
  log->Emit(Numbered("alice", 2));
  CHECK(test::WaitUntil([&] { return Lines(path).size() == 2; }));
  CHECK(Reasons(Lines(path)) == std::vector<std::string>{"1", "2"});
}

TEST_CASE("event log: lines after the first wait for its flush, or for half the bound") {
  test::TempDir dir;
  const std::string path = dir.path() + "/events.log";
  auto log = OpenLog(path, {10, nullptr, 600000});  // no timed flush during the test
  log->Emit(Numbered("alice", 1));                  // the first line wakes the writer
  REQUIRE(test::WaitUntil([&] { return log->waiting() == 0; }));
  // The writer now sleeps until line 1's flush: four more lines stay queued, no wake-up each.
  for (int i = 2; i <= 5; ++i) log->Emit(Numbered("alice", i));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(log->waiting() == 4);
  log->Emit(Numbered("alice", 6));  // five waiting: half the bound wakes it
  CHECK(test::WaitUntil([&] { return log->waiting() == 0; }));
  log->Flush();
  CHECK(Reasons(Lines(path)) == std::vector<std::string>{"1", "2", "3", "4", "5", "6"});
  log->Emit(Numbered("alice", 7));  // after a flush: the next line wakes the writer again
  CHECK(test::WaitUntil([&] { return log->waiting() == 0; }));
  CHECK(log->dropped() == 0);
}

TEST_CASE("event log: Flush returns once every line emitted before it is in the file") {
  test::TempDir dir;
  const std::string path = dir.path() + "/events.log";
  auto log = OpenLog(path, {1024, nullptr, 600000});  // no timed flush during the test
  for (int i = 1; i <= 300; ++i) log->Emit(Numbered("alice", i));
  log->Flush();
  const auto reasons = Reasons(Lines(path));
  REQUIRE(reasons.size() == 300);
  CHECK(reasons.front() == "1");
  CHECK(reasons.back() == "300");
  log->Flush();  // nothing new: returns at once
  log->Stop();
  log->Flush();  // after Stop: a no-op
  CHECK(Lines(path).size() == 300);
}

TEST_CASE("event log: past the queue bound events are dropped, counted and warned about once") {
  test::TempDir dir;
  const std::string path = dir.path() + "/events.log";
  std::mutex mu;
  std::vector<std::string> warnings;
  SetLogSink([&](LogLevel level, std::string_view m) {
    std::lock_guard<std::mutex> lock(mu);
    if (level == LogLevel::kWarn && m.find("event log") != std::string_view::npos) {
      warnings.emplace_back(m);
    }
  });
  Metrics metrics;
  auto log = OpenLog(path, {10, &metrics, 50});
  log->HoldWriterForTest(true);  // a stalled disk: Emit must neither block nor grow the queue
  for (int i = 0; i < 25; ++i) log->Emit(Numbered("alice", i));
  CHECK(log->dropped() == 15);
  const std::string scrape = metrics.Scrape([] { return Metrics::Snapshot{}; });
  CHECK(scrape.find("im_event_log_dropped_total 15") != std::string::npos);
  log->HoldWriterForTest(false);
  CHECK(test::WaitUntil([&] { return Lines(path).size() == 10; }));
  log->Stop();
  log->Emit(Numbered("alice", 99));  // after Stop: dropped and counted, never written
  CHECK(log->dropped() == 16);
  SetLogSink(nullptr);
  const auto lines = Lines(path);
  CHECK(Reasons(lines) ==
        std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"});
  REQUIRE(warnings.size() == 1);  // one per kDropWarnIntervalMs, not one per drop
  CHECK(warnings[0].find("dropped 1 event(s)") != std::string::npos);
}

TEST_CASE("event log: size rotation keeps the newest lines in order across the files") {
  test::TempDir dir;
  const std::string path = dir.path() + "/events.log";
  constexpr int kEvents = 300;  // about 80 bytes a line: several rotations of 1 KiB
  auto log = OpenLog(path, {1000, nullptr, 50}, /*max_file_bytes=*/1024, /*max_files=*/2);
  for (int i = 0; i < kEvents; ++i) log->Emit(Numbered("alice", i));
  log.reset();
  const std::string first = dir.path() + "/events.1.log";
  const std::string second = dir.path() + "/events.2.log";
  REQUIRE(std::filesystem::exists(first));
  REQUIRE(std::filesystem::exists(second));
  CHECK_FALSE(std::filesystem::exists(dir.path() + "/events.3.log"));
  for (const std::string& p : {path, first, second}) {
    CHECK(std::filesystem::file_size(p) <= 1024);
  }
  // Oldest file first: consecutive numbers ending with the last event.
  std::vector<std::string> all = Reasons(Lines(second));
  for (const std::string& r : Reasons(Lines(first))) all.push_back(r);
  for (const std::string& r : Reasons(Lines(path))) all.push_back(r);
  REQUIRE(all.size() > 10);
  for (size_t i = 0; i < all.size(); ++i) {
    CHECK(std::stoi(all[i]) == kEvents - static_cast<int>(all.size()) + static_cast<int>(i));
  }
}

}  // namespace
}  // namespace im::internal
