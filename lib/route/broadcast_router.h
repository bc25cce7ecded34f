// BroadcastRouter: what the fan-out stage uses of a cluster router (RedisRouter) whose nodes each
// keep their own connections in a LocalRouter and reach the others' by broadcast.
//
// The fan-out stage delivers a step's pushes to this node's connections through local(), as
// with a LocalRouter alone, and hands the same pushes, by user, to Broadcast; at Flush every
// other node gets them and delivers to its own connections of those users. No SessionStore
// lookup is needed to fan out: each node knows exactly which connections it holds, and a user's
// sessions on several nodes each get the push from their own node.
//
// Thread-safety: every method is safe from any thread.
#ifndef IM_ROUTE_BROADCAST_ROUTER_H_
#define IM_ROUTE_BROADCAST_ROUTER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "im/types.h"

namespace im::internal {

class LocalRouter;

class BroadcastRouter {
 public:
  struct UserPush {
    const UserKey* user;
    uint64_t seq;
  };

  virtual ~BroadcastRouter() = default;

  // This node's connections.
  virtual LocalRouter& local() = 0;

  // Buffers, until the router's Flush, the `chat.message` pushes of one message (`tail`:
  // ChatPushEncoder::tail()) to every session of pushes[i].user, with seq pushes[i].seq, held by
  // the other nodes, except the session `skip` (the sender's).
  virtual void Broadcast(const std::shared_ptr<const std::string>& tail, std::string_view skip,
                         const UserPush* pushes, size_t n) = 0;

  // How many times this node has subscribed to the other nodes' broadcasts since it started.
  // Between a lost subscription and the next one, broadcasts are missed for good: when this
  // rises, the node pushes its users their newest message (core/push_catch_up.h).
  virtual uint64_t subscriptions() const = 0;
};

}  // namespace im::internal

#endif  // IM_ROUTE_BROADCAST_ROUTER_H_
