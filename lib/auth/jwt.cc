// HS256 JWTs (RFC 7519) with keys per tenant (named by the header's `kid` when rotating). The verifier accepts exactly one shape of
// token and refuses everything else with the same `invalid_token`, so that callers never have
// to reason about half-valid tokens.

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sodium.h>

#include <algorithm>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "auth/base64url.h"
#include "auth/jwt_internal.h"
#include "im/auth.h"
#include "protocol/json.h"

namespace im {
namespace internal {

bool InitSodium() {
  static const bool ok = sodium_init() >= 0;
  return ok;
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  crypto_auth_hmacsha256_state state;
  crypto_auth_hmacsha256_init(&state, reinterpret_cast<const unsigned char*>(key.data()),
                              key.size());
  crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(data.data()),
                                data.size());
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_final(&state, mac);
  sodium_memzero(&state, sizeof state);
  return std::string(reinterpret_cast<const char*>(mac), sizeof mac);
}

std::string SignJwt(std::string_view header_json, std::string_view claims_json,
                    std::string_view key) {
  InitSodium();
  std::string token = Base64UrlEncode(header_json);
  token += '.';
  token += Base64UrlEncode(claims_json);
  const std::string mac = HmacSha256(key, token);
  token += '.';
  token += Base64UrlEncode(mac);
  return token;
}

}  // namespace internal

namespace {

using rapidjson::Value;

// One message for an unknown tenant and for a wrong signature: a distinct answer would let
// anyone probe which tenants exist.
constexpr char kBadSignature[] = "signature does not verify";

Status Invalid(const char* reason) { return Status::Unauthenticated("invalid_token", reason); }

std::string_view StringOf(const Value& v) { return {v.GetString(), v.GetStringLength()}; }

// Parses one decoded segment; true only for a single well-formed JSON object (no NUL byte, no
// nesting deeper than kMaxJsonDepth, valid UTF-8).
bool ParseObject(std::string_view json, rapidjson::Document* doc) {
  return internal::ParseJson(json, doc).ok() && doc->IsObject();
}

// Sets `*out` to the member `name` of `obj`, or nullptr when absent. False when the name occurs
// twice: JSON parsers disagree on which duplicate wins, so such a token means different things
// to different readers.
bool FindUnique(const Value& obj, std::string_view name, const Value** out) {
  *out = nullptr;
  for (auto it = obj.MemberBegin(); it != obj.MemberEnd(); ++it) {
    if (StringOf(it->name) != name) continue;
    if (*out != nullptr) return false;
    *out = &it->value;
  }
  return true;
}

// An optional id claim (`sub`, `ten`): false when present but not a valid id.
bool ReadId(const Value& claims, std::string_view name, std::optional<std::string>* out) {
  const Value* v;
  if (!FindUnique(claims, name, &v)) return false;
  if (v == nullptr) return true;
  if (!v->IsString() || !IsValidId(StringOf(*v))) return false;
  *out = std::string(StringOf(*v));
  return true;
}

// An optional NumericDate claim, in whole seconds within [0, kMaxClaimSeconds]: false when
// present but anything else (a string, a fraction, a negative or absurd value).
bool ReadSeconds(const Value& claims, std::string_view name, std::optional<int64_t>* out) {
  const Value* v;
  if (!FindUnique(claims, name, &v)) return false;
  if (v == nullptr) return true;
  if (!v->IsInt64()) return false;
  const int64_t s = v->GetInt64();
  if (s < 0 || s > internal::kMaxClaimSeconds) return false;
  *out = s;
  return true;
}

// HMAC-SHA256 with the keyed state kept per key: the state after the key's inner and outer pad
// blocks, so that a verification hashes only the token (two SHA-256 blocks fewer per login).
// Bounded: past kMaxStates keys it starts over. The states are as secret as the keys; they are
// wiped when dropped.
class HmacKeyedStates {
 public:
  HmacKeyedStates() = default;
  HmacKeyedStates(const HmacKeyedStates&) = delete;
  HmacKeyedStates& operator=(const HmacKeyedStates&) = delete;
  ~HmacKeyedStates() { Clear(); }

