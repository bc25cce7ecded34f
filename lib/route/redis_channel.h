// RedisChannelListener: pub/sub channels read on a thread of its own (one connection, one
// SUBSCRIBE for all of them), with reconnect and capped backoff, handing each message's channel
// and payload to a callback. Messages of its channels arrive in the order they were published.
// Used by RedisRouter (node and fan-out channels) and by imd's routing (drain marks and rule
// changes, channel "im:routing").
//
//   auto listener = RedisChannelListener::Start(
//       client, redis_options, {"im:routing"},
//       [](std::string_view channel, std::string_view payload) { ... });
//
// Pub/sub is at-most-once: a message published while the listener is not subscribed (Redis
// down, reconnecting) is lost, so a user of it keeps a slower path (a poll, a cache TTL) that
// reaches the same state.
//
// Thread-safety: the callback runs on the listener's thread, one message at a time; the
// destructor stops the thread (within about 100 ms).
#ifndef IM_ROUTE_REDIS_CHANNEL_H_
#define IM_ROUTE_REDIS_CHANNEL_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "im/redis.h"
#include "store/redis/redis_client.h"

namespace im::internal {

class RedisChannelListener {
 public:
  using OnMessage = std::function<void(std::string_view channel, std::string_view payload)>;
  // Starts the listener and waits up to redis.connect_timeout_ms for the subscription (a Redis
  // that is down is not an error: the listener keeps retrying).
  static std::unique_ptr<RedisChannelListener> Start(std::shared_ptr<RedisClient> client,
                                                     const RedisOptions& redis,
                                                     std::vector<std::string> channels,
                                                     OnMessage on_message);
  ~RedisChannelListener();
  RedisChannelListener(const RedisChannelListener&) = delete;
  RedisChannelListener& operator=(const RedisChannelListener&) = delete;

  bool subscribed() const { return subscribed_.load(); }
  // Subscriptions confirmed since Start (1 after the first; each reconnect adds one).
  uint64_t subscriptions() const { return subscriptions_.load(); }

 private:
  RedisChannelListener(std::shared_ptr<RedisClient> client, const RedisOptions& redis,
                       std::vector<std::string> channels, OnMessage on_message);
  void Run();

  const std::shared_ptr<RedisClient> client_;
  const RedisOptions redis_;
  const std::vector<std::string> channels_;
  const OnMessage on_message_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> subscribed_{false};
  std::atomic<uint64_t> subscriptions_{0};
  std::thread thread_;
};

}  // namespace im::internal

#endif  // IM_ROUTE_REDIS_CHANNEL_H_
