// Key stores: a fixed map, and a directory of `<tenant>.key` files shared by every process that
// points at it (servers and `imd token`).

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <functional>
#include <iterator>
#include <map>
#include <mutex>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "auth/jwt_internal.h"
#include "im/auth.h"

namespace im {
namespace {

namespace fs = std::filesystem;

constexpr size_t kKeyBytes = 32;
constexpr size_t kKeyHexChars = 2 * kKeyBytes;
// A key file is 64 hex characters and a newline; anything much longer is not a key file.
constexpr size_t kMaxKeyFileBytes = 256;

Status UnknownTenant() { return Status::Unauthenticated("unknown_tenant", "no key for tenant"); }

Status IoError(const std::string& what, const fs::path& path, int err) {
  return Status::Internal(what + " " + path.string() + ": " + std::generic_category().message(err));
}

class StaticKeyStore final : public KeyStore {
 public:
  explicit StaticKeyStore(std::map<std::string, std::string> keys)
      : keys_(std::make_move_iterator(keys.begin()), std::make_move_iterator(keys.end())) {}

  Result<std::string> KeyFor(std::string_view tenant) override {
    auto it = keys_.find(tenant);
    if (it == keys_.end()) return UnknownTenant();
    return it->second;
  }

 private:
  const std::map<std::string, std::string, std::less<>> keys_;  // immutable: no lock needed
};

// The tenant names the file system can hold as `<tenant>.key` inside the directory. Names with
// '/' would leave it, and names starting with '.' are kept for temporary files.
bool IsFileSafeTenant(std::string_view tenant) {
  return IsValidId(tenant) && tenant.find('/') == std::string_view::npos && tenant[0] != '.';
}

// 64 hex characters, then optional trailing whitespace (for hand-made files).
bool ParseKeyText(std::string_view text, std::string* key) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ' ||
                           text.back() == '\t')) {
    text.remove_suffix(1);
  }
  if (text.size() != kKeyHexChars) return false;
  unsigned char raw[kKeyBytes];
  size_t raw_len = 0;
  if (sodium_hex2bin(raw, sizeof raw, text.data(), text.size(), /*ignore=*/nullptr, &raw_len,
                     /*hex_end=*/nullptr) != 0 ||
      raw_len != kKeyBytes) {
    return false;
  }
  key->assign(reinterpret_cast<const char*>(raw), raw_len);
  sodium_memzero(raw, sizeof raw);
  return true;
}

// Reads the key at `path` into `*key`. A file that does not exist is not an error: `*missing`
// says so.
Status ReadKeyFile(const fs::path& path, std::string* key, bool* missing) {
  *missing = false;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      *missing = true;
      return Status::OK();
    }
    return IoError("cannot open key file", path, errno);
  }
  char buf[kMaxKeyFileBytes + 1];
  size_t n = 0;
  int err = 0;
  while (n < sizeof buf) {
    const ssize_t r = ::read(fd, buf + n, sizeof buf - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) err = errno;
    if (r <= 0) break;
    n += static_cast<size_t>(r);
  }
  ::close(fd);
  if (err != 0) return IoError("cannot read key file", path, err);
  const bool parsed = ParseKeyText(std::string_view(buf, n), key);
  sodium_memzero(buf, sizeof buf);
  if (!parsed) return Status::Internal("malformed key file " + path.string());
  return Status::OK();
}

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t w = ::write(fd, data.data(), data.size());
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data.remove_prefix(static_cast<size_t>(w));
  }
  return true;
}

