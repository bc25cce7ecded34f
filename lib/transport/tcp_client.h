// The client side of the TCP transport: length-prefixed frames (a 4-byte big-endian length N,
// 1..max_frame_bytes, then N bytes of JSON) over a plain Asio socket. Used by im::Client and by
// tests. No websocketpp here.
#ifndef IM_TRANSPORT_TCP_CLIENT_H_
#define IM_TRANSPORT_TCP_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>

#include "transport/websocket.h"  // ClientTransport

namespace asio {
class io_context;
}

namespace im::internal {

// A ClientTransport to host:port. The transport runs on `io`, which the caller runs on another
// thread (Connect blocks until connected, failed or timed out). Send(text) adds the length
// prefix; SendRaw(bytes) writes the bytes as they are. Writes are coalesced: one in flight,
// everything queued meanwhile goes out in one gathered write; over 16 MiB queued the transport
// closes. An incoming length of 0 or over `max_frame_bytes` closes the connection. on_close
// gets code 0 (the server tells its close code in a `session.closed` push, which the caller
// parses) and fires once, only after a successful Connect.
//
// Thread-safety: Send/SendRaw/Close from any thread; callbacks run on an io thread. Destroy the
// transport before the io_context; after destruction no callback runs.
std::unique_ptr<ClientTransport> NewTcpClientTransport(asio::io_context& io, std::string host,
                                                       uint16_t port, size_t max_frame_bytes);

}  // namespace im::internal

#endif  // IM_TRANSPORT_TCP_CLIENT_H_
