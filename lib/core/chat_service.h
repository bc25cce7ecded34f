// ChatService: sends, sync pages and acks, the same for every front. chat.send (socket),
// POST /v1/messages (REST) and Server::SendToUser / SendToGroup (host API) all call Send.
//
// Send checks the addressing and the content (protocol limits), runs the content filter
// (reject: 422 content_rejected; mask: the masked text is stored), then the before_send hook
// (it may veto, or rewrite the content but not the addressing; what it wrote is checked again),
// builds the dedup key from the sender and the cid, and submits to the committer. `done` is
// called once on the committer thread with the receipt or the error, unless Send returns an
// error (then never).
//
// Thread-safety: every method is safe from any thread. Sync and Ack block on storage (a worker,
// never an io thread). Send never waits for the store.
#ifndef IM_CORE_CHAT_SERVICE_H_
#define IM_CORE_CHAT_SERVICE_H_

#include <functional>
#include <future>
#include <memory>
#include <string>

#include "core/committer.h"
#include "core/hooks.h"
#include "core/rate_limits.h"
#include "im/content_filter.h"
#include "im/group_service.h"
#include "im/offline_queue.h"
#include "im/options.h"
#include "ops/event_log.h"
#include "ops/metrics.h"

namespace im::internal {

class ChatService {
 public:
  struct Deps {
    OfflineQueue* inbox;
    GroupService* groups;  // may be null: group sends get 503
    Committer* committer;
    ContentFilter* filter;
    RateLimits* limits;
    EventLog* events;
    Metrics* metrics;
    const Hooks* hooks;
    const ServerOptions* options;  // max_cid_bytes, max_type_bytes, max_body_bytes, ...
    const TenantDirectory* tenants = nullptr;  // each tenant's retention_s (Sync)
    Clock* clock = nullptr;                    // with `tenants`
  };
  using Done = std::function<void(const Result<SendReceipt>&)>;

  // One sync page (protocol: chat.sync), at most max_sync_bytes (at least one message).
  struct SyncPage {
    std::string json;  // {"messages":[...],"epoch","last_seq","first_seq","more","gap"}
    size_t count = 0;  // messages in it
    bool more = false;
    std::string epoch;  // the inbox's, as in `json`
  };

  explicit ChatService(Deps deps) : deps_(std::move(deps)) {}

  // The per-connection and per-user chat limits; every send attempt of a client takes a token
  // of each, well-formed or not. 429 rate_limited when one is empty. `connection` is the
  // sending connection's own bucket (used by one thread at a time).
  Status TakeSendLimits(TokenBucket& connection, const UserKey& user);

  // Stores `message` (to `message->to`, or to `message->group`) and calls `done`.
  // `sender`: the sending session (its user is the sender; its inbox gets 1:1 messages too,
  // and it is not pushed the copy), or null for a server-side send from `message->from`.
  // `cid` "" = no dedup. `store_here`: nothing else waits behind this send on the calling
  // thread, which may then store it itself (Committer::Submit) and call `done` before returning.
  Status Send(const SessionInfo* sender, std::shared_ptr<Message> message,
              const std::string& cid, Done done, bool store_here = false);

  // Send, then waits for the committer's answer: blocks the calling thread until the message is
  // stored or refused. For the host API on the host's own threads; never from a hook, a worker
  // answering a client, or the committer thread (which would wait for itself).
  Result<SendReceipt> SendAndWait(const SessionInfo* sender, std::shared_ptr<Message> message,
                                  const std::string& cid);

  Result<SyncPage> Sync(const UserKey& user, uint64_t after, size_t limit);

 private:
  // Fetch, less the entries older than the user's tenant's retention_s (reported as `gap`).
  Result<FetchResult> FetchRetained(const UserKey& user, uint64_t after, size_t limit);

 public:
  Status Ack(const SessionInfo& session, uint64_t seq);

 private:
  Status CheckContent(const Message& m) const;

  Deps deps_;
};

}  // namespace im::internal

#endif  // IM_CORE_CHAT_SERVICE_H_
