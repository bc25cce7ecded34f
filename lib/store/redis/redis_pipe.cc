#include "store/redis/redis_pipe.h"

#include <hiredis.h>
#include <poll.h>
#include <sodium.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "base/thread_name.h"
#include "ops/log.h"
#include "store/redis/no_sigpipe.h"
#include "store/redis/redis_keys.h"

namespace im::internal {
namespace {

// A call is sent at most this many times without running, then answered 500.
constexpr int kMaxSends = 3;
// The fence key outlives an idle hour; after that the next call finds it gone, is fenced and is
// sent again under a new key.
constexpr int64_t kFenceTtlMs = 3'600'000;

// The wrapper of every script on the pipelined connection (redis_pipe.h, "The fence"). One
// command moves the fence on and reads where it was (SET ... GET); when that was not where this
// call expected it, the fence is set to "x", which no later call expects, so every call after
// this one on the same fence key is fenced too, as it would be with the fence left behind.
std::string WrapScript(const std::string& source) {
  return fmt::format(R"lua(local im_fence_key = table.remove(KEYS, 1)
local im_fence_at = table.remove(ARGV, 1)
local im_fence_to = table.remove(ARGV, 1)
if (redis.call('SET', im_fence_key, im_fence_to, 'PX', {0}, 'GET') or '0') ~= im_fence_at then
  redis.call('SET', im_fence_key, 'x', 'PX', {0})
  return redis.error_reply('IMFENCED the call before this one on the connection did not run')
end
local function im_fenced_body()
{1}
end
return im_fenced_body()
)lua",
                     kFenceTtlMs, source);
}

bool StartsWith(const std::string& s, std::string_view prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

RedisPipe::RedisPipe(RedisClient* client)
    : client_(client), timeout_ms_(client->options().command_timeout_ms) {
  if (sodium_init() < 0) IM_LOG_ERROR("redis pipe: libsodium failed to initialize");
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  thread_ = std::thread([this] { Run(); });
}

RedisPipe::~RedisPipe() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  room_.notify_all();
  Wake();
  if (thread_.joinable()) thread_.join();
  if (wake_fd_ >= 0) close(wake_fd_);
}

void RedisPipe::Wake() {
  const uint64_t one = 1;
  if (wake_fd_ >= 0 && write(wake_fd_, &one, sizeof(one)) < 0 && errno != EAGAIN) {
    IM_LOG_WARN("redis pipe: cannot wake the I/O thread: {}", std::strerror(errno));
  }
}

void RedisPipe::Submit(const RedisScript& script, RedisArgs keys, RedisArgs args,
                       RedisDone done) {
  auto call = std::make_unique<Call>();
  call->keys = std::move(keys);
  call->args = std::move(args);
  call->done = std::move(done);
  std::shared_ptr<const Wrapped> wrapped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = wrapped_.find(&script);
    if (it != wrapped_.end()) wrapped = it->second;
  }
  if (wrapped == nullptr) {
    // First use: learn the wrapped script's SHA1 through the pool (the pipe sends EVALSHA only).
    auto fresh = std::make_shared<Wrapped>();
    fresh->source = WrapScript(script.source());
    Result<RedisReply> sha1 = client_->Command({"SCRIPT", "LOAD", fresh->source});
    if (sha1.ok() && sha1->is_string()) {
      fresh->sha1 = sha1->str;
      std::lock_guard<std::mutex> lock(mu_);
      wrapped = wrapped_.emplace(&script, std::move(fresh)).first->second;
    } else {
      call->refused = sha1.ok() ? Status::Internal("redis: SCRIPT LOAD did not answer a SHA1")
                                : sha1.status();
    }
  }
  if (wrapped != nullptr) {
    call->sha1 = wrapped->sha1;
    call->source = &wrapped->source;  // lives as long as wrapped_
  }
  {
    std::unique_lock<std::mutex> lock(mu_);
    auto room = [this] { return stopping_ || pending_ < RedisClient::kMaxPipelined; };
    if (!room()) {
      // The I/O thread cannot wait for itself (a `done` that calls again).
      if (std::this_thread::get_id() == thread_.get_id() ||
          !room_.wait_for(lock, std::chrono::milliseconds(timeout_ms_), room)) {
        if (call->refused.ok()) {
          call->refused = Status::Unavailable(fmt::format(
              "redis: {} pipelined calls pending for {} ms", RedisClient::kMaxPipelined,
              timeout_ms_));
        }
      }
    }
    if (stopping_) {
      lock.unlock();
      call->done(Status::Unavailable("redis: the client is closing"));
      return;
    }
    ++pending_;
    queue_.push_back(std::move(call));
  }
  Wake();
}

