// Test support: the imd binary as a child process on a data dir, with the addresses it bound.
#ifndef IM_TESTS_SUPPORT_IMD_PROCESS_H_
#define IM_TESTS_SUPPORT_IMD_PROCESS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "support/child_process.h"

namespace im::test {

struct ImdProcess {
  std::unique_ptr<ChildProcess> process;
  std::string tcp_listen;  // "127.0.0.1:PORT" as bound (port 0 resolved)
  std::string http_listen;
  std::string tcp_url;  // "tcp://127.0.0.1:PORT"
  std::string ws_url;   // "ws://127.0.0.1:PORT/ws"
  // Wall clock just before the process existed: every message it stores has ts >= this.
  int64_t spawned_ms = 0;
};

// Starts `imd_path` (IMD_PATH) on `data` and waits for its "serving" line, which names the
// bound ports: with the default port 0 parallel tests cannot collide, and a restart may pass
// the previous run's tcp_listen/http_listen to come back on the same ports. REQUIREs success.
ImdProcess StartImd(const std::string& imd_path, const std::string& data,
                    const std::string& tcp_listen = "127.0.0.1:0",
                    const std::string& http_listen = "127.0.0.1:0",
                    const std::vector<std::string>& extra_args = {});

// Writes `toml` to <data>/imd.toml; the arguments that make StartImd read it (its extra_args).
std::vector<std::string> WriteImdConfig(const std::string& data, const std::string& toml);

// `imd token --user user --data data`: a token signed with the data dir's key. REQUIREs exit 0.
std::string ImdToken(const std::string& imd_path, const std::string& data, const std::string& user);

}  // namespace im::test

#endif  // IM_TESTS_SUPPORT_IMD_PROCESS_H_
