// What the example hosts share: memory backends with one fixed signing key, tokens for the
// demo users, and waiting for SIGINT or SIGTERM (embed_minimal.cc spells all of it out).
#ifndef IM_EXAMPLES_EXAMPLE_HOST_H_
#define IM_EXAMPLES_EXAMPLE_HOST_H_

#include <signal.h>

#include <cstdio>
#include <memory>

#include "im/auth.h"
#include "im/backends.h"
#include "im/server.h"

namespace example {

// Memory backends and a verifier for `keys`.
inline im::ServerDeps MemoryDeps(const std::shared_ptr<im::KeyStore>& keys) {
  im::ServerDeps deps;
  deps.sessions = im::NewMemorySessionStore();
  deps.router = im::NewLocalRouter();
  deps.inbox = im::NewMemoryOfflineQueue();
  deps.tokens = im::NewHs256Verifier(keys);
  return deps;
}

// Blocks SIGINT and SIGTERM in this thread and the threads it starts after this call (so only
// WaitForStop receives them); call it before Server::Start.
inline sigset_t BlockStopSignals() {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  return stop;
}

inline void WaitForStop(const sigset_t& stop) {
  int sig = 0;
  sigwait(&stop, &sig);
}

// Prints "token for USER: ..." for alice and bob, then the bound ports, and flushes.
inline void PrintTokensAndPorts(im::KeyStore& keys, const im::Server& server) {
  for (const char* user : {"alice", "bob"}) {
    auto token = im::SignHs256Token(keys, {"default", user}, 3600, im::SystemClock()->NowMs());
    std::printf("token for %s: %s\n", user, token.ok() ? token->c_str() : "?");
  }
  std::printf("serving tcp %u http %u\n", server.tcp_port(), server.http_port());
  std::fflush(stdout);
}

}  // namespace example

#endif  // IM_EXAMPLES_EXAMPLE_HOST_H_
