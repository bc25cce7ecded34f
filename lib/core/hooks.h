// The host's hooks (Server::SetBeforeSend, SetOnLogin, SetOnLogout). Set before Start and
// read-only afterwards, so the services read them without a lock.
#ifndef IM_CORE_HOOKS_H_
#define IM_CORE_HOOKS_H_

#include "im/server.h"

namespace im::internal {

struct Hooks {
  BeforeSendHook before_send;  // ChatService::Send, on the calling front's thread
  SessionHook on_login;        // SessionService, after the login answer
  SessionHook on_logout;       // SessionService::End
};

}  // namespace im::internal

#endif  // IM_CORE_HOOKS_H_