void RedisPipe::Answer(Call& call, Result<RedisReply> result) {
  if (!result.ok()) client_->metrics_.errors.fetch_add(1, std::memory_order_relaxed);
  call.done(std::move(result));
  {
    std::lock_guard<std::mutex> lock(mu_);
    --pending_;
  }
  room_.notify_one();
}

void RedisPipe::Run() {
  NameThisThread("im-redis-pipe");
  const NoSigpipe no_sigpipe;  // for the thread's life: every write on it is to Redis
  for (;;) {
    std::deque<std::unique_ptr<Call>> fresh;
    bool stopping = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      fresh.swap(queue_);
      stopping = stopping_;
    }
    if (stopping) {
      const Status closing = Status::Unavailable("redis: the client is closing");
      Break(closing);
      for (auto& call : fresh) Answer(*call, closing);
      return;
    }
    if (!fresh.empty()) Send(fresh, false);
    int wait_ms = -1;
    if (!due_.empty()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            last_progress_ + std::chrono::milliseconds(timeout_ms_) - Clock::now())
                            .count();
      if (left <= 0) {
        // Replies may have arrived while a `done` ran: read them before giving up.
        const auto before = last_progress_;
        Read(0);
        if (!due_.empty() && last_progress_ == before) {
          client_->metrics_.timeouts.fetch_add(1, std::memory_order_relaxed);
          Break(Status::Unavailable(fmt::format("redis: no reply from {}:{} within {} ms",
                                                client_->url_.host, client_->url_.port,
                                                timeout_ms_)));
        }
        continue;
      }
      wait_ms = static_cast<int>(left);
    }
    Read(wait_ms);
  }
}

void RedisPipe::Send(std::deque<std::unique_ptr<Call>>& calls, bool load) {
  const bool idle = due_.empty();
  if (connection_.context == nullptr) {
    bool any = false;
    for (const auto& call : calls) any = any || call->refused.ok();
    if (any) {
      if (Status s = client_->Connect(&connection_); !s.ok()) {
        // Nothing is due on a closed connection: answering now keeps the order.
        for (auto& call : calls) Answer(*call, call->refused.ok() ? s : call->refused);
        return;
      }
      fence_key_.clear();
    }
  }
  if (fence_key_.empty()) {
    fence_key_ = "im:fence:" + RandomHexToken(8);
    fence_next_ = 1;
  }
  redisContext* context = connection_.context;
  size_t written = 0;
  if (load && context != nullptr) {
    std::vector<const std::string*> loaded;
    for (const auto& call : calls) {
      if (!call->refused.ok() || call->source == nullptr ||
          std::find(loaded.begin(), loaded.end(), call->source) != loaded.end()) {
        continue;
      }
      loaded.push_back(call->source);
      if (!AppendRedisCommand(context, {"SCRIPT", "LOAD", *call->source})) break;
      due_.push_back(Slot{Slot::Kind::kDrop, nullptr, Clock::now()});
      ++written;
    }
  }
  for (auto& call : calls) {
    Slot slot;
    slot.sent = Clock::now();
    if (call->refused.ok()) {
      // EVALSHA sha1 numkeys fence keys... fence-at fence-to args...
      const std::string numkeys = std::to_string(call->keys.size() + 1);
      const std::string fence_at = std::to_string(fence_next_ - 1);
      const std::string fence_to = std::to_string(fence_next_);
      argv_.clear();
      lengths_.clear();
      auto add = [this](const std::string& arg) {
        argv_.push_back(arg.data());
        lengths_.push_back(arg.size());
      };
      static const std::string kEvalSha = "EVALSHA";
      add(kEvalSha);
      add(call->sha1);
      add(numkeys);
      add(fence_key_);
      for (const std::string& key : call->keys) add(key);
      add(fence_at);
      add(fence_to);
      for (const std::string& arg : call->args) add(arg);
      bool asked = false;
      const bool appended =
          AppendCheckedArgv(context, argv_, lengths_, connection_.checked, &asked);
      call->asked_check = asked && !connection_.checked;
      if (!appended) {
        call->refused = Status::Internal("redis: cannot build a command (out of memory)");
      } else {
        ++fence_next_;
        ++call->sends;
        ++written;
      }
    }
    if (!call->refused.ok()) slot.kind = Slot::Kind::kDrop;  // answered when it is the front
    slot.call = std::move(call);
    due_.push_back(std::move(slot));
  }
  calls.clear();
  client_->metrics_.commands.fetch_add(written, std::memory_order_relaxed);
  client_->metrics_.round_trips.fetch_add(written > 0 ? 1 : 0, std::memory_order_relaxed);
  int done = 0;
  while (written > 0 && done == 0) {
    if (redisBufferWrite(context, &done) != REDIS_OK) {
      return Break(Status::Unavailable(fmt::format("redis: connection to {}:{} lost: {}",
                                                   client_->url_.host, client_->url_.port,
                                                   context->errstr)));
    }
  }
  if (idle) last_progress_ = Clock::now();
  Settle();
}

