// The threads on a message's path ask for ServerOptions::thread_slice_us (include/im/options.h).
// Linux 6.12 and later report a thread's slice back; on other kernels the test says so and has
// nothing to check.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "base/thread_slice.h"
#include "support/test_server.h"

using im::test::CodeOf;
using im::test::RawClient;
using im::test::TestServer;

namespace {

// The slice of every thread of this process, by thread name.
std::map<std::string, std::vector<uint32_t>> SlicesByName() {
  std::map<std::string, std::vector<uint32_t>> out;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
    std::string name;
    std::getline(std::ifstream(entry.path() / "comm"), name);
    const int tid = std::stoi(entry.path().filename().string());
    out[name].push_back(im::internal::ThreadSliceUs(tid));
  }
  return out;
}

}  // namespace

TEST_CASE("threads: im-io, im-worker, im-commit and im-fanout ask for thread_slice_us, and 0 leaves the kernel's") {
  uint32_t probe = 0;
  std::thread([&] {
    if (im::internal::RequestThreadSlice(300)) probe = im::internal::ThreadSliceUs();
  }).join();
  if (probe != 300) {
    MESSAGE("this kernel has no per-thread slices (Linux < 6.12): nothing to check");
    return;
  }
  for (uint32_t slice : {200u, 0u}) {
    CAPTURE(slice);
    im::ServerOptions o;
    o.thread_slice_us = slice;
    TestServer ts(o);
    RawClient c(ts.TcpUrl());
    REQUIRE(c.Login(ts.Token("alice")) == 0);  // the login runs on a worker
    rapidjson::Document d;
    REQUIRE(c.Call(2, "chat.send", R"({"to":"bob","cid":"c1","body":"hi"})", &d));
    CHECK(CodeOf(d) == 0);
    const auto slices = SlicesByName();
    for (const char* name : {"im-io", "im-worker", "im-commit", "im-fanout"}) {
      CAPTURE(name);
      REQUIRE(slices.count(name) == 1);
      for (uint32_t us : slices.at(name)) CHECK((us == 200) == (slice == 200));
    }
  }
}
