#include <doctest/doctest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "auth/base64url.h"
#include "auth/jwt_internal.h"
#include "im/auth.h"

namespace im {
namespace {

namespace fs = std::filesystem;

constexpr TimestampMs kNowMs = 1'700'000'000'123;  // 2023-11-14, deliberately not whole seconds
constexpr int64_t kNowS = kNowMs / 1000;
constexpr int64_t kLeewayS = 30;
constexpr char kHeader[] = R"({"alg":"HS256","typ":"JWT"})";
const std::string kKeyA(32, 'a');
const std::string kKeyB(32, 'b');
const std::string kKeyDefault(32, 'd');

class FixedClock final : public Clock {
 public:
  explicit FixedClock(TimestampMs now_ms) : now_ms_(now_ms) {}
  TimestampMs NowMs() const override { return now_ms_.load(); }
  void Set(TimestampMs now_ms) { now_ms_.store(now_ms); }

 private:
  std::atomic<TimestampMs> now_ms_;
};

// "ok", or "<code> <error>", so that a CHECK shows what came back.
std::string Outcome(const Result<TokenClaims>& r) {
  if (r.ok()) return "ok";
  return std::to_string(static_cast<int>(r.status().code())) + " " +
         std::string(r.status().error());
}

constexpr char kInvalid[] = "401 invalid_token";
constexpr char kExpired[] = "401 token_expired";

// Claims of tenant "a" user "alice" expiring in an hour, with `extra` members appended.
std::string Claims(const std::string& extra = "") {
  return R"({"sub":"alice","ten":"a","exp":)" + std::to_string(kNowS + 3600) + extra + "}";
}

struct Fixture {
  FixedClock clock{kNowMs};
  std::shared_ptr<KeyStore> keys =
      NewStaticKeyStore({{"a", kKeyA}, {"b", kKeyB}, {"default", kKeyDefault}});
  std::unique_ptr<TokenVerifier> verifier = NewHs256Verifier(keys, {kLeewayS, &clock});

  Result<TokenClaims> Verify(std::string_view token) { return verifier->Verify(token); }
  // Verifies hand-written JSON signed with `key`.
  Result<TokenClaims> VerifyJson(std::string_view header, std::string_view claims,
                                 const std::string& key = kKeyA) {
    return verifier->Verify(internal::SignJwt(header, claims, key));
  }
};

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "im_jwt_test_XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST_CASE("jwt: a signed token verifies and carries its claims") {
  Fixture f;
  Result<std::string> token = SignHs256Token(*f.keys, {"a", "alice"}, 3600, kNowMs);
  REQUIRE(token.ok());
  std::string header;
  REQUIRE(internal::Base64UrlDecode(token->substr(0, token->find('.')), &header));
  CHECK(header == kHeader);