void RedisPipe::Settle() {
  // A refused call at the front has no reply due: answer it now.
  while (!due_.empty() && due_.front().call != nullptr && !due_.front().call->refused.ok()) {
    std::unique_ptr<Call> call = std::move(due_.front().call);
    due_.pop_front();
    Answer(*call, call->refused);
  }
}

void RedisPipe::Read(int wait_ms) {
  pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {-1, POLLIN, 0}};
  nfds_t n = 1;
  if (!due_.empty() && connection_.context != nullptr) {
    fds[1].fd = connection_.context->fd;
    n = 2;
  }
  const int ready = poll(fds, n, wait_ms);
  if (ready < 0) {
    if (errno != EINTR) IM_LOG_WARN("redis pipe: poll failed: {}", std::strerror(errno));
    return;
  }
  if ((fds[0].revents & POLLIN) != 0) {
    uint64_t count = 0;
    while (read(wake_fd_, &count, sizeof(count)) > 0) {
    }
  }
  if (n < 2 || fds[1].revents == 0) return;
  redisContext* context = connection_.context;
  if (redisBufferRead(context) != REDIS_OK) {
    return Break(Status::Unavailable(
        fmt::format("redis: connection to {}:{} lost: {}", client_->url_.host,
                    client_->url_.port, context->errstr[0] != '\0' ? context->errstr : "closed")));
  }
  while (!due_.empty() && connection_.context != nullptr) {
    void* raw = nullptr;
    if (redisGetReplyFromReader(connection_.context, &raw) != REDIS_OK) {
      return Break(Status::Unavailable("redis: unreadable reply: " +
                                       std::string(connection_.context->errstr)));
    }
    if (raw == nullptr) return;
    RedisReply reply = ConvertRedisReply(raw);
    freeReplyObject(raw);
    Slot slot = std::move(due_.front());
    due_.pop_front();
    last_progress_ = Clock::now();
    Handle(std::move(slot), std::move(reply));
    Settle();
  }
}

void RedisPipe::Handle(Slot slot, RedisReply reply) {
  if (slot.kind == Slot::Kind::kDrop) return;
  client_->metrics_.RecordLatency(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - slot.sent).count());
  Call& call = *slot.call;
  if (reply.is_error()) {
    const bool noscript = StartsWith(reply.str, "NOSCRIPT");
    if (noscript || StartsWith(reply.str, "IMFENCED")) {
      // It did not run, nor did any call sent after it.
      if (call.sends >= kMaxSends) {
        Answer(call, Status::Internal(fmt::format("redis: a script did not run after {} sends: {}",
                                                  call.sends, reply.str)));
        return Resend(nullptr, noscript);
      }
      return Resend(std::move(slot.call), noscript);
    }
    // Refused unrun (the calls behind it are fenced and sent again): 503, the sender retries.
    if (IsRedisNotServing(reply)) return Answer(call, Status::Unavailable("redis: " + reply.str));
    return Answer(call, Status::Internal("redis: " + reply.str));
  }
  // Calls written before the first check passed carry it too; later ones skip it.
  if (call.asked_check && RedisCheckPassed(reply)) connection_.checked = true;
  Answer(call, std::move(reply));
}

void RedisPipe::Resend(std::unique_ptr<Call> front, bool load) {
  std::deque<std::unique_ptr<Call>> again;
  if (front != nullptr) again.push_back(std::move(front));
  std::deque<Slot> still_due;
  for (Slot& slot : due_) {
    const bool sent = slot.kind == Slot::Kind::kCall ||
                      (slot.kind == Slot::Kind::kDrop && slot.call == nullptr);
    if (slot.call != nullptr) again.push_back(std::move(slot.call));
    // A reply is still due for what was written: read it and drop it.
    if (sent) still_due.push_back(Slot{Slot::Kind::kDrop, nullptr, slot.sent});
  }
  due_.swap(still_due);
  client_->metrics_.resends.fetch_add(again.size(), std::memory_order_relaxed);
  fence_key_.clear();  // a new fence: the old sends can only be fenced now
  Send(again, load);
}

void RedisPipe::Break(const Status& why) {
  connection_.Close();
  fence_key_.clear();
  std::deque<Slot> due;
  due.swap(due_);
  for (Slot& slot : due) {
    if (slot.call != nullptr) Answer(*slot.call, slot.call->refused.ok() ? why : slot.call->refused);
  }
}

}  // namespace im::internal
