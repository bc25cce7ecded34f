// fanout_bench: group fan-out of the real server over real loopback sockets, in the style of
// LevelDB's db_bench. Each case starts a fresh in-process im::Server (TCP on 127.0.0.1:0), creates
// one group of N members directly in its GroupService, connects and logs in the online members
// (all of them, or 10%) from one client thread, and has one online member (on its own thread)
// send M group messages with W requests in flight. One row per case:
//
//   inbox members online messages deliveries/s entries/s ack-p50 ack-p99 wall login KB/conn status
//
// wall runs from the first send to the later of the last ack and the last push any receiver got.
// deliveries/s = chat.message pushes received / wall; when complete that is receivers x acked
// messages, where receivers = online - 1 (the sender's own session gets no push).
// entries/s = members x acked messages / wall: every member's inbox (the sender's and the offline
// members' too) indexes every message. ack = chat.send -> its response (the ack means stored);
// with W in flight, p50 is about W x the time per message. login = connecting and logging in
// every online member. KB/conn = resident memory added by those logins / online; both ends of
// each socket live in this process, so it includes the benchmark's client side (a socket, a
// frame decoder and two small buffers per client); kernel socket buffers are not counted. Shown
// from 1000 online up: smaller deltas drown in allocator noise.
//
// A second table splits the CPU time of the send phase by thread: the server's io, worker and
// committer threads, the benchmark's client and sender threads, and the rest (LevelDB's
// background compaction, main); then this process's share of the machine and what other
// processes used meanwhile (on a busy machine the rates above are lower bounds).
//
// Usage: fanout_bench [--inbox memory|leveldb] [--messages N] [--window W]
//                     [--sizes 10,100,1000,5000] [--io-threads N] [--worker-threads N]
//                     [--deadline S]
//   --inbox           the OfflineQueue backend (default leveldb, as imd uses; in a temporary
//                     directory, removed at the end)
//   --messages N      messages per case (default: scaled by members and online, about 1-3 s
//                     per case on an idle 2-core machine)
//   --window W        chat.send requests in flight (default 16)
//   --sizes LIST      group sizes (default 10,100,1000,5000); each runs with 100% and 10% online
//                     (at least 2 online: the sender and one receiver)
//   --io-threads N, --worker-threads N   server threads (default 1 each: a 2-core machine)
//   --deadline S      per phase (logins, sends) of a case (default 30); past it the row reports
//                     what arrived and says "timeout"
//
// Exit status: 0 (a case that fails says so in its row); 2 for bad flags.

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <asio.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "im/auth.h"
#include "im_bench/common.h"
#include "im/backends.h"
#include "im/server.h"
#include "protocol/framing.h"

namespace {

namespace fs = std::filesystem;
using asio::ip::tcp;
using im::internal::FrameDecoder;

constexpr size_t kBodyBytes = 100;
constexpr size_t kMaxFrameBytes = 1 << 20;
constexpr size_t kReadBufferBytes = 64 << 10;
// Connects (each followed by its login) in flight: the listen backlog is finite, and a dropped
// SYN costs a one-second retransmit.
constexpr size_t kMaxConnecting = 128;
constexpr char kTenant[] = "default";
constexpr char kGroup[] = "fanout";
constexpr double kStallSeconds = 3;  // all acked, no push for this long: give up on the rest

using imbench::Contains;
using imbench::IntAfter;
using imbench::NowNs;

pid_t CurrentTid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

std::set<pid_t> ThreadIds() {
  std::set<pid_t> tids;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc/self/task", ec)) {
    tids.insert(static_cast<pid_t>(std::atoi(entry.path().filename().c_str())));
  }
  return tids;
}

// utime + stime of a thread of this process, in seconds (0 when it is gone).
double ThreadCpuSeconds(pid_t tid) {
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return 0;
  // After "pid (comm)": field 3 (state) is token 0, utime (14) token 11, stime (15) token 12.
  std::vector<std::string> tokens;
  size_t pos = paren + 2;
  while (pos < stat.size() && tokens.size() < 13) {
    size_t end = stat.find(' ', pos);
    if (end == std::string::npos) end = stat.size();
    tokens.push_back(stat.substr(pos, end - pos));
    pos = end + 1;
  }
  if (tokens.size() < 13) return 0;
  return static_cast<double>(std::atoll(tokens[11].c_str()) + std::atoll(tokens[12].c_str())) /
         static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::map<pid_t, double> CpuByThread() {
  std::map<pid_t, double> cpu;
  for (pid_t tid : ThreadIds()) cpu[tid] = ThreadCpuSeconds(tid);
  return cpu;
}

// CPU seconds the whole machine spent busy (everything in /proc/stat's cpu line but idle and
// iowait), for telling how much of the machine other processes took.
double MachineBusySeconds() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  in >> cpu;
  double busy = 0;
  for (int field = 0; field < 8; ++field) {
    unsigned long long ticks = 0;
    in >> ticks;
    if (field != 3 && field != 4) busy += static_cast<double>(ticks);  // idle, iowait
  }
  return busy / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

// VmRSS of this process in KB, or 0.
long ResidentKb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return 0;
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  }
  return "unknown";
}

