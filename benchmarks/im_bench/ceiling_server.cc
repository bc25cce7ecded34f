// ceiling_server: a bare Asio message router, the machine's ceiling for im-bench. No storage,
// no JSON, no auth: only routing. Listens on 127.0.0.1.
//
//   ceiling_server --port P [--threads N] [--read-buffer BYTES]
//
// Frames both ways: a 4-byte big-endian length, then the payload, whose first byte is an op:
//   'L'<name>            log in as <name> (replaces an earlier holder)     -> 'l'
//   'S'<n><name><data>   send to user <name> (n = its length, one byte)    -> 'a' ('e' if unknown)
//                        and 'M'<data> to that user's connection
//   'J'<gid>             join group <gid>                                  -> 'j'
//   'G'<n><gid><data>    send to a group: 'M'<data> to every other member  -> 'a'
//   'E'<data>            echo: the same frame back
// Per connection: one read buffer; gathered writes, one write in flight, a bounded queue of
// pending frames (the connection is dropped past the bound). A fan-out frame is built once and
// shared by every receiver. Exits on SIGTERM or SIGINT.
#include <CLI/CLI.hpp>
#include <asio.hpp>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

using asio::ip::tcp;
using Frame = std::shared_ptr<const std::string>;

constexpr size_t kMaxFrameBytes = 16 << 20;
constexpr size_t kMaxQueuedBytes = 16 << 20;

Frame MakeFrame(char op, std::string_view data) {
  auto f = std::make_shared<std::string>();
  const uint32_t len = static_cast<uint32_t>(1 + data.size());
  f->reserve(4 + len);
  const char header[4] = {static_cast<char>(len >> 24), static_cast<char>(len >> 16),
                          static_cast<char>(len >> 8), static_cast<char>(len)};
  f->append(header, 4);
  f->push_back(op);
  f->append(data.data(), data.size());
  return f;
}

// The fixed replies, shared by every connection.
const Frame kLoggedIn = MakeFrame('l', "");
const Frame kJoined = MakeFrame('j', "");
const Frame kAck = MakeFrame('a', "");
const Frame kUnknownUser = MakeFrame('e', "unknown user");

struct Worker {
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{asio::make_work_guard(io)};
  std::thread thread;
};

class Session;

// Who is logged in and who is in which group, shared by all workers.
struct Registry {
  std::shared_mutex mu;
  std::unordered_map<std::string, std::shared_ptr<Session>> users;
  std::unordered_map<std::string, std::vector<std::shared_ptr<Session>>> groups;
};
Registry g_registry;
size_t g_read_buffer = 4096;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Worker* worker)
      : socket_(std::move(socket)), worker_(worker), buffer_(g_read_buffer) {}

  void Start() {
    asio::error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    Read();
  }

  // Queues a frame; on this session's thread.
  void Deliver(const Frame& f) {
    if (closed_) return;
    queued_bytes_ += f->size();
    if (queued_bytes_ > kMaxQueuedBytes) return Close();
    queue_.push_back(f);
    if (!writing_) Flush();
  }

  // Queues a frame from any session's thread.
  void DeliverFrom(Worker* from, const Frame& f) {
    if (from == worker_) {
      Deliver(f);
    } else {
      asio::post(worker_->io, [self = shared_from_this(), f] { self->Deliver(f); });
    }
  }

 private:
  void Read() {
    if (read_end_ == buffer_.size()) buffer_.resize(buffer_.size() * 2);
    socket_.async_read_some(
        asio::buffer(buffer_.data() + read_end_, buffer_.size() - read_end_),
        [self = shared_from_this()](const asio::error_code& ec, size_t n) {
          if (ec) return self->Close();
          self->read_end_ += n;
          if (!self->ParseFrames()) return self->Close();
          if (!self->closed_) self->Read();
        });
  }

  // Handles every complete frame in the buffer and keeps the rest at its front.
  bool ParseFrames() {
    size_t at = 0;
    while (read_end_ - at >= 4) {
      const auto* b = reinterpret_cast<const unsigned char*>(buffer_.data() + at);
      const size_t len = (size_t{b[0]} << 24) | (size_t{b[1]} << 16) | (size_t{b[2]} << 8) | b[3];
      if (len == 0 || len > kMaxFrameBytes) return false;
      if (read_end_ - at < 4 + len) {
        if (4 + len > buffer_.size()) buffer_.resize(4 + len);
        break;
      }
      if (!Handle(std::string_view(buffer_.data() + at + 4, len))) return false;
      at += 4 + len;
      if (closed_) return true;
    }
    if (at > 0) {
      std::memmove(buffer_.data(), buffer_.data() + at, read_end_ - at);
      read_end_ -= at;
    }
    return true;
  }

  bool Handle(std::string_view p) {
    const char op = p[0];
    p.remove_prefix(1);
    switch (op) {
      case 'L': {
        std::unique_lock lock(g_registry.mu);
        if (!name_.empty()) Unregister(lock);
        name_.assign(p.data(), p.size());
        g_registry.users[name_] = shared_from_this();
        lock.unlock();
        Deliver(kLoggedIn);
        return true;
      }
      case 'S': {
        if (p.empty() || p.size() < 1 + size_t{static_cast<uint8_t>(p[0])}) return false;
        const size_t n = static_cast<uint8_t>(p[0]);
        const std::string_view to = p.substr(1, n);
        std::shared_ptr<Session> target;
        {
          std::shared_lock lock(g_registry.mu);
          lookup_.assign(to.data(), to.size());
          auto it = g_registry.users.find(lookup_);
          if (it != g_registry.users.end()) target = it->second;
        }
        if (!target) {
          Deliver(kUnknownUser);
          return true;
        }
        target->DeliverFrom(worker_, MakeFrame('M', p.substr(1 + n)));
        Deliver(kAck);
        return true;
      }
      case 'J': {
        std::string gid(p);
        {
          std::unique_lock lock(g_registry.mu);
          g_registry.groups[gid].push_back(shared_from_this());
        }
        groups_.push_back(std::move(gid));
        Deliver(kJoined);
        return true;
      }
      case 'G': {
        if (p.empty() || p.size() < 1 + size_t{static_cast<uint8_t>(p[0])}) return false;
        const size_t n = static_cast<uint8_t>(p[0]);
        const Frame frame = MakeFrame('M', p.substr(1 + n));
        {
          std::shared_lock lock(g_registry.mu);
          lookup_.assign(p.data() + 1, n);
          auto it = g_registry.groups.find(lookup_);
          if (it != g_registry.groups.end()) {
            for (const auto& member : it->second) {
              if (member.get() != this) member->DeliverFrom(worker_, frame);
            }
          }
        }
        Deliver(kAck);
        return true;
      }
      case 'E':
        Deliver(MakeFrame('E', p));
        return true;
      default:
        return false;
    }
  }

  void Flush() {
    writing_ = true;
    writing_frames_.swap(queue_);
    queue_.clear();
    buffers_.clear();
    for (const Frame& f : writing_frames_) buffers_.emplace_back(f->data(), f->size());
    asio::async_write(socket_, buffers_,
                      [self = shared_from_this()](const asio::error_code& ec, size_t n) {
                        self->queued_bytes_ -= n;
                        self->writing_frames_.clear();
                        if (ec) return self->Close();
                        if (self->queue_.empty()) {
                          self->writing_ = false;
                        } else {
                          self->Flush();
                        }
                      });
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    asio::error_code ignored;
    socket_.close(ignored);
    // Leave the registry in a handler of our own: Close may run under a fan-out's lock.
    asio::post(worker_->io, [self = shared_from_this()] {
      std::unique_lock lock(g_registry.mu);
      self->Unregister(lock);
    });
  }

  void Unregister(std::unique_lock<std::shared_mutex>&) {
    if (!name_.empty()) {
      auto it = g_registry.users.find(name_);
      if (it != g_registry.users.end() && it->second.get() == this) g_registry.users.erase(it);
      name_.clear();
    }
    for (const auto& gid : groups_) {
      auto it = g_registry.groups.find(gid);
      if (it == g_registry.groups.end()) continue;
      auto& members = it->second;
      for (size_t i = 0; i < members.size(); ++i) {
        if (members[i].get() == this) {
          members[i] = std::move(members.back());
          members.pop_back();
          break;
        }
      }
      if (members.empty()) g_registry.groups.erase(it);
    }
    groups_.clear();
  }

  tcp::socket socket_;
  Worker* worker_;
  std::vector<char> buffer_;
  size_t read_end_ = 0;
  std::vector<Frame> queue_;
  std::vector<Frame> writing_frames_;
  std::vector<asio::const_buffer> buffers_;
  size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool closed_ = false;
  std::string name_;
  std::string lookup_;
  std::vector<std::string> groups_;
};

