// RedisPipe: the pipelined connection behind RedisClient::EvalAsync (redis_client.h has the
// contract). One connection and one I/O thread (`im-redis-pipe`): callers queue calls, the
// thread writes them behind the calls still unanswered and reads the replies in order, answering
// each call in turn.
//
// The fence: every script runs in a wrapper that takes a fence key, the number the fence must hold
// and this call's number off the front of KEYS and ARGV; it moves the fence on and reads its old
// value in one command (SET ... GET), answers IMFENCED without running the script (and spoils the
// fence for every later call) unless the fence held the expected number, and otherwise runs the
// script. Calls are numbered 1, 2, ... per fence key, so a call runs only right after its
// predecessor on this connection did. A call that did not run (NOSCRIPT, or IMFENCED when the
// fence key expired while idle) is sent again with every call after it, in order, under a new
// fence key; the replies still due for the old sends are read and dropped.
//
// Thread-safety: Submit is safe from any thread; the rest runs on the I/O thread.
#ifndef IM_STORE_REDIS_REDIS_PIPE_H_
#define IM_STORE_REDIS_REDIS_PIPE_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "store/redis/redis_client.h"

namespace im::internal {

class RedisPipe {
 public:
  explicit RedisPipe(RedisClient* client);
  // Stops the I/O thread; calls still unanswered get 503.
  ~RedisPipe();
  RedisPipe(const RedisPipe&) = delete;
  RedisPipe& operator=(const RedisPipe&) = delete;

  void Submit(const RedisScript& script, RedisArgs keys, RedisArgs args, RedisDone done);

 private:
  using Clock = std::chrono::steady_clock;
  struct Call {
    std::string sha1;    // of the wrapped script; "" when the call is answered with `refused`
    const std::string* source = nullptr;  // the wrapped script's source, for SCRIPT LOAD
    RedisArgs keys;
    RedisArgs args;
    RedisDone done;
    Status refused;      // not OK: answered with it, in order, without being sent
    int sends = 0;
    bool asked_check = false;  // its last send carried kRedisConnectionCheck "1"
  };
  // A reply due on the connection, in the order the commands were written.
  struct Slot {
    // kCall: a call's reply. kDrop without a call: a reply to read and ignore (SCRIPT LOAD, or
    // a send made again); kDrop with a call: a refused call, no reply due.
    enum class Kind { kCall, kDrop } kind = Kind::kCall;
    std::unique_ptr<Call> call;
    Clock::time_point sent;
  };
  struct Wrapped {
    std::string source;
    std::string sha1;
  };

  void Run();
  // Writes `calls` (in order) behind the slots due, after SCRIPT LOADs when `load`.
  void Send(std::deque<std::unique_ptr<Call>>& calls, bool load);
  // Reads and handles every reply available; waits up to `wait_ms` for the first.
  void Read(int wait_ms);
  void Handle(Slot slot, RedisReply reply);
  // Answers the refused calls at the front of due_ (they have no reply to wait for).
  void Settle();
  // The front call did not run: drops the replies due for the calls after it and sends them
  // all again under a new fence.
  void Resend(std::unique_ptr<Call> front, bool load);
  // Closes the connection and answers every call due 503 with `why`, in order.
  void Break(const Status& why);
  void Answer(Call& call, Result<RedisReply> result);
  void Wake();

  RedisClient* const client_;
  const int timeout_ms_;

  std::mutex mu_;
  std::condition_variable room_;
  std::deque<std::unique_ptr<Call>> queue_;  // guarded by mu_
  size_t pending_ = 0;                       // queued or unanswered; guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
  std::unordered_map<const RedisScript*, std::shared_ptr<const Wrapped>> wrapped_;  // mu_

  // I/O thread only.
  RedisClient::Connection connection_;
  std::deque<Slot> due_;
  std::string fence_key_;
  uint64_t fence_next_ = 1;
  // A call's EVALSHA as pointers into its strings, rebuilt per call (no copy of the strings;
  // the vectors keep their capacity).
  std::vector<const char*> argv_;
  std::vector<size_t> lengths_;
  Clock::time_point last_progress_{};

  int wake_fd_ = -1;  // eventfd: Submit and the destructor wake the I/O thread
  std::thread thread_;
};

}  // namespace im::internal

#endif  // IM_STORE_REDIS_REDIS_PIPE_H_
