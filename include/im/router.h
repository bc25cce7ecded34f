// Router: delivers encoded frames to sessions wherever they are connected. Local sessions are
// reached through this node's registry of attached connections; a distributed router also
// reaches sessions on other nodes (through the node's channel on the distributed engine).
//
// Thread-safety: every method is safe from any thread and never blocks on the network for
// local targets.
#ifndef IM_ROUTER_H_
#define IM_ROUTER_H_

#include <memory>
#include <string_view>

#include "im/connection.h"
#include "im/types.h"

namespace im {

class Router {
 public:
  virtual ~Router() = default;

  // Makes `session` reachable through `connection` on this node. Replaces an earlier attachment
  // with the same session_id. The router holds the connection weakly.
  virtual void Attach(const SessionInfo& session, std::shared_ptr<Connection> connection) = 0;

  // Forgets the attachment of `session` (compare by session_id; a no-op when unknown).
  virtual void Detach(const SessionInfo& session) = 0;

  // Sends `frame` to `target`, or buffers it until Flush (then kQueued). kDropped when the
  // session is not attached anywhere reachable or its connection refused the frame (the message
  // stays in the inbox for sync).
  virtual SendResult Deliver(const SessionInfo& target, const Frame& frame) = 0;

  // Sends what Deliver buffered. A router may buffer Deliver calls (a distributed one sends one
  // message per node for a whole delivery step); the fan-out stage calls Flush once at the end
  // of each delivery step. The default buffers nothing.
  virtual void Flush() {}

  // Sends `notice` (may be empty) to `target`, then closes its connection with `code`.
  // Used for kicks. A no-op when the target is not reachable.
  virtual void Close(const SessionInfo& target, const Frame& notice, int code,
                     std::string_view reason) = 0;

  // Number of connections attached on this node.
  virtual size_t LocalCount() const = 0;
};

}  // namespace im

#endif  // IM_ROUTER_H_
