#include "route/redis_channel.h"

#include <hiredis.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

#include "ops/log.h"
#include "store/redis/no_sigpipe.h"

namespace im::internal {
namespace {

constexpr int kPollMs = 100;  // how soon a stop is noticed

}  // namespace

std::unique_ptr<RedisChannelListener> RedisChannelListener::Start(
    std::shared_ptr<RedisClient> client, const RedisOptions& redis,
    std::vector<std::string> channels, OnMessage on_message) {
  std::unique_ptr<RedisChannelListener> l(new RedisChannelListener(
      std::move(client), redis, std::move(channels), std::move(on_message)));
  l->thread_ = std::thread([raw = l.get()] { raw->Run(); });
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(std::max(1, redis.connect_timeout_ms));
  while (!l->subscribed() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return l;
}

RedisChannelListener::RedisChannelListener(std::shared_ptr<RedisClient> client,
                                           const RedisOptions& redis,
                                           std::vector<std::string> channels,
                                           OnMessage on_message)
    : client_(std::move(client)),
      redis_(redis),
      channels_(std::move(channels)),
      on_message_(std::move(on_message)) {}

RedisChannelListener::~RedisChannelListener() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

void RedisChannelListener::Run() {
  const NoSigpipe no_sigpipe;  // for the thread's life: every write on it is to Redis
  std::vector<std::string> subscribe{"SUBSCRIBE"};
  subscribe.insert(subscribe.end(), channels_.begin(), channels_.end());
  std::string names;
  for (const std::string& c : channels_) names += (names.empty() ? "" : ", ") + c;
  int backoff_ms = std::max(1, redis_.reconnect_min_ms);
  bool warned = false;
  while (!stopping_.load()) {
    std::string why;
    // One SUBSCRIBE for all: its first confirmation comes after every subscription.
    redisContext* c = OpenRedisContext(client_->url(), redis_, {subscribe}, &why);
    if (c != nullptr) {
      subscribed_ = true;
      subscriptions_.fetch_add(1);
      if (warned) IM_LOG_INFO("cluster: subscribed to {} again", names);
      warned = false;
      backoff_ms = std::max(1, redis_.reconnect_min_ms);
      while (!stopping_.load()) {
        void* raw = nullptr;
        if (redisGetReplyFromReader(c, &raw) != REDIS_OK) {
          why = c->errstr;
          break;
        }
        if (raw != nullptr) {
          auto* reply = static_cast<redisReply*>(raw);
          // ["message", channel, payload]
          if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 &&
              reply->element[1]->type == REDIS_REPLY_STRING &&
              reply->element[2]->type == REDIS_REPLY_STRING &&
              std::string_view(reply->element[0]->str, reply->element[0]->len) == "message") {
            on_message_(std::string_view(reply->element[1]->str, reply->element[1]->len),
                        std::string_view(reply->element[2]->str, reply->element[2]->len));
          }
          freeReplyObject(reply);
          continue;
        }
        pollfd p{c->fd, POLLIN, 0};
        const int ready = poll(&p, 1, kPollMs);
        if (ready < 0 && errno != EINTR) {
          why = std::strerror(errno);
          break;
        }
        if (ready > 0 && redisBufferRead(c) != REDIS_OK) {
          why = c->errstr[0] ? c->errstr : "connection closed";
          break;
        }
      }
      subscribed_ = false;
    }
    CloseRedisContext(c);
    if (stopping_.load()) break;
    if (!warned) {
      // Messages published until it subscribes again are lost: each user has a slower path
      // (a router's clients notice the seq gap and sync; a cache runs out).
      IM_LOG_WARN("cluster: subscription to {} lost ({}); retrying", names, why);
      warned = true;
    }
    for (int waited = 0; waited < backoff_ms && !stopping_.load(); waited += 10) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    backoff_ms = std::min(backoff_ms * 2, std::max(1, redis_.reconnect_max_ms));
  }
}

}  // namespace im::internal
