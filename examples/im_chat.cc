// A small command-line chat client on im::Client.
//
//   im_chat --url tcp://127.0.0.1:7001 --token "$(imd token --user alice)"
//
// Then type:  /to bob          choose the peer
//             hello there      send a line to the peer
//             /sync            fetch everything after the last seq seen
//             /quit
#include <atomic>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <mutex>
#include <string>

#include "im/client.h"

namespace {
std::mutex g_print;
void Print(const std::string& s) {
  std::lock_guard<std::mutex> lock(g_print);
  std::printf("%s\n", s.c_str());
  std::fflush(stdout);
}
std::string Describe(const im::ReceivedMessage& m) {
  std::string where = m.message.group.empty() ? m.message.from + " -> " + m.message.to
                                              : m.message.from + " @ " + m.message.group;
  return "[" + std::to_string(m.seq) + "] " + where + ": " + m.message.body;
}
}  // namespace

int main(int argc, char** argv) {
  im::ClientOptions options;
  std::string token, device = "cli", peer;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--url")) options.url = argv[i + 1];
    else if (!std::strcmp(argv[i], "--token")) token = argv[i + 1];
    else if (!std::strcmp(argv[i], "--device")) device = argv[i + 1];
    else if (!std::strcmp(argv[i], "--to")) peer = argv[i + 1];
  }
  if (token.empty()) {
    std::fprintf(stderr, "usage: im_chat [--url tcp://127.0.0.1:7001] --token T [--to PEER] "
                         "[--device D]\n");
    return 2;
  }
  std::atomic<uint64_t> last_seq{0};
  im::Client client(options);
  client.OnMessage([&](const im::ReceivedMessage& m) {
    if (m.seq > last_seq) last_seq = m.seq;
    Print(Describe(m));
  });
  client.OnKicked([](const std::string& reason) { Print("* kicked: " + reason); });
  client.OnClosed([](int code, const std::string& reason) {
    Print("* closed: " + std::to_string(code) + " " + reason);
  });
  if (im::Status s = client.Connect(); !s.ok()) {
    std::fprintf(stderr, "connect: %s\n", s.ToString().c_str());
    return 1;
  }
  auto login = client.Login(token, device);
  if (!login.ok()) {
    std::fprintf(stderr, "login: %s\n", login.status().ToString().c_str());
    return 1;
  }
  Print("* logged in as " + login->user + " (" + login->tenant + "), " +
        std::to_string(login->last_seq - login->acked_seq) + " unacked message(s); /sync to read");
  last_seq = login->acked_seq;
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line == "/quit") break;
    if (line.rfind("/to ", 0) == 0) {
      peer = line.substr(4);
      Print("* talking to " + peer);
    } else if (line == "/sync") {
      for (bool more = true; more;) {
        auto page = client.Sync(last_seq, 100);
        if (!page.ok()) {
          Print("* sync: " + page.status().ToString());
          break;
        }
        for (const auto& m : page->messages) {
          Print(Describe(m));
          last_seq = m.seq;
        }
        if (page->gap) Print("* some older messages expired");
        more = page->more;
      }
      if (last_seq > 0) (void)client.Ack(last_seq);
    } else if (!line.empty()) {
      if (peer.empty()) {
        Print("* choose a peer first: /to USER");
        continue;
      }
      auto ack = client.SendText(peer, line);
      if (ack.ok()) {
        Print("* sent to " + peer + " (your seq " + std::to_string(ack->seq) + ")");
      } else {
        Print("* not sent: " + ack.status().ToString());
      }
    }
  }
  (void)client.Logout();
  return 0;
}
