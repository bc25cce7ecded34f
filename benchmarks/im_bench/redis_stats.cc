#include "redis_stats.h"

#include <asio.hpp>

#include <cstdlib>
#include <sstream>

#include "stats.h"

namespace imbench {

RedisCounters ReadRedisCounters(const std::string& host, int port) {
  RedisCounters out;
  try {
    asio::io_context io;
    asio::ip::tcp::socket s(io);
    s.connect(asio::ip::tcp::endpoint(asio::ip::make_address(host), static_cast<uint16_t>(port)));
    const std::string request = "*3\r\n$4\r\nINFO\r\n$5\r\nstats\r\n$12\r\ncommandstats\r\n";
    asio::write(s, asio::buffer(request));
    asio::streambuf buf;
    asio::read_until(s, buf, "\r\n");
    std::istream in(&buf);
    std::string header;
    std::getline(in, header);  // "$<length>\r"
    if (header.empty() || header[0] != '$') {
      out.error = "unexpected reply to INFO: " + header;
      return out;
    }
    const size_t length = std::strtoull(header.c_str() + 1, nullptr, 10);
    if (buf.size() < length + 2) asio::read(s, buf, asio::transfer_exactly(length + 2 - buf.size()));
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      const size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      const std::string name = line.substr(0, colon);
      const std::string value = line.substr(colon + 1);
      if (name == "total_commands_processed") {
        out.commands = std::strtoull(value.c_str(), nullptr, 10);
      } else if (name == "total_reads_processed") {
        out.reads = std::strtoull(value.c_str(), nullptr, 10);
      } else if (name.rfind("cmdstat_", 0) == 0 && value.rfind("calls=", 0) == 0) {
        out.calls[name.substr(8)] = std::strtoull(value.c_str() + 6, nullptr, 10);
      }
    }
    out.ok = true;
  } catch (const std::exception& e) {
    out.error = e.what();
  }
  return out;
}

void AddRedisFigures(const RedisCounters& before, const RedisCounters& after, uint64_t messages,
                     RunResult* r) {
  if (!before.ok || !after.ok || messages == 0) {
    r->note += (r->note.empty() ? "" : "; ") + std::string("no Redis figures: ") +
               (!before.ok ? before.error : !after.ok ? after.error : "no message acked");
    return;
  }
  const double n = static_cast<double>(messages);
  // The first INFO is counted by the second (one command, one read).
  const auto delta = [](uint64_t a, uint64_t b, uint64_t own) {
    return a >= b + own ? a - b - own : 0;
  };
  r->extra.emplace_back("redis_messages", n);
  r->extra.emplace_back("redis_commands_per_msg", delta(after.commands, before.commands, 1) / n);
  r->extra.emplace_back("redis_round_trips_per_msg", delta(after.reads, before.reads, 1) / n);
  for (const auto& [name, calls] : after.calls) {
    auto it = before.calls.find(name);
    const uint64_t was = it == before.calls.end() ? 0 : it->second;
    const uint64_t d = delta(calls, was, name == "info" ? 1 : 0);
    if (d > 0) r->extra.emplace_back("redis_" + name + "_per_msg", d / n);
  }
}

}  // namespace imbench