class Server {
 public:
  Server(std::vector<std::unique_ptr<Worker>>& workers, uint16_t port)
      : workers_(workers), acceptor_(workers[0]->io) {
    tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), port);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen(asio::socket_base::max_listen_connections);
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  void Accept() {
    Worker* w = workers_[next_++ % workers_.size()].get();
    acceptor_.async_accept(w->io, [this, w](const asio::error_code& ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        auto session = std::make_shared<Session>(std::move(s), w);
        asio::post(w->io, [session] { session->Start(); });
      }
      Accept();
    });
  }
  void Stop() {
    asio::error_code ignored;
    acceptor_.close(ignored);
  }

 private:
  std::vector<std::unique_ptr<Worker>>& workers_;
  tcp::acceptor acceptor_;
  size_t next_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ceiling_server: a bare Asio router (the machine's ceiling for im-bench)"};
  int port = 0;
  int threads = 1;
  app.add_option("--port", port, "port on 127.0.0.1 (0: any; the chosen one is printed)")
      ->required();
  app.add_option("--threads", threads, "event-loop threads (default 1)");
  app.add_option("--read-buffer", g_read_buffer, "initial read buffer per connection (4096)");
  CLI11_PARSE(app, argc, argv);
  if (threads < 1 || port < 0 || port > 65535 || g_read_buffer < 16) {
    std::fprintf(stderr, "ceiling_server: bad flags\n");
    return 2;
  }
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < threads; ++i) workers.push_back(std::make_unique<Worker>());
  std::unique_ptr<Server> server;
  try {
    server = std::make_unique<Server>(workers, static_cast<uint16_t>(port));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ceiling_server: cannot listen on 127.0.0.1:%d: %s\n", port, e.what());
    return 1;
  }
  asio::signal_set signals(workers[0]->io, SIGINT, SIGTERM);
  signals.async_wait([&](const asio::error_code&, int) {
    server->Stop();
    for (auto& w : workers) w->io.stop();
  });
  server->Accept();
  std::printf("ceiling_server: listening on 127.0.0.1:%u with %d thread(s)\n", server->port(),
              threads);
  std::fflush(stdout);
  for (size_t i = 1; i < workers.size(); ++i) {
    workers[i]->thread = std::thread([w = workers[i].get()] { w->io.run(); });
  }
  workers[0]->io.run();
  for (size_t i = 1; i < workers.size(); ++i) workers[i]->thread.join();
  // Sessions still registered hold themselves; the process ends here.
  std::_Exit(0);
}
