// Test support: senders that write into one group at the same time, each from its own thread,
// through clients of their own. Header only.
#ifndef IM_TESTS_SUPPORT_GROUP_SENDERS_H_
#define IM_TESTS_SUPPORT_GROUP_SENDERS_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "im/client.h"

namespace im::test {

// Sender s (0 <= s < senders) sends `per_sender` messages with bodies "s<s>-<k>" (k counting
// from 0) to group `gid` through users[s]->client, every sender on its own thread at the same
// time. `on_ack`, when given, sees each successful ack on its sender's thread. Returns how many
// sends were acked.
template <typename User>
int SendToGroupAtOnce(const std::vector<std::unique_ptr<User>>& users, int senders,
                      int per_sender, const std::string& gid,
                      const std::function<void(const im::SendAck&)>& on_ack = nullptr) {
  std::vector<std::thread> threads;
  std::atomic<int> acked{0};
  for (int s = 0; s < senders; ++s) {
    threads.emplace_back([&, s] {
      for (int k = 0; k < per_sender; ++k) {
        im::OutgoingMessage m;
        m.group = gid;
        m.body = "s" + std::to_string(s) + "-" + std::to_string(k);
        auto ack = users[s]->client->Send(m);
        if (!ack.ok()) continue;
        acked++;
        if (on_ack) on_ack(*ack);
      }
    });
  }
  for (auto& t : threads) t.join();
  return acked.load();
}

}  // namespace im::test

#endif  // IM_TESTS_SUPPORT_GROUP_SENDERS_H_
