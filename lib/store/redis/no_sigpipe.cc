#include "store/redis/no_sigpipe.h"

#include <pthread.h>
#include <time.h>

namespace im::internal {
namespace {

sigset_t PipeSet() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  return set;
}

bool Pending() {
  sigset_t pending;
  return sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
}

}  // namespace

NoSigpipe::NoSigpipe() {
  struct sigaction action {};
  if (sigaction(SIGPIPE, nullptr, &action) == 0 && action.sa_handler == SIG_IGN) return;
  was_pending_ = Pending();
  const sigset_t pipe = PipeSet();
  blocked_ = pthread_sigmask(SIG_BLOCK, &pipe, &old_) == 0;
}

NoSigpipe::~NoSigpipe() {
  if (!blocked_) return;
  if (!was_pending_ && Pending()) {
    const sigset_t pipe = PipeSet();
    const timespec zero{0, 0};
    while (sigtimedwait(&pipe, nullptr, &zero) == SIGPIPE) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_, nullptr);
}

}  // namespace im::internal