  Result<TokenClaims> claims = f.Verify(*token);
  REQUIRE(claims.ok());
  CHECK(claims->user == UserKey{"a", "alice"});
  CHECK(claims->expires_ms == (kNowS + 3600) * 1000);
  CHECK(claims->issued_ms == kNowS * 1000);
}

TEST_CASE("jwt: a token without ten belongs to the default tenant") {
  Fixture f;
  const std::string claims = R"({"sub":"bob","exp":)" + std::to_string(kNowS + 60) + "}";
  Result<TokenClaims> r = f.VerifyJson(R"({"alg":"HS256"})", claims, kKeyDefault);
  REQUIRE(r.ok());
  CHECK(r->user == UserKey{"default", "bob"});
  CHECK(r->issued_ms == 0);
  // The default tenant's key, not another one, must have signed it.
  CHECK(Outcome(f.VerifyJson(kHeader, claims, kKeyA)) == kInvalid);
}

TEST_CASE("jwt: exp and nbf honour the leeway") {
  Fixture f;
  Result<std::string> token = SignHs256Token(*f.keys, {"a", "alice"}, 60, kNowMs);
  REQUIRE(token.ok());
  const TimestampMs exp_ms = (kNowS + 60) * 1000;
  f.clock.Set(exp_ms + kLeewayS * 1000);
  CHECK(Outcome(f.Verify(*token)) == "ok");
  f.clock.Set(exp_ms + kLeewayS * 1000 + 1);
  CHECK(Outcome(f.Verify(*token)) == kExpired);
  f.clock.Set(exp_ms + 86400 * 1000);
  CHECK(Outcome(f.Verify(*token)) == kExpired);

  f.clock.Set(kNowMs);
  CHECK(Outcome(f.VerifyJson(kHeader, Claims(R"(,"nbf":)" + std::to_string(kNowS + 60)))) ==
        kInvalid);
  CHECK(Outcome(f.VerifyJson(kHeader, Claims(R"(,"nbf":)" + std::to_string(kNowS + 20)))) == "ok");
  CHECK(Outcome(f.VerifyJson(kHeader, Claims(R"(,"iat":)" + std::to_string(kNowS)))) == "ok");
}

TEST_CASE("jwt: a wrong signature is refused") {
  Fixture f;
  Result<std::string> token = SignHs256Token(*f.keys, {"a", "alice"}, 3600, kNowMs);
  REQUIRE(token.ok());
  std::string flipped = *token;
  char& c = flipped[flipped.rfind('.') + 1];
  c = c == 'A' ? 'B' : 'A';
  CHECK(Outcome(f.Verify(flipped)) == kInvalid);
  CHECK(Outcome(f.VerifyJson(kHeader, Claims(), std::string(32, 'x'))) == kInvalid);
  // A signature of the right length but a different text: the claims were edited.
  const std::string edited = internal::SignJwt(kHeader, Claims(R"(,"x":1)"), kKeyA);
  const std::string forged = token->substr(0, token->rfind('.')) + edited.substr(edited.rfind('.'));
  CHECK(Outcome(f.Verify(forged)) == kInvalid);
}

TEST_CASE("jwt: only alg HS256 is accepted") {
  Fixture f;
  const std::string claims_b64 = internal::Base64UrlEncode(Claims());
  const std::string none = internal::Base64UrlEncode(R"({"alg":"none","typ":"JWT"})");
  CHECK(Outcome(f.Verify(none + "." + claims_b64 + ".")) == kInvalid);
  CHECK(Outcome(f.VerifyJson(R"({"alg":"none"})", Claims())) == kInvalid);
  CHECK(Outcome(f.VerifyJson(R"({"alg":"HS512","typ":"JWT"})", Claims())) == kInvalid);
  CHECK(Outcome(f.VerifyJson(R"({"alg":"RS256","typ":"JWT"})", Claims())) == kInvalid);
  CHECK(Outcome(f.VerifyJson(R"({"typ":"JWT"})", Claims())) == kInvalid);
  CHECK(Outcome(f.VerifyJson(R"({"alg":"hs256"})", Claims())) == kInvalid);
  CHECK(Outcome(f.VerifyJson(R"({"alg":"HS256\u0000"})", Claims())) == kInvalid);
  CHECK(Outcome(f.VerifyJson(R"({"alg":["HS256"]})", Claims())) == kInvalid);
  CHECK(Outcome(f.VerifyJson(R"({"alg":"HS256","alg":"none"})", Claims())) == kInvalid);
  CHECK(Outcome(f.VerifyJson(R"({"alg":"HS256","typ":"JWS"})", Claims())) == kInvalid);
  CHECK(Outcome(f.VerifyJson(R"({"alg":"HS256","crit":["b64"]})", Claims())) == kInvalid);
  CHECK(Outcome(f.VerifyJson(R"(["HS256"])", Claims())) == kInvalid);
}

TEST_CASE("jwt: the key of the claimed tenant must have signed the token") {
  Fixture f;
  Result<std::string> by_b = SignHs256Token(*f.keys, {"b", "alice"}, 3600, kNowMs);
  REQUIRE(by_b.ok());
  CHECK(Outcome(f.Verify(*by_b)) == "ok");
  // Signed with tenant b's key, claiming tenant a.
  CHECK(Outcome(f.VerifyJson(kHeader, Claims(), kKeyB)) == kInvalid);

  const std::string unknown =
      R"({"sub":"alice","ten":"zzz","exp":)" + std::to_string(kNowS + 60) + "}";
  Result<TokenClaims> r = f.VerifyJson(kHeader, unknown);
  CHECK(Outcome(r) == kInvalid);
  // Same answer as a bad signature, so tenants cannot be enumerated.
  CHECK(r.status().message() == f.VerifyJson(kHeader, Claims(), kKeyB).status().message());
  CHECK(Outcome(f.VerifyJson(kHeader, R"({"sub":"alice","ten":"","exp":1})")) == kInvalid);
  CHECK(Outcome(f.VerifyJson(kHeader, R"({"sub":"alice","ten":7,"exp":1})")) == kInvalid);
}

TEST_CASE("jwt: malformed tokens are refused without echoing them") {
  Fixture f;
  Result<std::string> good = SignHs256Token(*f.keys, {"a", "alice"}, 3600, kNowMs);
  REQUIRE(good.ok());
  const std::string& t = *good;
  const size_t dot2 = t.rfind('.');
  const std::vector<std::string> bad = {
      "",
      "garbage",
      "a.b",
      "..",
      "...",
      t.substr(0, t.size() - 1),  // truncated signature
      t.substr(0, dot2 + 1),      // no signature
      t.substr(0, dot2),          // two segments
      t.substr(0, t.size() / 2),  // cut in the middle
      t + ".",                    // extra dots
      t + ".x",
      "." + t,
      t.substr(0, dot2) + "." + t.substr(dot2),
      t + "=",                                         // padding
      t.substr(0, dot2) + ".+/" + t.substr(dot2 + 3),  // standard alphabet
      "%%%%.%%%%.%%%%",
      "eyJhbGciOiJIUzI1NiJ9.\xff\xfe.c2ln",
      t + std::string(internal::kMaxTokenBytes, 'A'),
  };
  for (const std::string& token : bad) {
    Result<TokenClaims> r = f.Verify(token);
    CHECK(Outcome(r) == kInvalid);
    if (token.size() > 3) CHECK(r.status().message().find(token) == std::string_view::npos);
  }
  CHECK(Outcome(f.Verify(t)) == "ok");
}

TEST_CASE("jwt: claims must be an object with valid sub and integer exp") {
  Fixture f;
  const std::string exp = std::to_string(kNowS + 60);
  for (const std::string& claims : std::vector<std::string>{
           "[]",
           "\"x\"",
           "1",
           "null",
           "{",
           "{}{}",
           "{\"sub\":\"alice\"} x",
           R"({"sub":"al\u0000ice","ten":"a","exp":)" + exp + "}",  // NUL: a control character
           R"({"sub":"alice","ten":"a","exp":)" + exp + "}" + std::string("\0junk", 5),
           R"({"sub":"alice","ten":"a"})",               // missing exp
           R"({"ten":"a","exp":)" + exp + "}",           // missing sub
           R"({"sub":"","ten":"a","exp":)" + exp + "}",  // empty sub
           R"({"sub":")" + std::string(65, 'u') + R"(","ten":"a","exp":)" + exp + "}",
           R"({"sub":42,"ten":"a","exp":)" + exp + "}",
           R"({"sub":"alice","sub":"bob","ten":"a","exp":)" + exp + "}",
           R"({"sub":"alice","ten":"a","exp":")" + exp + "\"}",  // exp as a string
           R"({"sub":"alice","ten":"a","exp":)" + exp + ".5}",   // fractional exp
           R"({"sub":"alice","ten":"a","exp":1e30})",
           R"({"sub":"alice","ten":"a","exp":9223372036854775807})",
           R"({"sub":"alice","ten":"a","exp":-1})",
           R"({"sub":"alice","ten":"a","exp":253402300800})",  // past the end of 9999
           R"({"sub":"alice","ten":"a","exp":)" + exp + R"(,"exp":)" + exp + "}",
           R"({"sub":"alice","ten":"a","exp":null})",
           R"({"sub":"alice","ten":"a","exp":)" + exp + R"(,"iat":"now"})",
           R"({"sub":"alice","ten":"a","exp":)" + exp + R"(,"nbf":true})",
       }) {
    CAPTURE(claims);
    CHECK(Outcome(f.VerifyJson(kHeader, claims)) == kInvalid);
  }
  CHECK(f.VerifyJson(kHeader, R"({"sub":"alice","ten":"a","exp":253402300799})").ok());
  const std::string longest = std::string(64, 'u');
  Result<TokenClaims> r =
      f.VerifyJson(kHeader, R"({"sub":")" + longest + R"(","ten":"a","exp":)" + exp + "}");
  REQUIRE(r.ok());
  CHECK(r->user.user == longest);
}

