// A Connection that records what is done to it (frames sent, the close), for tests of the
// code that writes to connections without a socket (the router, the services).
#ifndef IM_TESTS_SUPPORT_FAKE_CONNECTION_H_
#define IM_TESTS_SUPPORT_FAKE_CONNECTION_H_

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "im/connection.h"

namespace im::test {

// Records what the router does to a connection. Every call is recorded in one log so tests can
// check the order of sends and closes.
//
// Thread-safety: every method is safe from any thread.
class FakeConnection final : public Connection {
 public:
  explicit FakeConnection(uint64_t id) : id_(id) {}

  uint64_t id() const override { return id_; }
  TransportKind transport() const override { return TransportKind::kInternal; }
  const std::string& remote_address() const override { return address_; }

  SendResult Send(Frame frame) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return SendResult::kDropped;
    log_.push_back("send " + frame.ToString());
    return SendResult::kOk;
  }

  void Close(int code, std::string_view reason) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    closed_ = true;
    log_.push_back("close " + std::to_string(code) + " " + std::string(reason));
  }

  size_t queued_bytes() const override { return 0; }

  bool closed() const {
    std::lock_guard<std::mutex> lock(mu_);
    return closed_;
  }

  std::vector<std::string> log() const {
    std::lock_guard<std::mutex> lock(mu_);
    return log_;
  }

 private:
  const uint64_t id_;
  const std::string address_ = "127.0.0.1:1";
  mutable std::mutex mu_;
  bool closed_ = false;
  std::vector<std::string> log_;
};

}  // namespace im::test

#endif  // IM_TESTS_SUPPORT_FAKE_CONNECTION_H_