// Best effort: makes the new directory entry survive a crash, so tokens signed with the key
// stay valid after a reboot. Failure only weakens durability, never correctness.
void SyncDir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// Creates `path` with a fresh random key, or adopts the key another process created first.
Status CreateKeyFile(const fs::path& dir, std::string_view tenant, const fs::path& path,
                     std::string* key) {
  if (!internal::InitSodium()) return Status::Internal("libsodium failed to initialize");
  unsigned char raw[kKeyBytes];
  randombytes_buf(raw, sizeof raw);
  char hex[kKeyHexChars + 1];
  sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
  std::string text(hex, kKeyHexChars);
  text += '\n';
  sodium_memzero(hex, sizeof hex);

  unsigned char nonce[8];
  randombytes_buf(nonce, sizeof nonce);
  char nonce_hex[2 * sizeof nonce + 1];
  sodium_bin2hex(nonce_hex, sizeof nonce_hex, nonce, sizeof nonce);
  // The leading '.' keeps the temporary name apart from every key file (see IsFileSafeTenant).
  const fs::path tmp = dir / ("." + std::string(tenant) + ".key." + nonce_hex + ".tmp");

  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return IoError("cannot create key file", tmp, errno);
  int err = 0;
  // fchmod: the umask may have taken bits from 0600, and the owner must keep read access.
  if (::fchmod(fd, 0600) != 0 || !WriteAll(fd, text) || ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  sodium_memzero(text.data(), text.size());
  if (err != 0) {
    ::unlink(tmp.c_str());
    return IoError("cannot write key file", tmp, err);
  }
  // link() and not rename(): rename would silently replace a key that another process created
  // a moment ago and may already have signed tokens with. link fails with EEXIST instead, and
  // then the winner's key is the one everybody uses.
  const int rc = ::link(tmp.c_str(), path.c_str());
  const int link_err = errno;
  ::unlink(tmp.c_str());
  if (rc != 0) {
    sodium_memzero(raw, sizeof raw);
    if (link_err != EEXIST) return IoError("cannot install key file", path, link_err);
    bool missing = false;
    Status s = ReadKeyFile(path, key, &missing);
    if (s.ok() && missing) return Status::Internal("key file vanished: " + path.string());
    return s;
  }
  SyncDir(dir);
  key->assign(reinterpret_cast<const char*>(raw), sizeof raw);
  sodium_memzero(raw, sizeof raw);
  return Status::OK();
}

// Keys are cached forever once read: a key file is never rewritten by this code, so replacing
// one by hand (key rotation) takes a restart.
class DirKeyStore final : public KeyStore, public internal::ExistingKeyLookup {
 public:
  DirKeyStore(fs::path dir, bool create_missing)
      : dir_(std::move(dir)), create_missing_(create_missing) {}

  Result<std::string> KeyFor(std::string_view tenant) override {
    return Lookup(tenant, create_missing_);
  }
  Result<std::string> ExistingKeyFor(std::string_view tenant) override {
    return Lookup(tenant, /*create=*/false);
  }

 private:
  Result<std::string> Lookup(std::string_view tenant, bool create) {
    if (!IsFileSafeTenant(tenant)) return UnknownTenant();
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = cache_.find(tenant);
      if (it != cache_.end()) return it->second;
    }
    // The file I/O runs unlocked, so a slow disk never stalls lookups of cached tenants. Racing
    // lookups still agree: a key file becomes visible only complete and is never replaced.
    // Misses are not cached, so a key that `imd token` creates later is found.
    const fs::path path = dir_ / (std::string(tenant) + ".key");
    std::string key;
    bool missing = false;
    Status s = ReadKeyFile(path, &key, &missing);
    if (s.ok() && missing) {
      if (!create) return UnknownTenant();
      s = CreateKeyFile(dir_, tenant, path, &key);
    }
    if (!s.ok()) return s;
    std::lock_guard<std::mutex> lock(mu_);
    return cache_.emplace(std::string(tenant), std::move(key)).first->second;
  }

  const fs::path dir_;
  const bool create_missing_;
  std::mutex mu_;
  std::map<std::string, std::string, std::less<>> cache_;  // guarded by mu_
};

class RotatingKeyStore final : public KeyStore {
 public:
  explicit RotatingKeyStore(std::map<std::string, std::vector<SigningKey>> keys)
      : keys_(std::make_move_iterator(keys.begin()), std::make_move_iterator(keys.end())) {}

  Result<std::string> KeyFor(std::string_view tenant) override {
    auto it = keys_.find(tenant);
    if (it == keys_.end()) return UnknownTenant();
    return it->second.front().key;
  }
  Result<std::vector<SigningKey>> KeysFor(std::string_view tenant) override {
    auto it = keys_.find(tenant);
    if (it == keys_.end()) return UnknownTenant();
    return it->second;
  }

 private:
  // immutable (no lock needed); every entry holds 1..kMaxKeysPerTenant keys
  const std::map<std::string, std::vector<SigningKey>, std::less<>> keys_;
};

}  // namespace

Result<std::vector<SigningKey>> KeyStore::KeysFor(std::string_view tenant) {
  Result<std::string> key = KeyFor(tenant);
  if (!key.ok()) return key.status();
  return std::vector<SigningKey>{{"", std::move(*key)}};
}

Result<std::shared_ptr<KeyStore>> NewRotatingKeyStore(
    std::map<std::string, std::vector<SigningKey>> keys) {
  for (auto it = keys.begin(); it != keys.end();) {
    const std::vector<SigningKey>& list = it->second;
    if (list.size() > kMaxKeysPerTenant) {
      return Status::BadRequest("tenant '" + it->first + "' has more than " +
                                std::to_string(kMaxKeysPerTenant) + " keys");
    }
    for (size_t i = 0; i < list.size(); ++i) {
      if (list[i].key.empty()) {
        return Status::BadRequest("tenant '" + it->first + "' has an empty key");
      }
      if (!list[i].kid.empty() && !IsValidId(list[i].kid)) {
        return Status::BadRequest("tenant '" + it->first + "' has a bad kid");
      }
      for (size_t j = 0; j < i; ++j) {
        if (list[j].kid == list[i].kid) {
          return Status::BadRequest("tenant '" + it->first + "' has two keys with kid '" +
                                    list[i].kid + "'");
        }
      }
    }
    it = list.empty() ? keys.erase(it) : std::next(it);
  }
  return std::shared_ptr<KeyStore>(std::make_shared<RotatingKeyStore>(std::move(keys)));
}

std::shared_ptr<KeyStore> NewStaticKeyStore(std::map<std::string, std::string> keys) {
  return std::make_shared<StaticKeyStore>(std::move(keys));
}

Result<std::shared_ptr<KeyStore>> OpenDirKeyStore(const std::string& dir, bool create_missing) {
  if (dir.empty()) return Status::BadRequest("key directory is empty");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return IoError("cannot create key directory", dir, ec.value());
  if (!fs::is_directory(dir, ec)) return Status::Internal("not a directory: " + dir);
  return std::shared_ptr<KeyStore>(std::make_shared<DirKeyStore>(dir, create_missing));
}

}  // namespace im
