// imd's configuration, one function per TOML section: each reads its table into the Config and
// checks the values (400 naming the key, with its line when known). config.cc calls them in a
// fixed order, whatever the order of the file.
#ifndef IMD_CONFIG_SECTIONS_H_
#define IMD_CONFIG_SECTIONS_H_

#include <toml++/toml.h>

#include "config.h"
#include "im/status.h"

namespace imd::internal {

im::Status ApplyServer(const toml::table& t, Config* c);     // [server]
im::Status ApplyLimits(const toml::table& t, Config* c);     // [limits]
im::Status ApplyLog(const toml::table& t, Config* c);        // [log]
im::Status ApplyStorage(const toml::table& t, Config* c);    // [storage]
im::Status ApplyCluster(const toml::table& t, Config* c);    // [cluster]
im::Status ApplyRouting(const toml::table& t, Config* c);    // [routing]
im::Status ApplyAuth(const toml::table& t, Config* c);       // [auth]
im::Status ApplyFilter(const toml::table& t, Config* c);     // [filter]
im::Status ApplyWeb(const toml::table& t, Config* c);        // [web]
im::Status ApplyHttp(const toml::table& t, Config* c);       // [http]
im::Status ApplyAdminKeys(const toml::table& t, Config* c);  // [admin_keys]
// [tenants.<name>]; after ApplyStorage: a tenant's inbox bounds must be within the store's.
im::Status ApplyTenants(const toml::table& t, Config* c);
im::Status ApplyKeys(const toml::table& t, Config* c);       // [keys]

}  // namespace imd::internal

#endif  // IMD_CONFIG_SECTIONS_H_