// ---- The client side ----

class Peer;

// Receives a Peer's events, on the peer's thread.
class PeerHandler {
 public:
  virtual void OnConnected(Peer& peer, const asio::error_code& ec) = 0;
  virtual void OnFrame(Peer& peer, std::string_view frame) = 0;
  // The server closed the socket, or it failed. Not called after Peer::Close().
  virtual void OnClosed(Peer& peer) = 0;

 protected:
  ~PeerHandler() = default;
};

// One client socket speaking the TCP framing. Its io_context runs on one thread; every method
// and handler runs there. Reads wait for readability, then read into the thread's shared buffer,
// so an idle socket holds no read buffer. Asio's epoll registration is edge-triggered, but a
// wait re-arms it (EPOLL_CTL_MOD), which reports data that is already there: a read that did not
// fill the buffer can go back to waiting without a second read to see would_block.
class Peer {
 public:
  Peer(asio::io_context& io, PeerHandler* handler, std::vector<char>* read_buffer, size_t index)
      : socket_(io),
        handler_(handler),
        read_buffer_(read_buffer),
        index_(index),
        decoder_(kMaxFrameBytes) {}

  size_t index() const { return index_; }

  void Connect(const tcp::endpoint& server) {
    socket_.async_connect(server, [this](const asio::error_code& ec) {
      if (!ec) {
        asio::error_code ignored;
        socket_.set_option(tcp::no_delay(true), ignored);
        socket_.non_blocking(true, ignored);
        open_ = true;
        WaitReadable();
      }
      handler_->OnConnected(*this, ec);
    });
  }

  // Queues one frame; one write is in flight at a time and the next one takes all queued.
  void Send(std::string_view payload) {
    if (!open_) return;
    unsigned char header[im::internal::kFrameHeaderBytes];
    im::internal::PutFrameHeader(static_cast<uint32_t>(payload.size()), header);
    out_.append(reinterpret_cast<const char*>(header), sizeof header);
    out_.append(payload);
    if (!writing_) Flush();
  }

  void Close() {
    open_ = false;
    asio::error_code ignored;
    socket_.close(ignored);
  }

 private:
  void Flush() {
    if (out_.empty() || !open_) {
      writing_ = false;
      return;
    }
    writing_ = true;
    inflight_.swap(out_);
    out_.clear();
    asio::async_write(socket_, asio::buffer(inflight_),
                      [this](const asio::error_code& ec, size_t) {
                        inflight_.clear();
                        if (ec) return Fail();
                        Flush();
                      });
  }

  void WaitReadable() {
    socket_.async_wait(tcp::socket::wait_read, [this](const asio::error_code& ec) {
      if (ec) return Fail();
      Drain();
    });
  }

  void Drain() {
    std::vector<char>& buffer = *read_buffer_;
    for (;;) {
      asio::error_code ec;
      size_t n = socket_.read_some(asio::buffer(buffer), ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) break;
      if (ec) return Fail();  // eof included
      std::string_view input(buffer.data(), n);
      while (!input.empty()) {
        FrameDecoder::State state = decoder_.Feed(&input, &frame_);
        if (state == FrameDecoder::State::kError) return Fail();
        if (state == FrameDecoder::State::kNeedMore) break;
        handler_->OnFrame(*this, frame_);
        if (!open_) return;
      }
      if (n < buffer.size()) break;
    }
    WaitReadable();
  }

  void Fail() {
    if (!open_) return;  // closed by us: the aborted handlers report nothing
    Close();
    handler_->OnClosed(*this);
  }

  tcp::socket socket_;
  PeerHandler* handler_;
  std::vector<char>* read_buffer_;
  const size_t index_;
  FrameDecoder decoder_;
  std::string frame_;
  std::string out_;
  std::string inflight_;
  bool open_ = false;
  bool writing_ = false;
};

