// JWT (HS256) verification and signing throughput on one thread. Prints a table; exits 0.
//   jwt_bench [--seconds N]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "im/auth.h"

namespace {

template <typename F>
void Run(const char* name, double seconds, F&& op) {
  using Clock = std::chrono::steady_clock;
  auto start = Clock::now();
  auto deadline = start + std::chrono::duration<double>(seconds);
  long n = 0;
  int failures = 0;
  while (Clock::now() < deadline) {
    for (int i = 0; i < 256; ++i, ++n) failures += op() ? 0 : 1;
  }
  double s = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("%-28s %12.0f %10.2f %8d\n", name, n / s, 1e6 * s / n, failures);
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 1.0;
  for (int i = 1; i + 1 < argc; ++i) {
    if (!std::strcmp(argv[i], "--seconds")) seconds = std::atof(argv[i + 1]);
  }
  auto keys = im::NewStaticKeyStore({{"default", std::string(32, 'k')}});
  auto verifier = im::NewHs256Verifier(keys);
  const im::TimestampMs now = im::SystemClock()->NowMs();
  std::string token = *im::SignHs256Token(*keys, {"default", "alice"}, 3600, now);
  std::string forged = token;
  forged[forged.size() - 2] = forged[forged.size() - 2] == 'A' ? 'B' : 'A';

  std::printf("jwt_bench: HS256, 32-byte key, one thread, %.1f s per case\n", seconds);
  std::printf("%-28s %12s %10s %8s\n", "case", "ops/s", "us/op", "failed");
  Run("verify valid", seconds, [&] { return verifier->Verify(token).ok(); });
  Run("verify bad signature", seconds, [&] { return !verifier->Verify(forged).ok(); });
  Run("sign", seconds, [&] {
    return im::SignHs256Token(*keys, {"default", "alice"}, 3600, now).ok();
  });
  return 0;
}
