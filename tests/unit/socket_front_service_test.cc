// SocketFront's command table without a socket: a fake connection, the transport's context,
// and the services of ServiceWorld. The replies keep docs/protocol.md's codes and names.
#include <doctest/doctest.h>

#include <asio/thread_pool.hpp>

#include "core/socket_front.h"
#include "support/wait_until.h"
#include "unit/service_world.h"

namespace im {
namespace {

using test::FakeConnection;
using test::ServiceWorld;

struct FrontWorld {
  FrontWorld()
      : front(internal::SocketFront::Deps{&world.options, SystemClock(), &workers,
                                          world.sessions.get(), world.chat.get(),
                                          world.groups.get(), world.events(), world.metrics(),
                                          &world.tenants, world.limits()}) {}
  ~FrontWorld() { workers.join(); }

  // Sends `frame` as the transport would, and waits for the connection's log to grow.
  std::string Exchange(const std::string& frame) {
    const size_t before = conn->log().size();
    front.OnFrame(conn, context, frame);
    REQUIRE(test::WaitUntil([&] { return conn->log().size() > before; }, 10000));
    return conn->log()[before];
  }

  // Before the world: the committer may hold a send's callback, and with it a connection's
  // state (and its turns), until the world stops it; the pool must outlive both.
  asio::thread_pool workers{2};
  ServiceWorld world;
  internal::SocketFront front;
  std::shared_ptr<FakeConnection> conn = std::make_shared<FakeConnection>(1);
  internal::ConnectionContext context = front.OnOpen(conn);
};

TEST_CASE("SocketFront: the command table - login first, then the commands - unknown is 501") {
  FrontWorld f;
  REQUIRE(f.context != nullptr);
  CHECK(f.front.ConnectionCount() == 1);
  // ping needs no login.
  CHECK(f.Exchange(R"({"id":1,"cmd":"ping"})").find(R"("code":0)") != std::string::npos);
  // An unknown command before login is refused like any command that needs a login.
  std::string r = f.Exchange(R"({"id":2,"cmd":"no.such"})");
  CHECK(r.find(R"("code":401)") != std::string::npos);
  CHECK(r.find(R"("error":"unauthenticated")") != std::string::npos);
  REQUIRE(test::WaitUntil([&] { return f.conn->closed(); }, 10000));
  CHECK(f.conn->log().back() == "close 4002 not authenticated");
  f.front.OnClose(f.conn, f.context);
  CHECK(f.front.ConnectionCount() == 0);

  // A second connection logs in; now an unknown command is 501 and the connection stays.
  f.conn = std::make_shared<FakeConnection>(2);
  f.context = f.front.OnOpen(f.conn);
  r = f.Exchange(R"({"id":3,"cmd":"login","body":{"token":")" + f.world.Token("alice") +
                 R"(","device":"phone"}})");
  CHECK(r.find(R"("code":0)") != std::string::npos);
  CHECK(r.find(R"("user":"alice")") != std::string::npos);
  r = f.Exchange(R"({"id":4,"cmd":"no.such"})");
  CHECK(r.find(R"("code":501)") != std::string::npos);
  CHECK(r.find(R"("error":"unknown_command")") != std::string::npos);
  CHECK_FALSE(f.conn->closed());
  r = f.Exchange(R"({"id":5,"cmd":"chat.send","body":{"to":"bob","cid":"c1","body":"hi"}})");
  CHECK(r.find(R"("code":0)") != std::string::npos);
  CHECK(r.find(R"("seq":1)") != std::string::npos);
  r = f.Exchange(R"({"id":6,"cmd":"group.create","body":{"name":"t"}})");
  CHECK(r.find(R"("code":400)") != std::string::npos);  // members is required on the socket
  f.front.OnClose(f.conn, f.context);
  // The close ends the session in the connection's turn.
  CHECK(test::WaitUntil([&] { return f.world.router->LocalCount() == 0; }, 10000));
}


}  // namespace
}  // namespace im