// An io_context on its own named thread, with the read buffer its peers share.
class ClientThread {
 public:
  explicit ClientThread(const char* name)
      : work_(asio::make_work_guard(io_)), read_buffer_(kReadBufferBytes) {
    thread_ = std::thread([this, name] {
      pthread_setname_np(pthread_self(), name);
      tid_.store(CurrentTid());
      io_.run();
    });
  }
  ~ClientThread() { Join(); }

  asio::io_context& io() { return io_; }
  std::vector<char>* read_buffer() { return &read_buffer_; }
  pid_t tid() const {
    while (tid_.load() == 0) std::this_thread::yield();
    return tid_.load();
  }
  // Returns once every handler has finished (close the sockets first).
  void Join() {
    work_.reset();
    if (thread_.joinable()) thread_.join();
  }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<char> read_buffer_;
  std::atomic<pid_t> tid_{0};
  std::thread thread_;
};

std::string LoginFrame(const std::string& token) {
  return "{\"id\":1,\"cmd\":\"login\",\"body\":{\"token\":\"" + token + "\"}}";
}

// The online members except the sender, all on one thread. Connects at most kMaxConnecting at a
// time, logs each in, then counts the chat.message pushes of type text each one receives.
class Receivers final : public PeerHandler {
 public:
  Receivers(ClientThread& thread, tcp::endpoint server, std::vector<std::string> login_frames)
      : thread_(thread), server_(server), login_frames_(std::move(login_frames)) {
    peers_.reserve(login_frames_.size());
    for (size_t i = 0; i < login_frames_.size(); ++i) {
      peers_.push_back(std::make_unique<Peer>(thread.io(), this, thread.read_buffer(), i));
    }
    received_by_.assign(peers_.size(), 0);
    logged_in_by_.assign(peers_.size(), false);
  }

  size_t size() const { return peers_.size(); }
  void Start() {
    asio::post(thread_.io(), [this] {
      for (size_t i = 0; i < kMaxConnecting; ++i) ConnectNext();
    });
  }
  void CloseAll() {
    asio::post(thread_.io(), [this] {
      stopping_ = true;  // an aborted connect must not start the next one
      for (auto& peer : peers_) peer->Close();
    });
  }
  // After the thread stopped: how many receivers got fewer, or more, pushes than `expected`.
  void CountMismatches(size_t expected, size_t* fewer, size_t* more) const {
    *fewer = *more = 0;
    for (size_t n : received_by_) {
      if (n < expected) ++*fewer;
      if (n > expected) ++*more;
    }
  }

  // Progress, readable from any thread.
  std::atomic<size_t> logged_in{0};
  std::atomic<size_t> login_failed{0};
  std::atomic<size_t> closed{0};  // logged-in receivers the server closed
  std::atomic<size_t> received{0};
  std::atomic<int64_t> last_push_ns{0};

 private:
  void ConnectNext() {
    if (!stopping_ && next_ < peers_.size()) peers_[next_++]->Connect(server_);
  }

  void OnConnected(Peer& peer, const asio::error_code& ec) override {
    if (ec) {
      login_failed.fetch_add(1);
      ConnectNext();
      return;
    }
    peer.Send(login_frames_[peer.index()]);
  }

  void OnFrame(Peer& peer, std::string_view frame) override {
    if (Contains(frame, "\"cmd\":\"chat.message\"")) {
      if (Contains(frame, "\"type\":\"text\"")) {
        ++received_by_[peer.index()];
        received.fetch_add(1, std::memory_order_relaxed);
        last_push_ns.store(NowNs(), std::memory_order_relaxed);
      }
      return;
    }
    if (!logged_in_by_[peer.index()] && Contains(frame, "\"cmd\":\"login\"")) {
      if (IntAfter(frame, "\"code\":") == 0) {
        logged_in_by_[peer.index()] = true;
        logged_in.fetch_add(1);
      } else {
        login_failed.fetch_add(1);
        peer.Close();
      }
      ConnectNext();
    }
  }

  void OnClosed(Peer& peer) override {
    if (logged_in_by_[peer.index()]) {
      closed.fetch_add(1);
    } else {
      login_failed.fetch_add(1);
      ConnectNext();
    }
  }

