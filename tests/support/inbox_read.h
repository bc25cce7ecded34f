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
// `limit` entries (request ids from 900000 on; a page must fit the server's send_queue_bytes).
// False when a page fails, times out, or its seqs do not ascend.
bool SyncAll(RawClient& client, std::vector<SyncedMessage>* out, int limit = 500);

}  // namespace im::test

#endif  // IM_TESTS_SUPPORT_INBOX_READ_H_
