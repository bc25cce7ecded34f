// The token verifier over a fixed key store and clock. Input either is a token as a client
// would send it, or supplies the header and claims JSON texts that get signed with a known key,
// so that the fuzzer also reaches the claim checks behind the signature. Any refusal is 401;
// base64url decoding is canonical (decode then encode gives the text back).
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>

#include "auth/base64url.h"
#include "auth/jwt_internal.h"
#include "im/auth.h"

namespace {

class FixedClock final : public im::Clock {
 public:
  im::TimestampMs NowMs() const override { return 1'700'000'000'000; }  // 2023-11-14
};

const std::map<std::string, std::string>& Keys() {
  static const auto* keys = new std::map<std::string, std::string>{
      {"default", std::string(32, 'k')}, {"acme", "a shorter key"}};
  return *keys;
}

const im::TokenVerifier& Verifier() {
  static FixedClock clock;
  static const auto* verifier =
      im::NewHs256Verifier(im::NewStaticKeyStore(Keys()), {30, &clock}).release();
  return *verifier;
}

void CheckCanonical(std::string_view text) {
  std::string bin;
  if (im::internal::Base64UrlDecode(text, &bin) && im::internal::Base64UrlEncode(bin) != text) {
    abort();
  }
}

// Verifies and checks the shape of the answer; true when the token was accepted.
bool Verify(std::string_view token) {
  const im::Result<im::TokenClaims> claims = Verifier().Verify(token);
  if (!claims.ok()) {
    const im::Status& s = claims.status();
    if (s.code() != im::Code::kUnauthenticated ||
        (s.error() != "invalid_token" && s.error() != "token_expired")) {
      abort();
    }
    return false;
  }
  if (!im::IsValidId(claims->user.user) || Keys().count(claims->user.tenant) == 0 ||
      claims->expires_ms <= 0) {
    abort();
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  switch (in.ConsumeIntegralInRange<int>(0, 2)) {
    case 0: {  // a token from the wire
      const std::string token = in.ConsumeRemainingBytesAsString();
      for (size_t begin = 0, end; begin <= token.size(); begin = end + 1) {
        end = token.find('.', begin);
        if (end == std::string::npos) end = token.size();
        CheckCanonical(std::string_view(token).substr(begin, end - begin));
      }
      Verify(token);
      break;
    }
    case 1: {  // header and claims signed with the tenant's key: the claim checks decide
      const std::string header = in.ConsumeRandomLengthString(256);
      const std::string claims = in.ConsumeRemainingBytesAsString();
      for (const auto& [tenant, key] : Keys()) {
        Verify(im::internal::SignJwt(header, claims, key));
      }
      break;
    }
    default: {  // the fixed valid header with any claims, under the wrong key too
      const std::string claims = in.ConsumeRemainingBytesAsString();
      const std::string header = R"({"alg":"HS256","typ":"JWT"})";
      Verify(im::internal::SignJwt(header, claims, Keys().at("default")));
      if (Verify(im::internal::SignJwt(header, claims, "not the key"))) abort();
      break;
    }
  }
  return 0;
}