  // The MAC of `data` under `key` (crypto_auth_hmacsha256_BYTES bytes into `mac`).
  void Mac(std::string_view key, std::string_view data, unsigned char* mac) {
    crypto_auth_hmacsha256_state state;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = states_.find(key);
      if (it == states_.end()) {
        if (states_.size() >= kMaxStates) Clear();
        it = states_.emplace(std::string(key), crypto_auth_hmacsha256_state{}).first;
        crypto_auth_hmacsha256_init(&it->second,
                                    reinterpret_cast<const unsigned char*>(key.data()),
                                    key.size());
      }
      state = it->second;
    }
    crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(data.data()),
                                  data.size());
    crypto_auth_hmacsha256_final(&state, mac);
    sodium_memzero(&state, sizeof state);
  }

 private:
  static constexpr size_t kMaxStates = 256;

  // Called with mu_ held, or from the destructor.
  void Clear() {
    while (!states_.empty()) {
      auto node = states_.extract(states_.begin());
      sodium_memzero(node.key().data(), node.key().size());
      sodium_memzero(&node.mapped(), sizeof node.mapped());
    }
  }

  std::mutex mu_;
  std::map<std::string, crypto_auth_hmacsha256_state, std::less<>> states_;
};

class Hs256Verifier final : public TokenVerifier {
 public:
  Hs256Verifier(std::shared_ptr<KeyStore> keys, const Hs256Options& options)
      : keys_(std::move(keys)),
        // Cross-cast once: stores that create keys on demand must not do so for an unverified
        // token (see internal::ExistingKeyLookup).
        existing_(dynamic_cast<internal::ExistingKeyLookup*>(keys_.get())),
        // Clamped so that `exp + leeway` cannot overflow; a negative leeway means none.
        leeway_s_(std::clamp<int64_t>(options.leeway_s, 0, internal::kMaxClaimSeconds)),
        clock_(options.clock != nullptr ? options.clock : SystemClock()) {
    internal::InitSodium();
  }

  Result<TokenClaims> Verify(std::string_view token) const override {
    if (token.size() > internal::kMaxTokenBytes) return Invalid("token too long");
    const size_t dot1 = token.find('.');
    const size_t dot2 = dot1 == token.npos ? token.npos : token.find('.', dot1 + 1);
    if (dot2 == token.npos || token.find('.', dot2 + 1) != token.npos) {
      return Invalid("token must have three segments");
    }
    const std::string_view header_b64 = token.substr(0, dot1);
    const std::string_view claims_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
    const std::string_view signature_b64 = token.substr(dot2 + 1);
    if (header_b64.empty() || claims_b64.empty() || signature_b64.empty()) {
      return Invalid("empty token segment");
    }
    std::string header_json, claims_json, signature;
    if (!internal::Base64UrlDecode(header_b64, &header_json) ||
        !internal::Base64UrlDecode(claims_b64, &claims_json) ||
        !internal::Base64UrlDecode(signature_b64, &signature)) {
      return Invalid("token segment is not base64url");
    }

    // Both documents allocate from a stack buffer: a token's JSON is small (at most 4 KiB in
    // all), and RapidJSON's default would be a 64 KiB heap chunk per document.
    alignas(8) char pool_buffer[2048];
    rapidjson::MemoryPoolAllocator<> pool(pool_buffer, sizeof(pool_buffer), 4096);
    rapidjson::Document header(&pool);
    if (!ParseObject(header_json, &header)) return Invalid("header is not a JSON object");
    const Value* alg;
    if (!FindUnique(header, "alg", &alg) || alg == nullptr || !alg->IsString() ||
        StringOf(*alg) != "HS256") {
      return Invalid("alg must be HS256");
    }
    const Value* typ;
    if (!FindUnique(header, "typ", &typ) ||
        (typ != nullptr && (!typ->IsString() || StringOf(*typ) != "JWT"))) {
      return Invalid("typ must be JWT");
    }
    // RFC 7515 4.1.11: extensions listed in "crit" must be understood; we understand none.
    if (header.HasMember("crit")) return Invalid("unsupported crit header");
    std::optional<std::string> kid;
    if (!ReadId(header, "kid", &kid)) return Invalid("bad kid header");

    rapidjson::Document claims(&pool);
    if (!ParseObject(claims_json, &claims)) return Invalid("claims are not a JSON object");
    std::optional<std::string> tenant;
    if (!ReadId(claims, "ten", &tenant)) return Invalid("bad ten claim");
    if (!tenant) tenant = std::string(kDefaultTenant);

    // The key is chosen by the unverified tenant; a token claiming another tenant than the one
    // whose key signed it therefore fails the check below.
    if (signature.size() != crypto_auth_hmacsha256_BYTES) return Invalid(kBadSignature);
    Result<std::vector<SigningKey>> keys = KeysFor(*tenant);
    if (!keys.ok()) {
      // Only a missing key is the token's fault; a failing store is the server's (500).
      if (keys.status().code() == Code::kUnauthenticated) return Invalid(kBadSignature);
      return keys.status();
    }
    // With a kid, only that key; without, any key of the tenant (tokens signed before the
    // tenant's keys had names). An unknown kid answers as a bad signature: a distinct answer
    // would tell which kids exist.
    bool verified = false;
    const std::string_view signed_part = token.substr(0, dot2);
    for (size_t i = 0; i < keys->size() && i < kMaxKeysPerTenant && !verified; ++i) {
      const SigningKey& k = (*keys)[i];
      if (kid && k.kid != *kid) continue;
      if (k.key.empty()) return Status::Internal("empty signing key for tenant");
      unsigned char expected[crypto_auth_hmacsha256_BYTES];
      macs_.Mac(k.key, signed_part, expected);
      verified = sodium_memcmp(expected, signature.data(), sizeof expected) == 0;
    }
    if (!verified) return Invalid(kBadSignature);

    // From here on the claims are the tenant's own words; only their shape and time remain.
    std::optional<std::string> sub;
    if (!ReadId(claims, "sub", &sub) || !sub) return Invalid("bad or missing sub claim");
    std::optional<int64_t> exp, iat, nbf;
    if (!ReadSeconds(claims, "exp", &exp) || !exp) return Invalid("bad or missing exp claim");
    if (!ReadSeconds(claims, "iat", &iat)) return Invalid("bad iat claim");
    if (!ReadSeconds(claims, "nbf", &nbf)) return Invalid("bad nbf claim");

    const TimestampMs now_ms = clock_->NowMs();
    if (now_ms > (*exp + leeway_s_) * 1000) {
      return Status::Unauthenticated("token_expired", "token has expired");
    }
    if (nbf && now_ms + leeway_s_ * 1000 < *nbf * 1000) return Invalid("token not yet valid");

    TokenClaims result;
    result.user = UserKey{std::move(*tenant), std::move(*sub)};
    result.expires_ms = *exp * 1000;
    result.issued_ms = iat ? *iat * 1000 : 0;
    return result;
  }

