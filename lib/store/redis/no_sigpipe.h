// Writes to a Redis connection without SIGPIPE. hiredis writes with write(2), which raises
// SIGPIPE on a connection the peer has closed, and SIGPIPE's default action ends the process: a
// host that embeds the library need not have ignored it (imd does). While a NoSigpipe lives, the
// calling thread has SIGPIPE blocked, so such a write fails with EPIPE instead (hiredis then
// reports the connection lost); a SIGPIPE the thread raised meanwhile is taken off it before the
// old signal mask comes back. When the process already ignores SIGPIPE it does nothing.
#ifndef IM_STORE_REDIS_NO_SIGPIPE_H_
#define IM_STORE_REDIS_NO_SIGPIPE_H_

#include <signal.h>

namespace im::internal {

class NoSigpipe {
 public:
  NoSigpipe();
  ~NoSigpipe();
  NoSigpipe(const NoSigpipe&) = delete;
  NoSigpipe& operator=(const NoSigpipe&) = delete;

 private:
  bool blocked_ = false;
  bool was_pending_ = false;
  sigset_t old_{};
};

}  // namespace im::internal

#endif  // IM_STORE_REDIS_NO_SIGPIPE_H_
