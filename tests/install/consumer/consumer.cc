// A program outside the libim tree, built against an installed libim (find_package or
// pkg-config): a server on a free port with memory backends, a client that logs in and sends.
// With IM_CONSUMER_LEVELDB it also opens a LevelDB inbox (the leveldb component).
#include <stdlib.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include "im/auth.h"
#include "im/backends.h"
#include "im/client.h"
#include "im/server.h"
#include "im/version.h"

int Fail(const char* what, const im::Status& s) {
  std::fprintf(stderr, "consumer: %s: %s\n", what, s.ToString().c_str());
  return 1;
}

int Run(const std::string& dir) {
  if (std::strcmp(im::LinkedVersion(), IM_VERSION_STRING) != 0) {
    std::fprintf(stderr, "consumer: headers %s, library %s\n", IM_VERSION_STRING,
                 im::LinkedVersion());
    return 1;
  }
  auto keys = im::NewStaticKeyStore({{"default", "consumer-test-key-of-32-bytes!!!"}});
  im::ServerDeps deps;
  deps.sessions = im::NewMemorySessionStore();
  deps.router = im::NewLocalRouter();
  deps.inbox = im::NewMemoryOfflineQueue();
  deps.tokens = im::NewHs256Verifier(keys);
#ifdef IM_CONSUMER_LEVELDB
  auto durable = im::OpenLevelDbOfflineQueue(dir + "/inbox");
  if (!durable.ok()) return Fail("leveldb", durable.status());
  deps.inbox = *durable;
#endif
  im::ServerOptions options;
  options.tcp_listen = "127.0.0.1:0";
  options.http_listen = "";
  im::Server server(options, deps);
  if (im::Status s = server.Start(); !s.ok()) return Fail("start", s);

  im::ClientOptions co;
  co.url = "tcp://127.0.0.1:" + std::to_string(server.tcp_port());
  im::Client client(co);
  auto token = im::SignHs256Token(*keys, {"default", "alice"}, 60, im::SystemClock()->NowMs());
  if (!token.ok()) return Fail("sign", token.status());
  if (im::Status s = client.Connect(); !s.ok()) return Fail("connect", s);
  auto login = client.Login(*token);
  if (!login.ok()) return Fail("login", login.status());
  auto ack = client.SendText("bob", "hello from outside");
  if (!ack.ok()) return Fail("send", ack.status());
  std::printf("consumer: libim %s: sent seq %llu\n", im::LinkedVersion(),
              static_cast<unsigned long long>(ack->seq));
  return 0;
}

int main() {
  char dir[] = "/tmp/im-consumer-XXXXXX";
  if (mkdtemp(dir) == nullptr) return 1;
  int rc = Run(dir);
  std::filesystem::remove_all(dir);
  return rc;
}
