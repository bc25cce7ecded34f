// UserStore conformance: every backend added (im::conformance::AddBackend or
// RunUserStoreSuite) runs the same cases. `open` must return an empty store; a persistent
// backend also sets `reopen`, which closes nothing itself (the caller drops the old instance
// first) and opens the data of the last `open` again, and `data_dir`, the directory whose files
// hold that data.
//
// Every store hashes at libsodium's minimum cost, so a hash takes microseconds, not tens of ms.

#include <doctest/doctest.h>
#include <sodium.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "im/backends.h"
#include "im/user_store.h"
#include "suites/suite.h"

namespace im {
namespace conformance::internal {
void LinkUserStoreSuite() {}
}  // namespace conformance::internal

namespace {

using conformance::UserStoreBackend;
using conformance::internal::CheckError;
using conformance::internal::FastHash;
using conformance::internal::Must;
using conformance::internal::MustOk;

template <typename Body>
void ForEachBackend(Body body) {
  conformance::internal::ForEachBackend<UserStoreBackend>(body);
}

constexpr TimestampMs kT0 = 1'700'000'000'000;

UserKey U(const std::string& user, const std::string& tenant = "default") {
  return UserKey{tenant, user};
}

void CheckRecord(const UserRecord& r, const UserKey& key, std::string_view name, TimestampMs ms) {
  CHECK(r.key == key);
  CHECK(r.display_name == name);
  CHECK(r.created_ms == ms);
}

// Every byte of every file under `dir`, concatenated.
std::string AllFileBytes(const std::string& dir) {
  std::string all;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    all.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return all;
}

TEST_CASE("UserStore: create then get") {
  ForEachBackend([](const UserStoreBackend& backend) {
    std::shared_ptr<UserStore> s = backend.open(FastHash());
    CheckRecord(Must(s->Create(U("alice"), "password-1", "Alice ✓", kT0)), U("alice"), "Alice ✓",
                kT0);
    CheckRecord(Must(s->Get(U("alice"))), U("alice"), "Alice ✓", kT0);
    // No display name: the user id stands in.
    CheckRecord(Must(s->Create(U("bob"), "password-2", "", kT0 + 1)), U("bob"), "bob", kT0 + 1);
    CheckRecord(Must(s->Get(U("bob"))), U("bob"), "bob", kT0 + 1);
    CheckError(s->Get(U("carol")), Code::kNotFound, "not_found");
  });
}

TEST_CASE("UserStore: create of an existing user is 409 user_exists") {
  ForEachBackend([](const UserStoreBackend& backend) {
    std::shared_ptr<UserStore> s = backend.open(FastHash());
    Must(s->Create(U("alice"), "password-1", "First", kT0));
    CheckError(s->Create(U("alice"), "password-2", "Second", kT0 + 1), Code::kConflict,
               "user_exists");
    // The first account is untouched, password included.
    CheckRecord(Must(s->Get(U("alice"))), U("alice"), "First", kT0);
    Must(s->VerifyPassword(U("alice"), "password-1"));
    CheckError(s->VerifyPassword(U("alice"), "password-2"), Code::kUnauthenticated,
               "bad_credentials");
  });
}

TEST_CASE("UserStore: tenants are isolated") {
  ForEachBackend([](const UserStoreBackend& backend) {
    std::shared_ptr<UserStore> s = backend.open(FastHash());
    Must(s->Create(U("alice", "t1"), "password-one", "One", kT0));
    CheckError(s->Get(U("alice", "t2")), Code::kNotFound, "not_found");
    CheckError(s->VerifyPassword(U("alice", "t2"), "password-one"), Code::kUnauthenticated,
               "bad_credentials");
    Must(s->Create(U("alice", "t2"), "password-two", "Two", kT0 + 1));
    // Components that concatenate alike stay apart: (t, 1alice) is not (t1, alice).
    Must(s->Create(U("1alice", "t"), "password-three", "Three", kT0 + 2));

    CheckRecord(Must(s->Get(U("alice", "t1"))), U("alice", "t1"), "One", kT0);
    CheckRecord(Must(s->Get(U("alice", "t2"))), U("alice", "t2"), "Two", kT0 + 1);
    CheckRecord(Must(s->Get(U("1alice", "t"))), U("1alice", "t"), "Three", kT0 + 2);
    Must(s->VerifyPassword(U("alice", "t1"), "password-one"));
    Must(s->VerifyPassword(U("alice", "t2"), "password-two"));
    CheckError(s->VerifyPassword(U("alice", "t1"), "password-two"), Code::kUnauthenticated,
               "bad_credentials");
    CheckError(s->VerifyPassword(U("alice", "t2"), "password-one"), Code::kUnauthenticated,
               "bad_credentials");
  });
}

TEST_CASE("UserStore: verify answers alike for a wrong password and an unknown user") {
  ForEachBackend([](const UserStoreBackend& backend) {
    std::shared_ptr<UserStore> s = backend.open(FastHash());
    Must(s->Create(U("alice"), "correct horse", "Alice", kT0));
    CheckRecord(Must(s->VerifyPassword(U("alice"), "correct horse")), U("alice"), "Alice", kT0);

    Result<UserRecord> wrong = s->VerifyPassword(U("alice"), "correct horsE");
    Result<UserRecord> unknown = s->VerifyPassword(U("mallory"), "correct horse");
    CheckError(wrong, Code::kUnauthenticated, "bad_credentials");
    CheckError(unknown, Code::kUnauthenticated, "bad_credentials");
    CHECK(wrong.status().ToString() == unknown.status().ToString());
    // Neither names the user nor echoes the password.
    for (const Result<UserRecord>* r : {&wrong, &unknown}) {
      const std::string text = r->status().ToString();
      CHECK(text.find("correct") == std::string::npos);
      CHECK(text.find("alice") == std::string::npos);
      CHECK(text.find("mallory") == std::string::npos);
    }
    // A prefix, an extension, an empty password and one past the length limit all fail alike.
    for (const std::string& bad : {std::string("correct"), std::string("correct horse!"),
                                   std::string(), std::string(1025, 'x')}) {
      CheckError(s->VerifyPassword(U("alice"), bad), Code::kUnauthenticated, "bad_credentials");
      CheckError(s->VerifyPassword(U("mallory"), bad), Code::kUnauthenticated, "bad_credentials");
    }
    // The account still verifies after the failures.
    Must(s->VerifyPassword(U("alice"), "correct horse"));
  });
}

TEST_CASE("UserStore: the password is never stored in clear") {
  ForEachBackend([](const UserStoreBackend& backend) {
    const std::string password = "Zebra-Quokka-7731-unique";
    std::shared_ptr<UserStore> s = backend.open(FastHash());
    UserRecord created = Must(s->Create(U("alice"), password, "", kT0));
    CHECK(created.display_name.find(password) == std::string::npos);
    CHECK(Must(s->Get(U("alice"))).display_name.find(password) == std::string::npos);
    Must(s->VerifyPassword(U("alice"), password));
    if (!backend.data_dir) return;

    s.reset();  // closes the database, so every write is in the files
    const std::string bytes = AllFileBytes(backend.data_dir());
    CHECK(bytes.find("alice") != std::string::npos);  // the scan does see the record
    CHECK(bytes.find("$argon2id$") != std::string::npos);
    CHECK(bytes.find(password) == std::string::npos);
    CHECK(bytes.find("Zebra") == std::string::npos);
    s = backend.reopen(FastHash());
    Must(s->VerifyPassword(U("alice"), password));
  });
}

TEST_CASE("UserStore: ids and passwords and display names are validated") {
  ForEachBackend([](const UserStoreBackend& backend) {
    std::shared_ptr<UserStore> s = backend.open(FastHash());
    const std::string long_id(65, 'x');
    for (const std::string& id : {std::string(), long_id, std::string("a\n1"),
                                  std::string("a\xC2\x85"), std::string("\xFF")}) {
      CAPTURE(id);
      for (const UserKey& key : {U(id), U("alice", id)}) {
        CheckError(s->Create(key, "password-1", "", kT0), Code::kBadRequest, "bad_request");
        CheckError(s->Get(key), Code::kBadRequest, "bad_request");
        CheckError(s->VerifyPassword(key, "password-1"), Code::kBadRequest, "bad_request");
      }
    }

    // Passwords: 8..1024 bytes by default.
    for (const std::string& password :
         {std::string(), std::string(7, 'p'), std::string(1025, 'p')}) {
      CAPTURE(password.size());
      Result<UserRecord> r = s->Create(U("alice"), password, "", kT0);
      CheckError(r, Code::kBadRequest, "bad_request");
      if (!password.empty()) CHECK(r.status().message().find(password) == std::string::npos);
    }

    const std::string max_name(128, 'n');
    for (const std::string& name :
         {max_name + "n", std::string("bad \xC3\x28"), std::string("\xED\xA0\x80"),
          std::string("tab\there"), std::string("nl\n"), std::string("del\x7F"),
          std::string("c1 \xC2\x9F")}) {
      CAPTURE(name);
      CheckError(s->Create(U("alice"), "password-1", name, kT0), Code::kBadRequest, "bad_request");
    }
    // Nothing of a rejected create was stored.
    CheckError(s->Get(U("alice")), Code::kNotFound, "not_found");

    // The bounds themselves are accepted; 128 bytes of two-byte UTF-8 too.
    std::string accents;
    for (int i = 0; i < 64; ++i) accents += "é";
    Must(s->Create(U(std::string(64, 'u')), std::string(8, 'p'), max_name, kT0));
    Must(s->Create(U("bob"), std::string(1024, 'p'), accents, kT0));
    Must(s->VerifyPassword(U("bob"), std::string(1024, 'p')));
    CHECK(Must(s->Get(U("bob"))).display_name == accents);
  });
}

TEST_CASE("UserStore: password and display name limits come from the options") {
  ForEachBackend([](const UserStoreBackend& backend) {
    PasswordHashOptions options = FastHash();
    options.min_password_bytes = 2;
    options.max_password_bytes = 4;
    options.max_display_name_bytes = 3;
    std::shared_ptr<UserStore> s = backend.open(options);
    CheckError(s->Create(U("a"), "p", "", kT0), Code::kBadRequest, "bad_request");
    CheckError(s->Create(U("a"), "ppppp", "", kT0), Code::kBadRequest, "bad_request");
    CheckError(s->Create(U("a"), "pp", "four", kT0), Code::kBadRequest, "bad_request");
    Must(s->Create(U("a"), "pp", "abc", kT0));
    Must(s->Create(U("b"), "pppp", "", kT0));
    // The default stands in even when the user id is longer than max_display_name_bytes.
    CHECK(Must(s->Create(U("carol"), "pppp", "", kT0)).display_name == "carol");
    Must(s->VerifyPassword(U("b"), "pppp"));
  });
}

TEST_CASE("UserStore: concurrent creates of one user let exactly one win") {
  ForEachBackend([](const UserStoreBackend& backend) {
    std::shared_ptr<UserStore> s = backend.open(FastHash());
    std::atomic<int> created{0};
    std::atomic<int> conflicts{0};
    std::atomic<int> winner{-1};
    std::vector<std::thread> workers;
    for (int t = 0; t < 8; ++t) {
      workers.emplace_back([&, t] {
        Result<UserRecord> r =
            s->Create(U("alice"), "password-" + std::to_string(t), "Alice", kT0 + t);
        if (r.ok()) {
          ++created;
          winner = t;
        } else if (r.status().code() == Code::kConflict && r.status().error() == "user_exists") {
          ++conflicts;
        }
      });
    }
    for (std::thread& w : workers) w.join();
    CHECK(created.load() == 1);
    CHECK(conflicts.load() == 7);
    REQUIRE(winner.load() >= 0);
    // The stored account is the winner's, password and record alike.
    CHECK(Must(s->Get(U("alice"))).created_ms == kT0 + winner.load());
    for (int t = 0; t < 8; ++t) {
      Result<UserRecord> r = s->VerifyPassword(U("alice"), "password-" + std::to_string(t));
      CHECK(r.ok() == (t == winner.load()));
    }
  });
}

TEST_CASE("UserStore: accounts survive a reopen") {
  ForEachBackend([](const UserStoreBackend& backend) {
    if (!backend.reopen) return;
    std::shared_ptr<UserStore> s = backend.open(FastHash());
    Must(s->Create(U("alice", "t1"), "password-a", "Alice ✓", kT0));
    Must(s->Create(U("alice", "t2"), "password-b", "", kT0 + 1));

    s.reset();
    s = backend.reopen(FastHash());
    CheckRecord(Must(s->Get(U("alice", "t1"))), U("alice", "t1"), "Alice ✓", kT0);
    CheckRecord(Must(s->Get(U("alice", "t2"))), U("alice", "t2"), "alice", kT0 + 1);
    CheckRecord(Must(s->VerifyPassword(U("alice", "t1"), "password-a")), U("alice", "t1"),
                "Alice ✓", kT0);
    CheckError(s->VerifyPassword(U("alice", "t1"), "password-b"), Code::kUnauthenticated,
               "bad_credentials");
    CheckError(s->Create(U("alice", "t1"), "password-c", "", kT0 + 2), Code::kConflict,
               "user_exists");

    // Hashes made at another cost still verify: the encoded string carries its own.
    PasswordHashOptions costlier = FastHash();
    costlier.ops_limit += 1;
    Must(s->Create(U("bob", "t1"), "password-d", "Bob", kT0 + 3));
    s.reset();
    s = backend.reopen(costlier);
    Must(s->VerifyPassword(U("alice", "t1"), "password-a"));
    Must(s->VerifyPassword(U("alice", "t2"), "password-b"));
    CheckRecord(Must(s->VerifyPassword(U("bob", "t1"), "password-d")), U("bob", "t1"), "Bob",
                kT0 + 3);
  });
}

}  // namespace
}  // namespace im