  ClientThread& thread_;
  const tcp::endpoint server_;
  const std::vector<std::string> login_frames_;
  std::vector<std::unique_ptr<Peer>> peers_;
  // Client thread only.
  size_t next_ = 0;
  bool stopping_ = false;
  std::vector<size_t> received_by_;
  std::vector<bool> logged_in_by_;
};

// The sending member on its own thread: M chat.send requests to the group, W in flight (request
// ids 2..M+1; 1 is the login), each one's ack latency recorded.
class Sender final : public PeerHandler {
 public:
  Sender(ClientThread& thread, tcp::endpoint server, std::string login_frame, size_t messages,
         size_t window)
      : thread_(thread),
        server_(server),
        login_frame_(std::move(login_frame)),
        messages_(messages),
        window_(window),
        peer_(thread.io(), this, thread.read_buffer(), 0),
        body_(kBodyBytes, 'x'),
        sent_ns_(messages, 0) {
    latencies_ms_.reserve(messages);
  }

  void Connect() {
    asio::post(thread_.io(), [this] { peer_.Connect(server_); });
  }
  void Start() {
    asio::post(thread_.io(), [this] {
      first_send_ns.store(NowNs());
      for (size_t i = 0; i < window_; ++i) SendNext();
    });
  }
  void Close() {
    asio::post(thread_.io(), [this] { peer_.Close(); });
  }

  // After the thread stopped.
  std::vector<double>& latencies_ms() { return latencies_ms_; }
  const std::string& first_error() const { return first_error_; }

  // Progress, readable from any thread.
  std::atomic<int> login_state{0};  // 0 pending, 1 logged in, -1 failed
  std::atomic<bool> closed{false};
  std::atomic<size_t> resolved{0};
  std::atomic<size_t> acked{0};
  std::atomic<size_t> errors{0};
  std::atomic<int64_t> first_send_ns{0};
  std::atomic<int64_t> last_ack_ns{0};

 private:
  void SendNext() {
    if (next_ >= messages_) return;
    const size_t k = next_++;
    std::string request = "{\"id\":" + std::to_string(k + 2) +
                          ",\"cmd\":\"chat.send\",\"body\":{\"group\":\"" + kGroup +
                          "\",\"cid\":\"c" + std::to_string(k) + "\",\"body\":\"" + body_ +
                          "\"}}";
    sent_ns_[k] = NowNs();
    peer_.Send(request);
  }

  void OnConnected(Peer& peer, const asio::error_code& ec) override {
    if (ec) {
      login_state.store(-1);
      return;
    }
    peer.Send(login_frame_);
  }

  void OnFrame(Peer&, std::string_view frame) override {
    if (Contains(frame, "\"cmd\":\"chat.send\"")) {
      const int64_t now = NowNs();
      const int64_t id = IntAfter(frame, "\"id\":");
      if (id < 2 || static_cast<size_t>(id - 2) >= messages_) return;
      const size_t k = static_cast<size_t>(id - 2);
      if (sent_ns_[k] == 0) return;  // answered twice
      latencies_ms_.push_back(static_cast<double>(now - sent_ns_[k]) / 1e6);
      sent_ns_[k] = 0;
      if (IntAfter(frame, "\"code\":") == 0) {
        acked.fetch_add(1);
      } else {
        if (errors.fetch_add(1) == 0) first_error_ = std::string(frame.substr(0, 160));
      }
      last_ack_ns.store(now);
      resolved.fetch_add(1);
      SendNext();
    } else if (login_state.load() == 0 && Contains(frame, "\"cmd\":\"login\"")) {
      login_state.store(IntAfter(frame, "\"code\":") == 0 ? 1 : -1);
    }
  }

  void OnClosed(Peer&) override {
    closed.store(true);
    if (login_state.load() == 0) login_state.store(-1);
  }

  ClientThread& thread_;
  const tcp::endpoint server_;
  const std::string login_frame_;
  const size_t messages_;
  const size_t window_;
  Peer peer_;
  const std::string body_;
  // Sender thread only.
  size_t next_ = 0;
  std::vector<int64_t> sent_ns_;  // by message; 0 once answered
  std::vector<double> latencies_ms_;
  std::string first_error_;
};

// ---- Cases ----

struct Flags {
  std::string inbox = "leveldb";
  size_t messages = 0;  // 0 = MessagesFor(members, online)
  size_t window = 16;
  std::vector<size_t> sizes = {10, 100, 1000, 5000};
  int io_threads = 1;
  int worker_threads = 1;
  double deadline_s = 30;
};

