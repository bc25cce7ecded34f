#include <doctest/doctest.h>

#include <sodium.h>

#include <random>
#include <string>

#include "auth/base64url.h"
#include "im/auth.h"

namespace im {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

class FixedClock final : public Clock {
 public:
  TimestampMs NowMs() const override { return 1'700'000'000'000; }
};

TEST_CASE("base64url: every byte outside the alphabet is refused, wherever it stands") {
  const std::string alphabet(kAlphabet);
  std::string out = "untouched";
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    if (alphabet.find(c) != std::string::npos) continue;
    for (const std::string& text : {std::string(1, c) + "bcd", "ab" + std::string(1, c) + "d",
                                    "abc" + std::string(1, c)}) {
      INFO("byte " << b);
      CHECK_FALSE(internal::Base64UrlDecode(text, &out));
    }
  }
  CHECK(out == "untouched");
  REQUIRE(internal::Base64UrlDecode("abcd", &out));
  CHECK(internal::Base64UrlEncode(out) == "abcd");
}

// The table decoder answers exactly as libsodium's strict decoder (what it replaced) does, on
// the alphabet only: every length from 0 to 12 with random characters (non-zero trailing bits
// included), and round trips of random bytes.
TEST_CASE("base64url: the decoder agrees with libsodium's strict decoder on every input shape") {
  REQUIRE(sodium_init() >= 0);
  auto sodium = [](const std::string& text, std::string* out) {
    std::string bin(text.size() / 4 * 3 + 3, '\0');
    size_t len = 0;
    if (sodium_base642bin(reinterpret_cast<unsigned char*>(bin.data()), bin.size(), text.data(),
                          text.size(), nullptr, &len, nullptr,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
      return false;
    }
    bin.resize(len);
    *out = bin;
    return true;
  };
  std::mt19937 rng(7);
  size_t accepted = 0, refused = 0;
  for (size_t len = 0; len <= 12; ++len) {
    for (int round = 0; round < 400; ++round) {
      std::string text;
      for (size_t i = 0; i < len; ++i) text += kAlphabet[rng() % 64];
      std::string ours = "untouched", theirs;
      const bool ok = internal::Base64UrlDecode(text, &ours);
      INFO("text '" << text << "'");
      REQUIRE(ok == sodium(text, &theirs));
      if (ok) {
        CHECK(ours == theirs);
        ++accepted;
      } else {
        CHECK(ours == "untouched");
        ++refused;
      }
    }
  }
  CHECK(accepted > 0);
  CHECK(refused > 0);
  for (size_t len = 0; len < 200; ++len) {
    std::string bin;
    for (size_t i = 0; i < len; ++i) bin += static_cast<char>(rng() & 0xFF);
    std::string back;
    REQUIRE(internal::Base64UrlDecode(internal::Base64UrlEncode(bin), &back));
    CHECK(back == bin);
  }
}

TEST_CASE("base64url: a token respelled with a non-ASCII byte does not verify") {
  // libsodium 1.0.18 reads every byte from 0x80 up as '_', which would give each token with a
  // '_' many spellings that verify.
  FixedClock clock;
  auto keys = NewStaticKeyStore({{"default", std::string(32, 'k')}});
  auto verifier = NewHs256Verifier(keys, {30, &clock});
  std::string token;
  for (int i = 0; token.find('_') == std::string::npos; ++i) {
    REQUIRE(i < 1000);
    Result<std::string> t =
        SignHs256Token(*keys, {"default", "u" + std::to_string(i)}, 3600, clock.NowMs());
    REQUIRE(t.ok());
    token = *t;
  }
  REQUIRE(verifier->Verify(token).ok());
  for (int b = 0x80; b < 0x100; ++b) {
    std::string respelled = token;
    respelled[token.find('_')] = static_cast<char>(b);
    INFO("byte " << b);
    CHECK_FALSE(verifier->Verify(respelled).ok());
  }
}

}  // namespace
}  // namespace im
