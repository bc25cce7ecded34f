// The program log escapes what a client could use to forge lines; client-triggered lines are
// rate-limited; the event log stays one valid JSON object a line whatever its fields hold.
#include <doctest/doctest.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "im/log.h"
#include "ops/event_log.h"
#include "ops/log.h"
#include "protocol/json.h"
#include "support/temp_dir.h"

namespace im::internal {
namespace {

// Collects the lines given to the log's sink while it lives.
class SinkLines {
 public:
  SinkLines() {
    SetLogSink([this](LogLevel, std::string_view m) {
      std::lock_guard<std::mutex> lock(mu_);
      lines_.emplace_back(m);
    });
  }
  ~SinkLines() { SetLogSink(nullptr); }
  std::vector<std::string> lines() {
    std::lock_guard<std::mutex> lock(mu_);
    return lines_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> lines_;
};

TEST_CASE("log escape: control characters, DEL, C1 and invalid UTF-8 are escaped") {
  CHECK(EscapeLogText("plain text: 'ok' {1} [x]") == "plain text: 'ok' {1} [x]");
  CHECK(EscapeLogText("a\nb\rc\td") == "a\\nb\\rc\\td");
  CHECK(EscapeLogText("\x1b[31mred") == "\\x1b[31mred");
  CHECK(EscapeLogText(std::string("nul\0bel\x07", 8)) == "nul\\x00bel\\x07");
  CHECK(EscapeLogText("del\x7f") == "del\\x7f");
  CHECK(EscapeLogText("c1\xc2\x85next") == "c1\\xc2\\x85next");        // U+0085 NEXT LINE
  CHECK(EscapeLogText("bad\xff\xfe") == "bad\\xff\\xfe");
  CHECK(EscapeLogText("cut\xc3") == "cut\\xc3");
  CHECK(EscapeLogText("\xc3\xbc \xe2\x82\xac \xf0\x9f\x98\x80") == "\xc3\xbc \xe2\x82\xac \xf0\x9f\x98\x80");
}

TEST_CASE("log escape: a sink never sees a raw newline, whatever the message holds") {
  std::vector<std::string> got;
  {
    SinkLines sink;
    IM_LOG_ERROR("cmd {} failed", "x\n2026-01-01T00:00:00.000Z error [1] FAKE");
    got = sink.lines();
  }
  REQUIRE(got.size() == 1);
  CHECK(got[0] == "cmd x\\n2026-01-01T00:00:00.000Z error [1] FAKE failed");
}

TEST_CASE("log escape: client-triggered lines pass a token bucket and report what was dropped") {
  auto sink = std::make_unique<SinkLines>();
  ResetClientLines();  // other cases in this process may have used the bucket
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 10000; ++i) IM_LOG_CLIENT_ERROR("bad thing {}", i);
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const size_t passed = sink->lines().size();
  CHECK(passed >= kClientLinesBurst);
  CHECK(passed <= kClientLinesBurst + 1 + static_cast<size_t>(elapsed * kClientLinesPerSecond));
  // One token later, the next line says how many were dropped.
  std::this_thread::sleep_for(std::chrono::milliseconds(1000 / kClientLinesPerSecond + 50));
  IM_LOG_CLIENT_ERROR("bad thing {}", "last");
  const std::vector<std::string> got = sink->lines();
  sink.reset();
  REQUIRE(got.size() == passed + 2);
  CHECK(got[passed] == "log: suppressed " + std::to_string(10000 - passed) +
                           " client-triggered line(s)");
  CHECK(got[passed + 1] == "bad thing last");
  // Ordinary lines are never limited.
  SinkLines plain;
  for (int i = 0; i < 1000; ++i) IM_LOG_ERROR("server thing {}", i);
  CHECK(plain.lines().size() == 1000);
}

TEST_CASE("event log: every line is one JSON object, whatever the fields hold") {
  test::TempDir dir;
  const std::string path = dir.path() + "/events.log";
  auto log = EventLog::Open(path, "node-0", SystemClock(), 1 << 20, 2);
  REQUIRE(log.ok());
  BusinessEvent e;
  e.event = "login_failed";
  e.user = "eve\n{\"event\":\"login\"}";
  e.device = "dev\x1b[2J\x7f";
  e.reason = "bad\xff\xfe utf-8";
  e.tenant = "\xe7\xa7\x9f\xe6\x88\xb7 \xf0\x9f\x98\x80";  // well-formed: written as it is
  e.group = "\xe7\xa7\x9f\xe6\x88";  // a truncated sequence: replaced
  (*log)->Emit(e);
  log->reset();
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  REQUIRE(lines.size() == 1);
  rapidjson::Document d;
  REQUIRE(ParseJson(lines[0], &d).ok());
  CHECK(std::string(d["user"].GetString()) == e.user);
  CHECK(std::string(d["device"].GetString()) == e.device);
  CHECK(std::string(d["reason"].GetString()) == "bad\xef\xbf\xbd\xef\xbf\xbd utf-8");
  CHECK(std::string(d["tenant"].GetString()) == e.tenant);
  CHECK(std::string(d["group"].GetString()) == "\xe7\xa7\x9f\xef\xbf\xbd\xef\xbf\xbd");
}

}  // namespace
}  // namespace im::internal