// Scaled so that a case takes about 1-3 s on an idle 2-core machine, where a message costs about
// 60 us, plus 3.5 us per online receiver (the push) and 1.5 us per member (the index entry).
// Two significant digits; at least 100, so that the window fills and p99 means something.
size_t MessagesFor(size_t members, size_t online) {
  size_t m = 3000000 / (120 + 7 * online + 3 * members);
  size_t unit = 1;
  while (m / unit >= 100) unit *= 10;
  return std::clamp<size_t>(m / unit * unit, 100, 20000);
}

struct Row {
  std::string inbox;
  size_t members = 0;
  size_t online = 0;
  size_t messages = 0;
  size_t acked = 0;
  size_t deliveries = 0;
  double wall_s = 0;
  double login_s = 0;
  double p50_ms = -1;
  double p99_ms = -1;
  double kb_per_conn = -1;
  std::string status;
  // CPU seconds of the send phase.
  double cpu_io = 0, cpu_worker = 0, cpu_committer = 0, cpu_clients = 0, cpu_sender = 0,
         cpu_other = 0;
  double cpu_others = 0;  // other processes on the machine
  double phase_s = 0;     // the send phase as the CPU times were taken
};

void AddStatus(Row* row, const std::string& what) {
  if (!row->status.empty()) row->status += ", ";
  row->status += what;
}

std::string UserId(size_t i) {
  char id[24];
  std::snprintf(id, sizeof id, "u%05zu", i);
  return id;
}

