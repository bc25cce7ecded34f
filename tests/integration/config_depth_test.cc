// A config file nested absurdly deep is refused with a message, never a crash of imd.
#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>

#include "support/child_process.h"

using im::test::ChildProcess;

namespace {

std::string Repeat(const std::string& part, const std::string& sep, int n) {
  std::string out = part;
  for (int i = 1; i < n; ++i) out += sep + part;
  return out;
}

}  // namespace

TEST_CASE("imd config: deep keys, tables and arrays are refused, imd exits 1") {
  const std::string dir = im::test::MakeTempDir();
  const std::string deep_key = Repeat("a", ".", 300000);
  const std::string cases[] = {
      deep_key + " = 1\n",                                   // a dotted key
      "[" + deep_key + "]\nb = 1\n",                         // a table header
      "x = { " + deep_key + " = 1 }\n",                      // inside an inline table
      "x = " + std::string(200000, '[') + std::string(200000, ']') + "\n",  // arrays
      "x = " + Repeat("{a=", "", 100000) + "1" + std::string(100000, '}') + "\n",
  };
  for (const std::string& text : cases) {
    CAPTURE(text.substr(0, 40));
    std::ofstream(dir + "/deep.toml") << text;
    int rc = -2;
    const std::string out = im::test::RunAndCapture(
        {IMD_PATH, "--config", dir + "/deep.toml", "--data", dir, "--http", "127.0.0.1:0",
         "--tcp", "127.0.0.1:0"},
        &rc);
    CHECK(rc == 1);  // refused; a crash would be 128 + SIGSEGV
  }
  // Dots inside strings and comments do not count: this file is fine.
  std::ofstream(dir + "/ok.toml") << "# " << deep_key << "\n[log]\nfile = \"" << dir
                                  << Repeat("/.", "", 300) << "/imd.log\"\n";
  ChildProcess imd({IMD_PATH, "--config", dir + "/ok.toml", "--data", dir, "--http",
                    "127.0.0.1:0", "--tcp", "127.0.0.1:0"});
  CHECK(imd.WaitForLine(" serving ", 30000) != "");
  imd.Signal(SIGTERM);
  CHECK(imd.Wait(30000) == 0);
  std::filesystem::remove_all(dir);
}
