// A host that moderates with a before-send hook (Server::SetBeforeSend): a message containing a
// blocked word is refused with 403 "blocked" (nothing is stored; the sender gets the error as
// is), and "/shout text" becomes a message of type "shout" in capitals. Memory backends.
//   moderation_hook [TCP_LISTEN [HTTP_LISTEN]]   (default 127.0.0.1:7001 and 127.0.0.1:7000)
#include <cctype>
#include <cstdio>
#include <string>

#include "example_host.h"

namespace {

const char* const kBlockedWords[] = {"spam", "scam"};

im::Status Moderate(im::Message& m) {
  for (const char* word : kBlockedWords) {
    if (m.body.find(word) != std::string::npos) {
      std::printf("moderation: refused %s -> %s (%s)\n", m.from.c_str(), m.to.c_str(), word);
      std::fflush(stdout);
      return im::Status::Error(im::Code::kForbidden, "blocked",
                               std::string("messages with \"") + word + "\" are not delivered");
    }
  }
  if (m.body.rfind("/shout ", 0) == 0) {
    m.body = m.body.substr(7);
    for (char& c : m.body) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    m.type = "shout";  // the hook may change content and type, never the receivers
  }
  return im::Status::OK();
}

}  // namespace

int main(int argc, char** argv) {
  auto keys = im::NewStaticKeyStore({{"default", "replace-with-32-random-bytes-key!"}});
  im::ServerOptions options;
  if (argc > 1) options.tcp_listen = argv[1];
  if (argc > 2) options.http_listen = argv[2];
  sigset_t stop = example::BlockStopSignals();
  im::Server server(options, example::MemoryDeps(keys));
  server.SetBeforeSend(Moderate);  // hooks are set before Start
  if (im::Status s = server.Start(); !s.ok()) {
    std::fprintf(stderr, "start: %s\n", s.ToString().c_str());
    return 1;
  }
  example::PrintTokensAndPorts(*keys, server);
  example::WaitForStop(stop);
  server.Stop();
  return 0;
}
