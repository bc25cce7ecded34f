// im-bench: client threads and one non-blocking client connection with pluggable framing.
#ifndef IM_BENCH_CONN_H_
#define IM_BENCH_CONN_H_

#include <asio.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "stats.h"

namespace imbench {

// An io_context on its own thread, with the read buffer its connections share (an idle
// connection holds no read buffer) and a 100 ms tick for periodic work (acks, heartbeats,
// stall detection).
class ThreadCtx {
 public:
  explicit ThreadCtx(int index);
  ~ThreadCtx();
  ThreadCtx(const ThreadCtx&) = delete;
  ThreadCtx& operator=(const ThreadCtx&) = delete;

  asio::io_context& io() { return io_; }
  std::vector<char>& read_buffer() { return read_buffer_; }
  int index() const { return index_; }
  bool on_thread() const { return std::this_thread::get_id() == thread_.get_id(); }
  uint64_t Random();

  // Called every 100 ms on this thread with NowNs(); add before Start().
  std::vector<std::function<void(int64_t)>> tickers;

  void Start();
  // Runs `f` on this thread and waits for it to finish.
  void RunSync(const std::function<void()>& f);
  // Stops the event loop and joins the thread (close the connections first).
  void Stop();

  ThreadStats stats;

 private:
  void Tick();
  const int index_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  asio::steady_timer timer_;
  std::vector<char> read_buffer_;
  uint64_t rng_;
  std::thread thread_;
};

// One TCP client connection. Every method and callback runs on its thread. Reads wait for
// readability and then read into the thread's shared buffer; a partial frame is kept per
// connection. Writes are gathered: one write in flight, the next takes everything queued.
class Conn {
 public:
  enum class Framing {
    kLen32,      // 4-byte big-endian length + payload (im TCP, ceiling)
    kWebSocket,  // HTTP/1.1 upgrade, then RFC 6455 text messages (masked from the client)
    kMqtt,       // MQTT control packets (fixed header + remaining length)
  };

  Conn(ThreadCtx* thread, Framing framing);
  virtual ~Conn();
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // Where the WebSocket upgrade goes (Host header and path); set once before any Open.
  static void SetWebSocketTarget(std::string host_port, std::string path);

  // Connects (again) to `server`, asynchronously: OnOpen once the transport is ready (for
  // WebSocket after the 101 response), or OnDown. Closes the current connection first.
  void Open(const asio::ip::tcp::endpoint& server);
  // Queues one message: framed for kLen32 and kWebSocket, a whole packet for kMqtt.
  void Send(std::string_view message);
  // Abortive close (RST, so no TIME_WAIT piles up on the client side); no OnDown follows.
  void Close();
  bool is_open() const { return state_ == State::kOpen; }
  ThreadCtx& thread() { return *thread_; }
  int64_t last_send_ns() const { return last_send_ns_; }

 protected:
  virtual void OnOpen() = 0;
  // One message: the payload (kLen32, kWebSocket text) or the packet after its fixed header
  // (kMqtt, `kind` = the first header byte).
  virtual void OnMessage(std::string_view message, uint8_t kind) = 0;
  // The server closed the connection, or it failed; `why` says which.
  virtual void OnDown(const std::string& why) = 0;

 private:
  enum class State { kClosed, kConnecting, kHandshake, kOpen };

  void StartConnect();
  void WaitReadable();
  void Drain();
  // Consumes complete frames from data[0, n) and returns how many bytes were used. Stops
  // early when a callback closed the connection.
  size_t Parse(const char* data, size_t n);
  size_t ParseWebSocket(const char* data, size_t n, uint32_t gen);
  void HandleWsFrame(uint8_t opcode, bool fin, std::string_view payload);
  void QueueWsFrame(uint8_t opcode, std::string_view payload);
  void Flush();
  void Fail(const std::string& why);

  ThreadCtx* thread_;
  Framing framing_;
  asio::ip::tcp::socket socket_;
  asio::ip::tcp::endpoint server_;
  State state_ = State::kClosed;
  uint32_t gen_ = 0;  // bumped by every close: callbacks of an older socket are ignored
  bool writing_ = false;
  int64_t last_send_ns_ = 0;
  std::string partial_;   // bytes of an incomplete frame
  std::string out_;       // queued for the next write
  std::string inflight_;  // being written
  std::string fragments_; // WebSocket: a fragmented message so far
};

}  // namespace imbench

#endif  // IM_BENCH_CONN_H_