// Waits until done() or the deadline; true when done() became true.
template <typename Done>
bool WaitFor(Done done, double seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

Row RunCase(const Flags& flags, size_t members, size_t online, size_t messages,
            const std::string& dir) {
  Row row;
  row.inbox = flags.inbox;
  row.members = members;
  row.online = online;
  row.messages = messages;

  // Backends.
  std::shared_ptr<im::OfflineQueue> inbox;
  if (flags.inbox == "memory") {
    inbox = im::NewMemoryOfflineQueue();
  } else {
    im::Result<std::shared_ptr<im::OfflineQueue>> opened = im::OpenLevelDbOfflineQueue(dir);
    if (!opened.ok()) {
      row.status = "error: " + opened.status().ToString();
      return row;
    }
    inbox = std::move(opened).value();
  }
  im::GroupLimits limits;
  limits.max_members = std::max(limits.max_members, members);
  std::shared_ptr<im::GroupService> groups = im::NewMemoryGroupService(limits);
  std::shared_ptr<im::KeyStore> keys =
      im::NewStaticKeyStore({{kTenant, std::string(32, 'k')}});

  // The group: u00000 (the sender, owner) and every other member. The online receivers are
  // spread evenly over the rest.
  std::vector<std::string> others;
  for (size_t i = 1; i < members; ++i) others.push_back(UserId(i));
  const im::TimestampMs now_ms = im::SystemClock()->NowMs();
  im::Result<im::GroupInfo> group =
      groups->Create(im::GroupKey{kTenant, kGroup}, "fanout bench", UserId(0), others, now_ms);
  if (!group.ok()) {
    row.status = "error: group: " + group.status().ToString();
    return row;
  }
  auto login_frame = [&](size_t i) -> std::string {
    im::Result<std::string> token =
        im::SignHs256Token(*keys, im::UserKey{kTenant, UserId(i)}, 3600, now_ms);
    return token.ok() ? LoginFrame(*token) : std::string();
  };
  std::vector<std::string> receiver_logins;
  for (size_t j = 0; j + 1 < online; ++j) {
    receiver_logins.push_back(login_frame(1 + j * (members - 1) / (online - 1)));
  }

  im::ServerOptions options;
  options.tcp_listen = "127.0.0.1:0";
  options.http_listen = "";
  options.io_threads = flags.io_threads;
  options.worker_threads = flags.worker_threads;
  im::ServerDeps deps;
  deps.sessions = im::NewMemorySessionStore();
  deps.router = im::NewLocalRouter();
  deps.inbox = inbox;
  deps.tokens = im::NewHs256Verifier(keys);
  deps.groups = groups;
  const std::set<pid_t> tids_before = ThreadIds();
  auto server = std::make_unique<im::Server>(options, deps);
  im::Status started = server->Start();
  if (!started.ok()) {
    row.status = "error: start: " + started.ToString();
    return row;
  }
  // Start() creates the worker pool, then the committer, then the io threads; tids ascend.
  std::vector<pid_t> server_tids;
  for (pid_t tid : ThreadIds()) {
    if (tids_before.count(tid) == 0) server_tids.push_back(tid);
  }
  const tcp::endpoint endpoint(asio::ip::make_address_v4("127.0.0.1"), server->tcp_port());

  // Connect and log in.
  ClientThread client_thread("bench-clients");
  ClientThread sender_thread("bench-sender");
  Receivers receivers(client_thread, endpoint, std::move(receiver_logins));
  Sender sender(sender_thread, endpoint, login_frame(0), messages, flags.window);
  malloc_trim(0);  // so that the logins' memory shows up as new pages, not reused free ones
  const long rss_before = ResidentKb();
  const int64_t login_start = NowNs();
  sender.Connect();
  receivers.Start();
  const bool logged_in = WaitFor(
      [&] {
        return sender.login_state.load() != 0 &&
               receivers.logged_in.load() + receivers.login_failed.load() >= receivers.size();
      },
      flags.deadline_s);
  row.login_s = static_cast<double>(NowNs() - login_start) / 1e9;
  const long rss_after = ResidentKb();
  if (online >= 1000 && rss_after > rss_before) {  // smaller deltas drown in allocator noise
    row.kb_per_conn = static_cast<double>(rss_after - rss_before) / static_cast<double>(online);
  }
  if (!logged_in) AddStatus(&row, "login timeout");
  if (receivers.login_failed.load() > 0) {
    AddStatus(&row, std::to_string(receivers.login_failed.load()) + " logins failed");
  }

  // Send.
  bool finished = false;
  int64_t end_ns = 0;
  std::map<pid_t, double> cpu_before = CpuByThread();
  const double machine_before = MachineBusySeconds();
  const int64_t phase_start = NowNs();
  if (sender.login_state.load() == 1) {
    sender.Start();
    const size_t expect_receivers = receivers.logged_in.load();
    size_t last_received = 0;
    int64_t last_change_ns = NowNs();
    bool stalled = false;
    finished = WaitFor(
        [&] {
          if (sender.closed.load()) return true;
          const size_t received = receivers.received.load();
          const int64_t now = NowNs();
          if (received != last_received) {
            last_received = received;
            last_change_ns = now;
          }
          if (sender.resolved.load() < messages) return false;
          if (received >= expect_receivers * sender.acked.load()) return true;
          stalled = static_cast<double>(now - last_change_ns) / 1e9 > kStallSeconds;
          return stalled;
        },
        flags.deadline_s);
    end_ns = NowNs();
    if (!finished) AddStatus(&row, "timeout");
    if (stalled) AddStatus(&row, "stalled");
    if (sender.closed.load()) AddStatus(&row, "sender closed");
  } else {
    AddStatus(&row, "sender login failed");
  }
  std::map<pid_t, double> cpu_after = CpuByThread();
  const double machine_busy = MachineBusySeconds() - machine_before;
  row.phase_s = static_cast<double>(NowNs() - phase_start) / 1e9;

  // Tear down: clients first, so the server sees plain closes.
  receivers.CloseAll();
  sender.Close();
  client_thread.Join();
  sender_thread.Join();
  server->Stop();
  server.reset();

  // Results.
  const size_t acked = sender.acked.load();
  row.acked = acked;
  row.deliveries = receivers.received.load();
  if (sender.first_send_ns.load() != 0) {
    const int64_t last = std::max(sender.last_ack_ns.load(), receivers.last_push_ns.load());
    const int64_t stop = finished ? std::max(last, sender.first_send_ns.load()) : end_ns;
    row.wall_s = static_cast<double>(stop - sender.first_send_ns.load()) / 1e9;
  }
  std::vector<double>& latencies = sender.latencies_ms();
  if (!latencies.empty()) {
    std::sort(latencies.begin(), latencies.end());
    row.p50_ms = latencies[latencies.size() / 2];
    row.p99_ms = latencies[std::min(latencies.size() - 1, latencies.size() * 99 / 100)];
  }
  if (sender.errors.load() > 0) {
    AddStatus(&row, std::to_string(sender.errors.load()) + " send errors, first: " +
                        sender.first_error());
  }
  if (receivers.closed.load() > 0) {
    AddStatus(&row, std::to_string(receivers.closed.load()) + " receivers closed by the server");
  }
  if (logged_in && finished) {
    // Cut short, counts differ by design: late logins miss early pushes, and pushes can arrive
    // for messages whose ack the sender had not read yet.
    size_t fewer = 0, more = 0;
    receivers.CountMismatches(acked, &fewer, &more);
    if (fewer > 0) AddStatus(&row, std::to_string(fewer) + " receivers short");
    if (more > 0) AddStatus(&row, std::to_string(more) + " receivers got extra pushes");
  }
  if (row.status.empty()) row.status = "ok";

  // CPU of the send phase by thread.
  auto spent = [&](pid_t tid) {
    auto b = cpu_before.find(tid);
    auto a = cpu_after.find(tid);
    return (a == cpu_after.end() ? 0 : a->second) - (b == cpu_before.end() ? 0 : b->second);
  };
  std::set<pid_t> named;
  const size_t workers = static_cast<size_t>(flags.worker_threads);
  const size_t ios = static_cast<size_t>(flags.io_threads);
  if (server_tids.size() == workers + 1 + ios) {
    for (size_t i = 0; i < server_tids.size(); ++i) {
      double s = spent(server_tids[i]);
      if (i < workers) {
        row.cpu_worker += s;
      } else if (i == workers) {
        row.cpu_committer += s;
      } else {
        row.cpu_io += s;
      }
      named.insert(server_tids[i]);
    }
  }
  row.cpu_clients = spent(client_thread.tid());
  row.cpu_sender = spent(sender_thread.tid());
  named.insert(client_thread.tid());
  named.insert(sender_thread.tid());
  double ours = 0;
  for (const auto& [tid, seconds] : cpu_after) {
    if (named.count(tid) == 0) row.cpu_other += spent(tid);
    ours += spent(tid);
  }
  row.cpu_others = std::max(0.0, machine_busy - ours);
  return row;
}

void PrintHeader() {
  std::printf("%-8s %7s %6s %8s %12s %12s %8s %8s %7s %7s %7s  %s\n", "inbox", "members", "online",
              "messages", "deliveries/s", "entries/s", "ack-p50", "ack-p99", "wall", "login",
              "KB/conn", "status");
  std::printf("%-8s %7s %6s %8s %12s %12s %8s %8s %7s %7s %7s\n", "", "", "", "", "", "", "ms",
              "ms", "s", "s", "");
}

void PrintRow(const Row& row) {
  char deliveries[32] = "-", entries[32] = "-", p50[32] = "-", p99[32] = "-", kb[32] = "-";
  if (row.wall_s > 0) {
    if (row.online > 1) {
      std::snprintf(deliveries, sizeof deliveries, "%.0f",
                    static_cast<double>(row.deliveries) / row.wall_s);
    }
    std::snprintf(entries, sizeof entries, "%.0f",
                  static_cast<double>(row.members * row.acked) / row.wall_s);
  }
  if (row.p50_ms >= 0) std::snprintf(p50, sizeof p50, "%.2f", row.p50_ms);
  if (row.p99_ms >= 0) std::snprintf(p99, sizeof p99, "%.2f", row.p99_ms);
  if (row.kb_per_conn >= 0) std::snprintf(kb, sizeof kb, "%.1f", row.kb_per_conn);
  std::printf("%-8s %7zu %6zu %8zu %12s %12s %8s %8s %7.2f %7.2f %7s  %s\n", row.inbox.c_str(),
              row.members, row.online, row.messages, deliveries, entries, p50, p99, row.wall_s,
              row.login_s, kb, row.status.c_str());
  std::fflush(stdout);
}

void PrintCpuTable(const std::vector<Row>& rows) {
  std::printf("\nCPU seconds of the send phase by thread (server: io, worker, committer; "
              "benchmark: clients, sender; other: LevelDB compaction, main), of this process "
              "(cpu%%, 100%% = one core) and of other processes on the machine\n");
  std::printf("%-8s %7s %6s %6s %6s %9s %7s %6s %6s %6s %5s %7s\n", "inbox", "members", "online",
              "io", "worker", "committer", "clients", "sender", "other", "phase", "cpu%",
              "others");
  for (const Row& r : rows) {
    const double ours = r.cpu_io + r.cpu_worker + r.cpu_committer + r.cpu_clients +
                        r.cpu_sender + r.cpu_other;
    std::printf("%-8s %7zu %6zu %6.2f %6.2f %9.2f %7.2f %6.2f %6.2f %6.2f %5.0f %7.2f\n",
                r.inbox.c_str(), r.members, r.online, r.cpu_io, r.cpu_worker, r.cpu_committer,
                r.cpu_clients, r.cpu_sender, r.cpu_other, r.phase_s,
                r.phase_s > 0 ? 100 * ours / r.phase_s : 0.0, r.cpu_others);
  }
}

bool ParseSize(const std::string& text, size_t* out) {
  char* end = nullptr;
  unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || end == text.c_str() || *end != '\0' || v == 0) return false;
  *out = static_cast<size_t>(v);
  return true;
}

