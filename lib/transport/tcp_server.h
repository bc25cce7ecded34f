// The TCP transport: length-prefixed JSON frames (protocol/framing.h) over plain sockets.
//
// Each connection reads into a 512-byte inline buffer that frames are cut out of (one recv can
// carry many frames); a busy connection reads into a 16 KiB heap buffer until its reads are
// small again, and a frame over 16 KiB is read into a string of its own, so an idle session
// holds no large buffer. Writes are coalesced: one write in flight; when it completes,
// everything queued meanwhile goes out in one gathered write.
//
// Thread-safety: Start/Stop from one thread; connections' Send/Close from any thread.
#ifndef IM_TRANSPORT_TCP_SERVER_H_
#define IM_TRANSPORT_TCP_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "im/result.h"
#include "transport/handler.h"

namespace asio {
class io_context;
}

namespace im::internal {

struct TcpServerOptions {
  std::string listen = "127.0.0.1:7001";  // host:port; port 0 = chosen by the OS
  size_t max_frame_bytes = 65536;         // header over it: close 1009 before buffering
  size_t send_queue_bytes = 1 << 20;      // queued bytes over it: close 4004
  int64_t close_linger_ms = 2000;         // after Close, how long queued frames may drain
  TransportCounters* counters = nullptr;  // bytes in/out; nullptr = not counted
  // Only one thread runs the io_context: connections then need no strand of their own.
  bool one_io_thread = false;
};

class TcpServer {
 public:
  virtual ~TcpServer() = default;
  virtual Status Start() = 0;
  // Stops accepting and closes every connection with `code`.
  virtual void Stop(int code, const std::string& reason) = 0;
  virtual uint16_t port() const = 0;
};

std::unique_ptr<TcpServer> NewTcpServer(asio::io_context& io, TcpServerOptions options,
                                        TransportHandler* handler);

// Splits "host:port"; false when malformed.
bool SplitHostPort(const std::string& address, std::string* host, uint16_t* port);

// The `session.closed` push a TCP connection sends before closing: {"cmd":"session.closed",
// "body":{"code":4001,"reason":"..."}}.
std::string EncodeClosedPush(int code, std::string_view reason);

}  // namespace im::internal

#endif  // IM_TRANSPORT_TCP_SERVER_H_