 private:
  Result<std::vector<SigningKey>> KeysFor(const std::string& tenant) const {
    if (existing_ != nullptr) return existing_->ExistingKeysFor(tenant);
    if (keys_ == nullptr) return Status::Internal("token verifier has no key store");
    return keys_->KeysFor(tenant);
  }

  const std::shared_ptr<KeyStore> keys_;
  internal::ExistingKeyLookup* const existing_;  // keys_ itself when it implements it, or null
  const int64_t leeway_s_;
  Clock* const clock_;
  mutable HmacKeyedStates macs_;
};

}  // namespace

std::unique_ptr<TokenVerifier> NewHs256Verifier(std::shared_ptr<KeyStore> keys,
                                                Hs256Options options) {
  return std::make_unique<Hs256Verifier>(std::move(keys), options);
}

Result<std::string> SignHs256Token(KeyStore& keys, const UserKey& user, int64_t ttl_s,
                                   TimestampMs now_ms) {
  if (!IsValidId(user.tenant) || !IsValidId(user.user)) {
    return Status::BadRequest("invalid user or tenant id");
  }
  if (ttl_s <= 0) return Status::BadRequest("token ttl must be positive");
  if (now_ms < 0) return Status::BadRequest("time before the epoch");
  const int64_t iat = now_ms / 1000;
  if (iat > internal::kMaxClaimSeconds || ttl_s > internal::kMaxClaimSeconds - iat) {
    return Status::BadRequest("token expiry out of range");
  }
  Result<std::vector<SigningKey>> all = keys.KeysFor(user.tenant);
  if (!all.ok()) return all.status();
  if (all->empty()) return Status::Unauthenticated("unknown_tenant", "no key for tenant");
  const SigningKey& key = all->front();
  if (key.key.empty()) return Status::Internal("empty signing key for tenant");

  rapidjson::StringBuffer header;
  {
    rapidjson::Writer<rapidjson::StringBuffer> w(header);
    w.StartObject();
    w.Key("alg");
    w.String("HS256");
    w.Key("typ");
    w.String("JWT");
    if (!key.kid.empty()) {
      w.Key("kid");
      w.String(key.kid.data(), static_cast<rapidjson::SizeType>(key.kid.size()));
    }
    w.EndObject();
  }
  rapidjson::StringBuffer claims;
  {
    // Ids passed IsValidId, so they are short valid UTF-8 the writer only has to escape.
    rapidjson::Writer<rapidjson::StringBuffer> w(claims);
    w.StartObject();
    w.Key("sub");
    w.String(user.user.data(), static_cast<rapidjson::SizeType>(user.user.size()));
    w.Key("ten");
    w.String(user.tenant.data(), static_cast<rapidjson::SizeType>(user.tenant.size()));
    w.Key("iat");
    w.Int64(iat);
    w.Key("exp");
    w.Int64(iat + ttl_s);
    w.EndObject();
  }
  return internal::SignJwt(std::string_view(header.GetString(), header.GetSize()),
                           std::string_view(claims.GetString(), claims.GetSize()), key.key);
}

}  // namespace im
