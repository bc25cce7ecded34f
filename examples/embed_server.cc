// The smallest host program: an IM server with in-memory backends, embedded in a few lines.
//
//   ./embed_server            # serves ws://127.0.0.1:7000/ws and tcp://127.0.0.1:7001
//
// It prints a token for "alice" and "bob" signed with its key, then serves until Enter.
#include <cstdio>
#include <iostream>
#include <string>

#include "im/auth.h"
#include "im/backends.h"
#include "im/server.h"

int main() {
  auto keys = im::NewStaticKeyStore({{"default", "replace-with-32-random-bytes-key!"}});

  im::ServerDeps deps;
  deps.sessions = im::NewMemorySessionStore();
  deps.router = im::NewLocalRouter();
  deps.inbox = im::NewMemoryOfflineQueue();
  deps.tokens = im::NewHs256Verifier(keys);

  im::ServerOptions options;  // 127.0.0.1:7000 (WebSocket) and 127.0.0.1:7001 (TCP)
  im::Server server(options, deps);
  server.SetOnLogin([](const im::SessionInfo& s) {
    std::printf("login: %s/%s on %s\n", s.user.tenant.c_str(), s.user.user.c_str(),
                s.device.c_str());
  });
  if (im::Status s = server.Start(); !s.ok()) {
    std::fprintf(stderr, "start failed: %s\n", s.ToString().c_str());
    return 1;
  }
  for (const char* user : {"alice", "bob"}) {
    auto token = im::SignHs256Token(*keys, {"default", user}, 3600, im::SystemClock()->NowMs());
    std::printf("token for %s: %s\n", user, token.ok() ? token->c_str() : "?");
  }
  std::printf("serving; press Enter to stop\n");
  std::string line;
  std::getline(std::cin, line);
  server.Stop();
  return 0;
}