TEST_CASE("jwt: a deeply nested claim cannot exhaust the stack") {
  Fixture f;
  const std::string deep = R"({"sub":"alice","ten":"a","exp":1,"x":)" + std::string(1400, '[') +
                           std::string(1400, ']') + "}";
  CHECK(Outcome(f.VerifyJson(kHeader, deep, kKeyB)) == kInvalid);
}

TEST_CASE("jwt: SignHs256Token checks its input") {
  Fixture f;
  CHECK(SignHs256Token(*f.keys, {"a", ""}, 60, kNowMs).status().code() == Code::kBadRequest);
  CHECK(SignHs256Token(*f.keys, {"", "alice"}, 60, kNowMs).status().code() == Code::kBadRequest);
  CHECK(SignHs256Token(*f.keys, {"a", "alice"}, 0, kNowMs).status().code() == Code::kBadRequest);
  CHECK(SignHs256Token(*f.keys, {"a", "alice"}, INT64_MAX, kNowMs).status().code() ==
        Code::kBadRequest);
  Result<std::string> unknown = SignHs256Token(*f.keys, {"zzz", "alice"}, 60, kNowMs);
  CHECK(unknown.status().error() == "unknown_tenant");
  Result<std::string> odd = SignHs256Token(*f.keys, {"a", "al\"i\\ce \xe4\xb8\xad"}, 60, kNowMs);
  REQUIRE(odd.ok());
  Result<TokenClaims> r = f.Verify(*odd);
  REQUIRE(r.ok());
  CHECK(r->user.user == "al\"i\\ce \xe4\xb8\xad");
}

