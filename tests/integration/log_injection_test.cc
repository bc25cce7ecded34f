// What clients send cannot forge program log lines, and cannot flood the log.
#include <doctest/doctest.h>

#include <fstream>
#include <memory>
#include <mutex>
#include <regex>
#include <string>
#include <vector>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "im/backends.h"
#include "im/log.h"
#include "im/offline_queue.h"
#include "ops/log.h"
#include "support/temp_dir.h"
#include "support/test_server.h"

using im::test::RawClient;
using im::test::TestServer;

namespace {

// A memory inbox whose Fetch fails: every chat.sync is a 500, a line at error level.
class FailingFetch final : public im::OfflineQueue {
 public:
  explicit FailingFetch(std::shared_ptr<im::OfflineQueue> inner) : inner_(std::move(inner)) {}
  im::Result<im::AppendResult> Append(const im::AppendRequest& r) override {
    return inner_->Append(r);
  }
  im::Result<im::FetchResult> Fetch(const im::UserKey&, uint64_t, size_t) override {
    return im::Status::Internal("disk on fire");
  }
  im::Result<im::InboxInfo> Info(const im::UserKey& u) override { return inner_->Info(u); }
  im::Status Ack(const im::UserKey& u, const std::string& d, uint64_t s) override {
    return inner_->Ack(u, d, s);
  }
  im::Result<uint64_t> Acked(const im::UserKey& u, const std::string& d) override {
    return inner_->Acked(u, d);
  }
  im::Result<size_t> Expire(im::TimestampMs now) override { return inner_->Expire(now); }

 private:
  std::shared_ptr<im::OfflineQueue> inner_;
};

struct RestoreLog {
  ~RestoreLog() {
    im::SetLogSink(nullptr);
    (void)im::ConfigureLogging(im::LogOptions{});
  }
};

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

TEST_CASE("log injection: a newline in cmd cannot forge a line in the log file") {
  RestoreLog restore;
  im::test::TempDir dir;
  const std::string path = dir.path() + "/imd.log";
  im::LogOptions lo;
  lo.level = im::LogLevel::kDebug;  // the unknown-command line is a debug line
  lo.console = false;
  lo.file = path;
  REQUIRE(im::ConfigureLogging(lo).ok());
  TestServer ts;
  RawClient c(ts.TcpUrl());
  REQUIRE(c.Login(ts.Token("alice")) == 0);
  const std::string forged = "x\n2026-01-01T00:00:00.000Z error [1] FAKE\r\x1b[2K\x7f";
  rapidjson::Document d;
  rapidjson::StringBuffer sb;
  // Built with a JSON writer so the control characters travel as JSON escapes.
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("id");
  w.Uint(7);
  w.Key("cmd");
  w.String(forged.c_str(), static_cast<rapidjson::SizeType>(forged.size()));
  w.EndObject();
  c.Send(sb.GetString());
  REQUIRE(c.WaitResponse(7, &d));
  CHECK(im::test::ErrorOf(d) == "unknown_command");
  REQUIRE(c.Call(8, "ping", "{}", &d));  // the line is written before the next command is read
  (void)im::ConfigureLogging(im::LogOptions{});  // flush and close the file
  const std::regex line_start(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (trace|debug|info|warn|error) \[\d+\] .*)");
  bool seen = false;
  for (const std::string& line : Lines(path)) {
    CAPTURE(line);
    CHECK(std::regex_match(line, line_start));
    CHECK(line.find('\r') == std::string::npos);
    CHECK(line.find('\x1b') == std::string::npos);
    CHECK_FALSE(line.rfind("2026-01-01T00:00:00.000Z error [1] FAKE", 0) == 0);
    if (line.find("FAKE") != std::string::npos) {
      seen = true;
      CHECK(line.find("unknown command 'x\\n2026-01-01T00:00:00.000Z error [1] FAKE\\r\\x1b[2K"
                      "\\x7f'") != std::string::npos);
    }
  }
  CHECK(seen);
}

TEST_CASE("log flooding: 10,000 bad commands write a bounded number of lines") {
  RestoreLog restore;
  std::mutex mu;
  std::vector<std::pair<im::LogLevel, std::string>> got;
  im::SetLogLevel(im::LogLevel::kInfo);
  im::SetLogSink([&](im::LogLevel l, std::string_view m) {
    std::lock_guard<std::mutex> lock(mu);
    got.emplace_back(l, std::string(m));
  });
  TestServer ts({}, [](im::ServerDeps& deps) {
    deps.inbox = std::make_shared<FailingFetch>(im::NewMemoryOfflineQueue());
  });
  RawClient c(ts.TcpUrl());
  REQUIRE(c.Login(ts.Token("alice")) == 0);
  im::internal::ResetClientLines();
  auto count = [&] {
    std::lock_guard<std::mutex> lock(mu);
    size_t n = 0;
    for (const auto& [level, text] : got) n += level >= im::LogLevel::kWarn ? 1 : 0;
    return n;
  };
  const size_t before = count();
  const auto start = std::chrono::steady_clock::now();
  rapidjson::Document d;
  // 5,000 unknown commands (501: no line at all) and 5,000 failing chat.sync (500: error lines).
  for (int batch = 0; batch < 100; ++batch) {
    for (int i = 0; i < 50; ++i) {
      const int n = batch * 100 + i * 2;
      c.Send(R"({"id":)" + std::to_string(n) + R"(,"cmd":"no.such.)" + std::to_string(n) +
             R"("})");
      c.Send(R"({"id":)" + std::to_string(n + 1) + R"(,"cmd":"chat.sync","body":{}})");
    }
    REQUIRE(c.WaitResponse(static_cast<uint32_t>(batch * 100 + 99), &d, 30000));
    CHECK(im::test::CodeOf(d) == 500);
  }
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const size_t lines = count() - before;
  CAPTURE(elapsed);
  CHECK(lines >= im::internal::kClientLinesBurst);
  CHECK(lines <= im::internal::kClientLinesBurst + 2 +
                     2 * static_cast<size_t>(elapsed * im::internal::kClientLinesPerSecond));
  std::lock_guard<std::mutex> lock(mu);
  for (const auto& [level, text] : got) {
    CHECK(text.find("no.such.") == std::string::npos);  // 501s are not logged at this level
  }
}
