// imd's messages to a person: config errors name the file, line and key, the type expected and
// the closest key; command-line mistakes exit 2 with one line; a held data directory, a port in
// use and the signing key `imd token` uses are each said once, plainly; --version.
#include <doctest/doctest.h>
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include "im/version.h"
#include "support/child_process.h"
#include "support/imd_process.h"

namespace {

using im::test::ChildProcess;

// Runs imd with `args` (words without spaces) and returns what it printed, stderr included.
std::string RunImd(const std::string& args, int* rc) {
  return im::test::RunAndCapture({"/bin/sh", "-c", std::string(IMD_PATH) + " " + args + " 2>&1"},
                                 rc);
}

size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

TEST_CASE("imd errors: a config error names the file, line and key, the type and the closest key") {
  std::string dir = im::test::MakeTempDir();
  std::ofstream(dir + "/typo.toml") << "[server]\nheartbeat_s = 10\nhtpp = \"127.0.0.1:0\"\n";
  std::ofstream(dir + "/type.toml") << "data = \"" << dir << "\"\n[server]\nio_threads = \"4\"\n";
  int rc = 0;
  std::string out = RunImd("--config " + dir + "/typo.toml --data " + dir, &rc);
  CHECK(rc == 1);
  CHECK_MESSAGE(out == "imd: " + dir + "/typo.toml:3: server.htpp: unknown key; did you mean "
                           "server.http?", out);
  out = RunImd("--config " + dir + "/type.toml", &rc);
  CHECK(rc == 1);
  CHECK_MESSAGE(out == "imd: " + dir + "/type.toml:3: server.io_threads: expected an integer, "
                           "not a string", out);
  std::ofstream(dir + "/slice.toml")
      << "data = \"" << dir << "\"\n[server]\nthread_slice_us = 50\n";
  out = RunImd("--config " + dir + "/slice.toml", &rc);
  CHECK(rc == 1);
  CHECK_MESSAGE(out == "imd: " + dir + "/slice.toml: server.thread_slice_us must be 0 or "
                           "100..100000", out);
  std::filesystem::remove_all(dir);
}

TEST_CASE("imd errors: command-line mistakes exit 2 with one line and no HTTP status") {
  for (const char* args : {"--bogus", "token", "token --user alice --ttl 0 --data /nonexistent",
                           "--tcp"}) {
    int rc = 0;
    std::string out = RunImd(args, &rc);
    CHECK_MESSAGE(rc == 2, args);
    CHECK_MESSAGE(out.rfind("imd: ", 0) == 0, out);
    CHECK_MESSAGE(std::count(out.begin(), out.end(), '\n') == 0, out);
    CHECK_MESSAGE(out.find("400") == std::string::npos, out);
  }
  int rc = 0;
  CHECK(RunImd("--version", &rc) == std::string("imd ") + IM_VERSION_STRING);
  CHECK(rc == 0);
}

TEST_CASE("imd errors: a held data dir, a port in use, and --tcp with a host name") {
  std::string data = im::test::MakeTempDir();
  im::test::ImdProcess first = im::test::StartImd(IMD_PATH, data);
  int rc = 0;
  std::string out = RunImd("--data " + data + " --tcp 127.0.0.1:0 --http 127.0.0.1:0", &rc);
  CHECK(rc == 1);
  CHECK_MESSAGE(out.find("imd: another imd is using " + data + "/inbox (LOCK held)") !=
                    std::string::npos, out);

  std::string other = im::test::MakeTempDir();
  out = RunImd("--data " + other + " --tcp " + first.tcp_listen + " --http 127.0.0.1:0", &rc);
  CHECK(rc == 1);
  CHECK_MESSAGE(Count(out, "cannot listen on " + first.tcp_listen) == 1, out);

  std::string named = im::test::MakeTempDir();
  ChildProcess by_name({IMD_PATH, "--data", named, "--tcp", "localhost:0", "--http",
                        "localhost:0"});
  CHECK_FALSE(by_name.WaitForLine("tcp://localhost:", 30000).empty());
  by_name.Signal(SIGTERM);
  CHECK(by_name.Wait(30000) == 0);
  first.process->Signal(SIGTERM);
  CHECK(first.process->Wait(30000) == 0);
  for (const std::string& d : {data, other, named}) std::filesystem::remove_all(d);
}

TEST_CASE("imd token: says when it creates a key and when the running imd's key differs") {
  std::string data = im::test::MakeTempDir();
  int rc = 0;
  std::string out = RunImd("token --user alice --data " + data, &rc);
  CHECK(rc == 0);
  CHECK_MESSAGE(out.find("imd token: created a new signing key for tenant 'default' in " + data +
                         "/keys/") != std::string::npos, out);
  out = RunImd("token --user alice --data " + data, &rc);  // the same key: the token alone
  CHECK(rc == 0);
  CHECK_MESSAGE(Count(out, "\n") == 0, out);

  im::test::ImdProcess server = im::test::StartImd(IMD_PATH, data);
  out = RunImd("token --user alice --data " + data, &rc);
  CHECK_MESSAGE(Count(out, "\n") == 0, out);  // the server's own key: nothing to say
  std::ofstream(data + "/keys/default.key", std::ios::trunc) << std::string(64, 'a') << "\n";
  out = RunImd("token --user alice --data " + data, &rc);
  CHECK(rc == 0);
  CHECK_MESSAGE(out.find("signs tenant 'default' with another key than " + data +
                         "/keys/default.key") != std::string::npos, out);
  server.process->Signal(SIGTERM);
  CHECK(server.process->Wait(30000) == 0);
  std::filesystem::remove_all(data);
}

}  // namespace
