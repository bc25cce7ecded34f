// Runs libim's SessionStore conformance suite against CustomSessionStore. Arguments are
// doctest's options (-tc="*kick*", -s, -ltc). Exit 0: every case passed.
#include <memory>

#include "custom_session_store.h"
#include "im/conformance.h"

int main(int argc, char** argv) {
  return im::conformance::RunSessionStoreSuite(
      {"custom", [] { return std::make_shared<example::CustomSessionStore>(); }}, argc, argv);
}
