// im-bench: what every scenario shares (threads, clients, setup, waiting, merging results),
// and the scenario entry points.
#ifndef IM_BENCH_SCENARIO_H_
#define IM_BENCH_SCENARIO_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "client.h"
#include "common.h"
#include "conn.h"
#include "stats.h"

namespace imbench {

// Connects in flight during setup: below mosquitto's listen backlog (100), so no SYN is dropped
// (a dropped SYN costs a one-second retransmit).
constexpr size_t kConnectBatch = 64;

class Harness {
 public:
  explicit Harness(const Options& options);
  ~Harness();

  const Options& options() const { return o_; }
  const asio::ip::tcp::endpoint& server() const { return servers_.front(); }
  // The server of the client at `index` in clients(): spread over Options::ports.
  const asio::ip::tcp::endpoint& server_for(size_t index) const {
    return servers_[index % servers_.size()];
  }
  ThreadCtx* ThreadFor(size_t i) { return threads_[i % threads_.size()].get(); }
  size_t thread_count() const { return threads_.size(); }
  ThreadCtx& thread(size_t i) { return *threads_[i]; }

  // Creates a client of the target on thread i % threads; its index() is its position in
  // clients(). Create every client before StartThreads (each thread ticks its own clients).
  Client* AddClient(size_t i, ClientEvents* events, ClientConfig config);
  std::vector<std::unique_ptr<Client>>& clients() { return clients_; }

  void StartThreads();
  // Starts (connects and logs in) `list`, at most `batch` connecting at a time; waits until
  // each is ready or failed, or `timeout_s` passes. True when all are ready.
  bool StartClients(const std::vector<Client*>& list, size_t batch, double timeout_s);
  // Why the last StartClients returned false.
  const std::string& start_error() const { return start_error_; }
  // Closes every client on its thread (with goodbye: MQTT DISCONNECT first), then stops the
  // threads. Called by the destructor too.
  void Shutdown(bool goodbye);

  // Polls `done` every 10 ms until it is true or `timeout_s` passes; returns done().
  bool WaitFor(double timeout_s, const std::function<bool()>& done);

  // Sums over threads.
  uint64_t Ready() const;
  uint64_t Failed() const;
  uint64_t Errors() const;
  uint64_t DeliveredTotal() const;
  std::string FirstError() const;
  // Merges the threads' counters into r (after Shutdown): delivery/ack/login histograms.
  void MergeInto(RunResult* r, bool delivery, bool ack, bool login) const;
  // A ThreadStats counter summed over the client threads, e.g. Sum(&ThreadStats::delivered).
  uint64_t Sum(uint64_t ThreadStats::*field) const;

  // A token for `user` (im targets), "" for the others.
  std::string Token(const std::string& user) const;
  // The same in the second tenant (--tenant-b, signed with --key-b or else --key).
  std::string TokenB(const std::string& user) const;

  // Base fields of a result of this run.
  RunResult NewResult() const;

 private:
  uint64_t SumAtomic(std::atomic<uint64_t> ThreadStats::*field) const;

  const Options& o_;
  std::vector<asio::ip::tcp::endpoint> servers_;  // never empty
  std::string raw_key_;
  std::string raw_key_b_;
  std::vector<std::unique_ptr<ThreadCtx>> threads_;
  std::vector<std::unique_ptr<Client>> clients_;
  std::string start_error_;
  bool started_ = false;
  bool shut_down_ = false;
};

// Setup time allowed for logging in n clients (the watchdog in main.cc allows more).
inline double SetupSeconds(size_t n) { return 20 + static_cast<double>(n) / 200; }

// Connections to the server on 127.0.0.1:`port` (or ::1) it has not accepted yet: the length of
// its listening socket's accept queue, plus with `half_open` the handshakes it has not finished
// (SYN_RECV). Read with sock_diag (Linux); -1 when that fails or nothing listens on `port`.
long NotAccepted(int port, bool half_open);

// Sleeps until the steady-clock time `ns`.
void SleepUntil(int64_t ns);

// Each returns 0 and fills `result` (or sets `skipped` with a reason), or returns an exit
// status after printing why.
int RunLogin(const Options& o, RunResult* result);
int RunChat(const Options& o, bool group, RunResult* result);
// tenant-flood: the probe pair of tenant B alone (`baseline`), then under tenant A's flood.
int RunTenantFlood(const Options& o, RunResult* baseline, RunResult* flood);
int RunSync(const Options& o, RunResult* result, std::string* skipped);
int RunIdle(const Options& o, RunResult* result);

}  // namespace imbench

#endif  // IM_BENCH_SCENARIO_H_
