// The im_redis_* metric families of the Redis connection pools of this process, for GET
// /metrics. Every RedisClient registers itself at creation under RedisOptions::metrics_label;
// the first registration adds one scrape source to lib/ops (AddScrapeSource), so every server of
// the process shows every pool. Clients of one label are summed into one series each, so the
// series stay bounded by the labels in use, whatever the number of pools or keys.
//
// Thread-safety: both functions are safe from any thread.
#ifndef IM_STORE_REDIS_REDIS_METRICS_H_
#define IM_STORE_REDIS_REDIS_METRICS_H_

#include <memory>
#include <string>

namespace im::internal {

class RedisClient;

// Adds `client` to the pools reported under `label` (held weakly: a destroyed client drops out).
void RegisterRedisMetrics(const std::string& label, const std::shared_ptr<RedisClient>& client);

// The exposition text of every registered pool, by label; "" before any registration.
std::string RedisMetricsText();

}  // namespace im::internal

#endif  // IM_STORE_REDIS_REDIS_METRICS_H_