bool ParseFlags(int argc, char** argv, Flags* flags) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](const std::string& name, std::string* out) {
      if (arg == name && i + 1 < argc) {
        *out = argv[++i];
        return true;
      }
      if (arg.rfind(name + "=", 0) == 0) {
        *out = arg.substr(name.size() + 1);
        return true;
      }
      return false;
    };
    std::string text;
    size_t n = 0;
    if (value("--inbox", &text)) {
      if (text != "memory" && text != "leveldb") return false;
      flags->inbox = text;
    } else if (value("--messages", &text)) {
      if (!ParseSize(text, &flags->messages)) return false;
    } else if (value("--window", &text)) {
      if (!ParseSize(text, &flags->window)) return false;
    } else if (value("--io-threads", &text)) {
      if (!ParseSize(text, &n) || n > 64) return false;
      flags->io_threads = static_cast<int>(n);
    } else if (value("--worker-threads", &text)) {
      if (!ParseSize(text, &n) || n > 64) return false;
      flags->worker_threads = static_cast<int>(n);
    } else if (value("--deadline", &text)) {
      char* end = nullptr;
      flags->deadline_s = std::strtod(text.c_str(), &end);
      if (end == text.c_str() || *end != '\0' || !(flags->deadline_s > 0)) return false;
    } else if (value("--sizes", &text)) {
      flags->sizes.clear();
      size_t start = 0;
      while (start <= text.size()) {
        size_t comma = std::min(text.find(',', start), text.size());
        if (!ParseSize(text.substr(start, comma - start), &n)) return false;
        flags->sizes.push_back(n);
        start = comma + 1;
      }
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  if (!ParseFlags(argc, argv, &flags)) {
    std::fprintf(stderr,
                 "usage: %s [--inbox memory|leveldb] [--messages N] [--window W] "
                 "[--sizes 10,100,1000,5000] [--io-threads N] [--worker-threads N] "
                 "[--deadline S]\n",
                 argv[0]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  // Both ends of every connection are in this process: 5000 online members need > 10,000 fds.
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
  getrlimit(RLIMIT_NOFILE, &limit);

  char base[] = "/tmp/fanout_bench-XXXXXX";
  if (mkdtemp(base) == nullptr) {
    std::perror("mkdtemp");
    return 0;
  }

  std::printf("machine: %u cpus, %s; open files limit %llu; load average %s\n",
              std::thread::hardware_concurrency(), CpuModel().c_str(),
              static_cast<unsigned long long>(limit.rlim_cur), LoadAverage().c_str());
  std::printf("fanout_bench: inbox %s, server io_threads %d worker_threads %d, window %zu, "
              "%zu-byte bodies, deadline %.0f s per phase, TCP on 127.0.0.1\n",
              flags.inbox.c_str(), flags.io_threads, flags.worker_threads, flags.window,
              kBodyBytes, flags.deadline_s);
  PrintHeader();

  std::vector<Row> rows;
  int case_number = 0;
  for (size_t members : flags.sizes) {
    for (int percent : {100, 10}) {
      size_t online = std::max<size_t>(2, (members * static_cast<size_t>(percent) + 50) / 100);
      online = std::min(online, members);
      const size_t messages = flags.messages > 0 ? flags.messages : MessagesFor(members, online);
      const std::string dir = std::string(base) + "/case-" + std::to_string(++case_number);
      Row row;
      // Both ends of each connection, plus room for LevelDB and the process itself.
      const size_t fds_needed = 2 * online + 256;
      if (fds_needed > limit.rlim_cur) {
        row.inbox = flags.inbox;
        row.members = members;
        row.online = online;
        row.messages = messages;
        row.status = "skipped: needs " + std::to_string(fds_needed) + " open files";
      } else {
        row = RunCase(flags, members, online, messages, dir);
      }
      std::error_code ec;
      fs::remove_all(dir, ec);
      PrintRow(row);
      rows.push_back(row);
    }
  }
  PrintCpuTable(rows);
  std::printf("load average at the end: %s\n", LoadAverage().c_str());
  std::error_code ec;
  fs::remove_all(base, ec);
  return 0;
}
