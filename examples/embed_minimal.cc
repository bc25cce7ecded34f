// The smallest host: memory backends, one signing key, TCP and WebSocket listeners; prints a
// token for alice and bob, serves until SIGINT or SIGTERM. Args: [TCP_LISTEN [HTTP_LISTEN]].
#include <signal.h>
#include <cstdio>

#include "im/auth.h"
#include "im/backends.h"
#include "im/server.h"

int main(int argc, char** argv) {
  auto keys = im::NewStaticKeyStore({{"default", "replace-with-32-random-bytes-key!"}});
  im::ServerDeps deps;
  deps.sessions = im::NewMemorySessionStore();
  deps.router = im::NewLocalRouter();
  deps.inbox = im::NewMemoryOfflineQueue();
  deps.tokens = im::NewHs256Verifier(keys);
  im::ServerOptions options;
  if (argc > 1) options.tcp_listen = argv[1];
  if (argc > 2) options.http_listen = argv[2];
  sigset_t stop;  // blocked before the server's threads start, so only sigwait sees them
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  im::Server server(options, deps);
  if (im::Status s = server.Start(); !s.ok()) {
    std::fprintf(stderr, "start: %s\n", s.ToString().c_str());
    return 1;
  }
  for (const char* user : {"alice", "bob"}) {
    auto token = im::SignHs256Token(*keys, {"default", user}, 3600, im::SystemClock()->NowMs());
    std::printf("token for %s: %s\n", user, token.ok() ? token->c_str() : "?");
  }
  std::printf("serving tcp %u http %u\n", server.tcp_port(), server.http_port());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop, &sig);
  server.Stop();
}