TEST_CASE("key store: a directory store creates a key once and shares it") {
  TempDir tmp;
  const fs::path dir = tmp.path / "keys" / "nested";
  Result<std::shared_ptr<KeyStore>> creator = OpenDirKeyStore(dir.string(), true);
  REQUIRE(creator.ok());
  Result<std::string> key = (*creator)->KeyFor("a");
  REQUIRE(key.ok());
  CHECK(key->size() == 32);
  const std::string text = ReadFile(dir / "a.key");
  CHECK(text.size() == 65);
  CHECK(text.back() == '\n');
  CHECK(text.find_first_not_of("0123456789abcdef") == 64);
  struct stat st;
  REQUIRE(stat((dir / "a.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(*(*creator)->KeyFor("a") == *key);

  Result<std::shared_ptr<KeyStore>> reader = OpenDirKeyStore(dir.string(), false);
  REQUIRE(reader.ok());
  CHECK(*(*reader)->KeyFor("a") == *key);
  CHECK((*reader)->KeyFor("b").status().error() == "unknown_tenant");
  CHECK(!fs::exists(dir / "b.key"));

  FixedClock clock(kNowMs);
  Result<std::string> token = SignHs256Token(**creator, {"a", "alice"}, 60, kNowMs);
  REQUIRE(token.ok());
  Result<TokenClaims> r = NewHs256Verifier(*reader, {kLeewayS, &clock})->Verify(*token);
  REQUIRE(r.ok());
  CHECK(r->user == UserKey{"a", "alice"});

  for (const char* tenant : {"../x", "a/b", ".hidden", "..", ""}) {
    CAPTURE(tenant);
    CHECK((*creator)->KeyFor(tenant).status().error() == "unknown_tenant");
  }
  CHECK(!fs::exists(tmp.path / "keys" / "x.key"));
}

TEST_CASE("key store: verifying never creates keys - even with create_missing") {
  TempDir tmp;
  Result<std::shared_ptr<KeyStore>> keys = OpenDirKeyStore(tmp.path.string(), true);
  REQUIRE(keys.ok());
  FixedClock clock(kNowMs);
  auto verifier = NewHs256Verifier(*keys, {kLeewayS, &clock});
  const std::string claims = R"({"sub":"alice","ten":"t1","exp":)" + std::to_string(kNowS) + "}";
  CHECK(Outcome(verifier->Verify(internal::SignJwt(kHeader, claims, kKeyA))) == kInvalid);
  CHECK(fs::is_empty(tmp.path));
  // A key created afterwards (by `imd token`, say) is found: misses are not cached.
  Result<std::string> token = SignHs256Token(**keys, {"t1", "alice"}, 60, kNowMs);
  REQUIRE(token.ok());
  CHECK(Outcome(verifier->Verify(*token)) == "ok");
}

TEST_CASE("key store: racing creators agree on one key") {
  TempDir tmp;
  constexpr int kThreads = 8;
  std::vector<std::string> keys(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      // One store per thread, as separate processes would have.
      Result<std::shared_ptr<KeyStore>> store = OpenDirKeyStore(tmp.path.string(), true);
      if (!store.ok()) return;
      Result<std::string> key = (*store)->KeyFor("race");
      if (key.ok()) keys[i] = *key;
    });
  }
  for (std::thread& t : threads) t.join();
  for (const std::string& key : keys) CHECK((key.size() == 32 && key == keys[0]));
  CHECK(std::distance(fs::directory_iterator(tmp.path), fs::directory_iterator()) == 1);
}

TEST_CASE("key store: bad key files and a static store's unknown tenants") {
  TempDir tmp;
  std::ofstream(tmp.path / "short.key") << "abcd\n";
  std::ofstream(tmp.path / "hand.key") << std::string(64, 'F') << "\r\n";
  Result<std::shared_ptr<KeyStore>> keys = OpenDirKeyStore(tmp.path.string(), true);
  REQUIRE(keys.ok());
  CHECK((*keys)->KeyFor("short").status().code() == Code::kInternal);
  CHECK(*(*keys)->KeyFor("hand") == std::string(32, '\xff'));
  CHECK(!OpenDirKeyStore((tmp.path / "hand.key").string(), true).ok());

  std::shared_ptr<KeyStore> fixed = NewStaticKeyStore({{"a", kKeyA}});
  CHECK(*fixed->KeyFor("a") == kKeyA);
  CHECK(fixed->KeyFor("b").status().error() == "unknown_tenant");
}

}  // namespace
TEST_CASE("jwt: kid picks one of the tenant's keys - without kid any key of the tenant") {
  FixedClock clock{kNowMs};
  auto keys = NewRotatingKeyStore({{"a", {{"new", kKeyB}, {"old", kKeyA}}}});
  REQUIRE(keys.ok());
  auto verifier = NewHs256Verifier(*keys, {kLeewayS, &clock});
  auto verify = [&](const std::string& header, const std::string& key) {
    return Outcome(verifier->Verify(internal::SignJwt(header, Claims(), key)));
  };
  CHECK(verify(R"({"alg":"HS256","kid":"old"})", kKeyA) == "ok");
  CHECK(verify(R"({"alg":"HS256","kid":"new"})", kKeyB) == "ok");
  CHECK(verify(R"({"alg":"HS256"})", kKeyA) == "ok");
  CHECK(verify(R"({"alg":"HS256"})", kKeyB) == "ok");
  // A kid names its key alone: the other key of the tenant does not verify under it.
  CHECK(verify(R"({"alg":"HS256","kid":"new"})", kKeyA) == kInvalid);
  CHECK(verify(R"({"alg":"HS256","kid":"gone"})", kKeyA) == kInvalid);
  CHECK(verify(R"({"alg":"HS256"})", kKeyDefault) == kInvalid);
  for (const char* bad : {R"({"alg":"HS256","kid":7})", R"({"alg":"HS256","kid":""})",
                          R"({"alg":"HS256","kid":"old","kid":"old"})",
                          R"({"alg":"HS256","kid":null})"}) {
    CHECK_MESSAGE(verify(bad, kKeyA) == kInvalid, bad);
  }
  // The signer names the first key.
  auto token = SignHs256Token(**keys, UserKey{"a", "alice"}, 60, kNowMs);
  REQUIRE(token.ok());
  std::string header;
  REQUIRE(internal::Base64UrlDecode(token->substr(0, token->find('.')), &header));
  CHECK(header == R"({"alg":"HS256","typ":"JWT","kid":"new"})");
  CHECK(Outcome(verifier->Verify(*token)) == "ok");
}

