// Test support: reads a user's whole inbox over the protocol, for exactly-once checks.
#ifndef IM_TESTS_SUPPORT_INBOX_READ_H_
#define IM_TESTS_SUPPORT_INBOX_READ_H_

#include <cstdint>
#include <string>
#include <vector>

#include "support/test_server.h"

namespace im::test {

struct SyncedMessage {
  uint64_t seq = 0;
  std::string mid;
  std::string from;
  std::string to;
  std::string body;
};

// Every entry of the logged-in `client`'s inbox, in seq order, read with chat.sync pages of
// 500 (request ids from `first_id` on). False when a page fails, times out, or its seqs do
// not ascend.
bool SyncAll(RawClient& client, std::vector<SyncedMessage>* out, uint32_t first_id = 900000);

}  // namespace im::test

#endif  // IM_TESTS_SUPPORT_INBOX_READ_H_
