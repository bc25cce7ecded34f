#include "support/imd_process.h"

#include <doctest/doctest.h>

#include <fstream>
#include <regex>

#include "im/types.h"

namespace im::test {

ImdProcess StartImd(const std::string& imd_path, const std::string& data,
                    const std::string& tcp_listen, const std::string& http_listen,
                    const std::vector<std::string>& extra_args) {
  ImdProcess imd;
  imd.spawned_ms = SystemClock()->NowMs();
  std::vector<std::string> argv = {imd_path,   "--data", data,       "--tcp",
                                   tcp_listen, "--http", http_listen};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  imd.process = std::make_unique<ChildProcess>(argv);
  const std::string serving = imd.process->WaitForLine("serving", 20000);
  REQUIRE_MESSAGE(!serving.empty(), "imd did not start on " << data);
  std::smatch m;
  REQUIRE(std::regex_search(serving, m, std::regex(R"(tcp://(127\.0\.0\.1:\d+))")));
  imd.tcp_listen = m[1].str();
  REQUIRE(std::regex_search(serving, m, std::regex(R"(ws://(127\.0\.0\.1:\d+)/ws)")));
  imd.http_listen = m[1].str();
  imd.tcp_url = "tcp://" + imd.tcp_listen;
  imd.ws_url = "ws://" + imd.http_listen + "/ws";
  return imd;
}

std::vector<std::string> WriteImdConfig(const std::string& data, const std::string& toml) {
  const std::string path = data + "/imd.toml";
  std::ofstream out(path);
  out << toml;
  out.close();
  REQUIRE_MESSAGE(out.good(), "cannot write " << path);
  return {"--config", path};
}

std::string ImdToken(const std::string& imd_path, const std::string& data,
                     const std::string& user) {
  int rc = 0;
  std::string token = RunAndCapture({imd_path, "token", "--user", user, "--data", data}, &rc);
  REQUIRE_MESSAGE(rc == 0, "imd token --user " << user << " exited " << rc);
  return token;
}

}  // namespace im::test
