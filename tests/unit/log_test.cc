// The program log (im/log.h): levels, size rotation of the file, a host's sink.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "im/log.h"
#include "ops/log.h"
#include "support/temp_dir.h"

namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Back to the defaults (stderr, info) so later cases in this process log as usual.
struct RestoreLog {
  ~RestoreLog() {
    im::SetLogSink(nullptr);
    (void)im::ConfigureLogging(im::LogOptions{});
  }
};

}  // namespace

TEST_CASE("log: levels parse by name and round-trip") {
  for (const char* name : {"trace", "debug", "info", "warn", "error", "off"}) {
    auto l = im::ParseLogLevel(name);
    REQUIRE(l.ok());
    CHECK(std::string(im::LogLevelName(*l)) == name);
  }
  CHECK(im::ParseLogLevel("verbose").status().code() == im::Code::kBadRequest);
  CHECK(im::ParseLogLevel("").status().code() == im::Code::kBadRequest);
}

TEST_CASE("log: the file gets lines at or above the level - the level changes at run time") {
  RestoreLog restore;
  im::test::TempDir dir;
  im::LogOptions o;
  o.console = false;
  o.file = dir.path() + "/imd.log";
  o.level = im::LogLevel::kInfo;
  REQUIRE(im::ConfigureLogging(o).ok());
  IM_LOG_DEBUG("hidden {}", 1);
  IM_LOG_INFO("shown {}", 2);
  IM_LOG_WARN("warned {}", 3);
  im::SetLogLevel(im::LogLevel::kDebug);
  CHECK(im::GetLogLevel() == im::LogLevel::kDebug);
  IM_LOG_DEBUG("now shown {}", 4);
  im::SetLogLevel(im::LogLevel::kOff);
  IM_LOG_ERROR("dropped {}", 5);
  REQUIRE(im::ConfigureLogging(im::LogOptions{}).ok());  // flushes and closes the file
  std::string text = ReadAll(o.file);
  CHECK(text.find("hidden 1") == std::string::npos);
  CHECK(text.find(" info [") != std::string::npos);
  CHECK(text.find("shown 2") != std::string::npos);
  CHECK(text.find(" warning [") != std::string::npos);
  CHECK(text.find("warned 3") != std::string::npos);
  CHECK(text.find("now shown 4") != std::string::npos);
  CHECK(text.find("dropped 5") == std::string::npos);
  // UTC ISO-8601 time first: 2026-11-27T16:20:00.123Z
  REQUIRE(text.size() > 24);
  CHECK(text[4] == '-');
  CHECK(text[10] == 'T');
  CHECK(text[23] == 'Z');
}

TEST_CASE("log: the file rotates by size and keeps at most max_files old files") {
  RestoreLog restore;
  im::test::TempDir dir;
  im::LogOptions o;
  o.console = false;
  o.file = dir.path() + "/imd.log";
  o.max_file_bytes = 4096;
  o.max_files = 2;
  REQUIRE(im::ConfigureLogging(o).ok());
  const std::string filler(100, 'x');
  for (int i = 0; i < 500; ++i) IM_LOG_WARN("line {} {}", i, filler);
  REQUIRE(im::ConfigureLogging(im::LogOptions{}).ok());
  namespace fs = std::filesystem;
  CHECK(fs::exists(o.file));
  CHECK(fs::exists(dir.path() + "/imd.1.log"));
  CHECK(fs::exists(dir.path() + "/imd.2.log"));
  CHECK_FALSE(fs::exists(dir.path() + "/imd.3.log"));
  for (const auto& e : fs::directory_iterator(dir.path())) {
    CHECK(fs::file_size(e.path()) <= o.max_file_bytes);
  }
  // The newest lines are in the current file, the last rotated ones just before.
  CHECK(ReadAll(o.file).find("line 499 ") != std::string::npos);
  CHECK(ReadAll(o.file).find("line 0 ") == std::string::npos);
}

TEST_CASE("log: a file that cannot be opened is an error and changes nothing") {
  RestoreLog restore;
  im::LogOptions o;
  o.console = false;
  o.file = "/proc/no/such/dir/imd.log";
  o.level = im::LogLevel::kError;
  im::SetLogLevel(im::LogLevel::kInfo);
  CHECK(im::ConfigureLogging(o).code() == im::Code::kUnavailable);
  CHECK(im::GetLogLevel() == im::LogLevel::kInfo);
}

TEST_CASE("log: a host sink receives the lines instead of the outputs") {
  RestoreLog restore;
  std::vector<std::pair<im::LogLevel, std::string>> got;
  im::SetLogLevel(im::LogLevel::kInfo);
  im::SetLogSink([&](im::LogLevel l, std::string_view m) { got.emplace_back(l, std::string(m)); });
  IM_LOG_DEBUG("below the level");
  IM_LOG_ERROR("storage {} failed", "append");
  im::SetLogSink(nullptr);
  IM_LOG_ERROR("after the sink");
  REQUIRE(got.size() == 1);
  CHECK(got[0].first == im::LogLevel::kError);
  CHECK(got[0].second == "storage append failed");
}
