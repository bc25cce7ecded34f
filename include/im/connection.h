// Connection: one client socket (TCP or WebSocket) as the core sees it.
//
// Thread-safety: every method is safe from any thread. A connection belongs to one executor;
// Send and Close post to it.
#ifndef IM_CONNECTION_H_
#define IM_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "im/types.h"

namespace im {

// An encoded outgoing frame (one JSON object). A fan-out shares one `tail` among all receivers;
// only the short `head` (e.g. the receiver's own seq) differs. The frame's text is head + tail.
struct Frame {
  std::string head;
  std::shared_ptr<const std::string> tail;

  static Frame FromString(std::string text) {
    return Frame{std::string(), std::make_shared<const std::string>(std::move(text))};
  }
  size_t size() const { return head.size() + (tail ? tail->size() : 0); }
  std::string ToString() const { return tail ? head + *tail : head; }
};

enum class SendResult {
  kOk,       // written or handed to the socket's writer
  kQueued,   // queued behind a write in flight
  kDropped,  // not sent: the connection is closing, or the queue bound was hit (it then closes
             // with 4004)
};

// Close codes (WebSocket close codes; TCP sends a `session.closed` push with the code, then
// closes).
namespace close_code {
inline constexpr int kNormal = 1000;
inline constexpr int kGoingAway = 1001;  // server draining
inline constexpr int kTooBig = 1009;     // frame over max_frame_bytes
inline constexpr int kTryAgainLater = 1013;  // max_connections open (server full)
inline constexpr int kKicked = 4001;     // logged in elsewhere
inline constexpr int kUnauthenticated = 4002;  // not authenticated in time / token expired
inline constexpr int kProtocolViolation = 4003;
inline constexpr int kTooSlow = 4004;    // send queue over its limit
}  // namespace close_code

class Connection {
 public:
  virtual ~Connection() = default;

  // Unique on this node for the process lifetime.
  virtual uint64_t id() const = 0;
  virtual TransportKind transport() const = 0;
  // "127.0.0.1:53422"
  virtual const std::string& remote_address() const = 0;

  // Queues `frame` for writing. Never blocks. Over the send-queue bound the frame is dropped and
  // the connection is closed with 4004 (its messages stay in the inbox). Safe from any thread.
  virtual SendResult Send(Frame frame) = 0;

  // Closes the connection with `code` after the frames already queued; later Sends are dropped.
  // Idempotent. Safe from any thread.
  virtual void Close(int code, std::string_view reason) = 0;

  // Bytes queued and not yet written. Safe from any thread (a snapshot).
  virtual size_t queued_bytes() const = 0;
};

}  // namespace im

#endif  // IM_CONNECTION_H_