// The verifier keeps each key's HMAC state: a key the store no longer gives stops verifying at
// once, a new one verifies from its first token, and past the bound of kept states (256 keys)
// every key still verifies.
class SwappableKeyStore final : public KeyStore {
 public:
  explicit SwappableKeyStore(std::string key) : key_(std::move(key)) {}
  SwappableKeyStore(const SwappableKeyStore&) = delete;
  SwappableKeyStore& operator=(const SwappableKeyStore&) = delete;
  Result<std::string> KeyFor(std::string_view) override { return Current(); }
  void Set(std::string key) {
    std::lock_guard<std::mutex> lock(mu_);
    key_ = std::move(key);
  }

 private:
  std::string Current() {
    std::lock_guard<std::mutex> lock(mu_);
    return key_;
  }
  std::mutex mu_;
  std::string key_;
};

TEST_CASE("jwt: the verifier follows the key store's keys, past its bound of kept HMAC states") {
  FixedClock clock{kNowMs};
  auto store = std::make_shared<SwappableKeyStore>(kKeyA);
  auto verifier = NewHs256Verifier(store, {kLeewayS, &clock});
  const std::string header = R"({"alg":"HS256"})";
  auto verify = [&](const std::string& key) {
    return Outcome(verifier->Verify(internal::SignJwt(header, Claims(), key)));
  };
  CHECK(verify(kKeyA) == "ok");
  CHECK(verify(kKeyA) == "ok");
  store->Set(kKeyB);
  CHECK(verify(kKeyA) == kInvalid);
  CHECK(verify(kKeyB) == "ok");
  for (int i = 0; i < 600; ++i) {
    const std::string key = "key-" + std::to_string(i) + std::string(32, 'k');
    store->Set(key);
    CHECK(verify(key) == "ok");
    if (i % 97 == 0) CHECK(verify(kKeyB) == kInvalid);
  }
  store->Set(kKeyA);
  CHECK(verify(kKeyA) == "ok");
  CHECK(verify(kKeyB) == kInvalid);
}

TEST_CASE("jwt: a rotating key store refuses lists that break a rule") {
  CHECK_FALSE(NewRotatingKeyStore({{"a", {{"k", ""}}}}).ok());
  CHECK_FALSE(NewRotatingKeyStore({{"a", {{"k", kKeyA}, {"k", kKeyB}}}}).ok());
  CHECK_FALSE(NewRotatingKeyStore({{"a", {{std::string(65, 'k'), kKeyA}}}}).ok());
  std::vector<SigningKey> nine;
  for (int i = 0; i < 9; ++i) nine.push_back({"k" + std::to_string(i), kKeyA});
  CHECK_FALSE(NewRotatingKeyStore({{"a", nine}}).ok());
  auto empty = NewRotatingKeyStore({{"a", {}}});
  REQUIRE(empty.ok());
  CHECK((*empty)->KeyFor("a").status().error() == "unknown_tenant");
}

}  // namespace im
