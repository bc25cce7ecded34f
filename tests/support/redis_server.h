// Test support: a redis-server of the test's own, on 127.0.0.1 and a free port, with its data in
// a temporary directory (appendonly yes, no RDB snapshots). Stopped (and the directory removed)
// by the destructor. Restart, Stop/Start and Kill9 keep the port and the directory, so the data
// comes back from the AOF as far as the server had written it.
//
// redis-server must be installed (scripts/setup.sh): a missing one throws, which fails the test;
// it is never skipped. Not thread-safe: one test thread drives it.
#ifndef IM_TESTS_SUPPORT_REDIS_SERVER_H_
#define IM_TESTS_SUPPORT_REDIS_SERVER_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "support/temp_dir.h"

namespace im::test {

struct RedisServerOptions {
  std::string appendfsync = "everysec";  // "always", "everysec" or "no"
  std::vector<std::string> extra_config;  // more redis.conf lines
};

class RedisServer {
 public:
  // Starts the server and waits until it answers PING (throws std::runtime_error otherwise).
  explicit RedisServer(RedisServerOptions options = {});
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const { return port_; }
  // "redis://127.0.0.1:<port>/<db>"
  std::string url(int db = 0) const;
  // The server's working directory (redis.conf, the AOF directory, the log).
  const std::string& dir() const { return dir_.path(); }
  bool running() const { return pid_ > 0; }

  // Starts it again on the same port and directory (throws when it does not come up).
  void Start();
  // SIGTERM and wait: Redis writes and fsyncs its AOF on the way out.
  void Stop();
  // SIGKILL and wait: whatever the AOF had not written is lost.
  void Kill9();
  void Restart() {
    Stop();
    Start();
  }

  // Sends one command on a fresh connection and returns the first line of the reply without
  // its CRLF ("+OK", ":1", "$5", "-ERR ..."); throws when the server does not answer.
  std::string Command(const std::vector<std::string>& args) const;
  // FLUSHALL: every database empty (throws unless +OK).
  void FlushAll() const;

 private:
  // One try to start on port_; false when the process exits (port taken) or does not answer.
  bool TryStart();
  void WaitExit();

  RedisServerOptions options_;
  TempDir dir_;
  std::string binary_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace im::test

#endif  // IM_TESTS_SUPPORT_REDIS_SERVER_H_
