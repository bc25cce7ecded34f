// RouteRules: which gateways a user should connect to, chosen from the live nodes of a cluster
// (GET /v1/route). Pure functions over a snapshot of the node registry: no I/O, no clock.
//
//   RouteRules rules = ...;                       // imd's [routing] section
//   std::vector<RouteNode> live = ...;            // the node registry's List()
//   Result<std::vector<RouteNode>> order = ChooseRoute(rules, live, query);
//
// The choice, in steps (docs/operations.md, Routing and canary rules):
//  1. candidates: nodes not draining (the registry lists only nodes still heartbeating);
//  2. pool: the tenant's pool (tenant_pools) if any of its nodes is live, else the shared pool
//     (nodes with pool "");
//  3. side: the canary side (nodes tagged canary_tag) for a user of a canary tenant, a listed
//     canary user, or a user whose stable hash falls under canary_percent; the stable side (every
//     other tag) for the rest. A side with no live node falls back to the other side;
//  4. order: nodes of the wanted region first (the `region` parameter, else the first
//     region_cidrs entry holding the client's address), nodes at or over max_load last, and
//     within each group by weighted rendezvous hashing of tenant/user over node ids, so the same
//     user gets the same first node while that node lives and the rules hold;
//  5. at most max_answers nodes.
//
// Thread-safety: the functions are pure; RouteRules is immutable once built.
#ifndef IM_ROUTE_ROUTE_RULES_H_
#define IM_ROUTE_ROUTE_RULES_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "im/result.h"

namespace im::internal {

// One gateway as the node registry lists it.
struct RouteNode {
  std::string id;
  std::string tcp_address;  // "host:port" ("" = none)
  std::string ws_address;   // "ws://host:port/ws" ("" = none)
  std::string tag;          // [cluster] version_tag ("stable" by default)
  std::string region;       // [cluster] region ("" = none)
  std::string pool;         // [cluster] pool ("" = the shared pool)
  int64_t weight = 100;     // [cluster] weight, 1..10000
  int64_t load = 0;         // sessions at its last heartbeat
  bool draining = false;    // drained by command or stopping: never answered
};

// One IPv4 or IPv6 network, "10.1.0.0/16" or "2001:db8::/32".
struct Cidr {
  bool v6 = false;
  unsigned char bytes[16] = {};
  int prefix = 0;
};
// 400 bad_request naming `text` when it is not a CIDR.
Result<Cidr> ParseCidr(const std::string& text);
// True when `address` ("1.2.3.4", "1.2.3.4:5678", "[::1]:5678", "::1") lies in `net`.
bool CidrContains(const Cidr& net, const std::string& address);

struct RouteRules {
  std::string canary_tag = "canary";
  double canary_percent = 0;              // 0..100, of users by stable hash of tenant/user
  std::set<std::string> canary_tenants;   // every user of these tenants
  std::set<std::string> canary_users;     // "tenant/user"
  std::map<std::string, std::string> tenant_pools;  // tenant -> pool
  // region -> networks; the first region (by name) holding the client address wins
  std::vector<std::pair<std::string, std::vector<Cidr>>> region_cidrs;
  int64_t max_load = 0;                   // 0 = no limit; nodes at or over it go last
  int64_t max_answers = 3;                // 1..64
};

struct RouteQuery {
  std::string tenant;
  std::string user;
  std::string region;          // "" = by the client's address
  std::string remote_address;  // the client's address as the transport saw it
};

// The stable hash of a user, 0..9999: canary_percent p covers the users under p * 100.
int64_t CanaryBucket(const std::string& tenant, const std::string& user);
// True when the rules send this user to the canary side (whatever nodes are live).
bool WantsCanary(const RouteRules& rules, const std::string& tenant, const std::string& user);

// The nodes a user may be served by under the rules (steps 1-3 above), unordered. A node not in
// this set holds the user on the wrong side or pool: it moves the user by a drain kick.
std::vector<RouteNode> EligibleNodes(const RouteRules& rules, const std::vector<RouteNode>& live,
                                     const std::string& tenant, const std::string& user);

// The ordered answer (steps 1-5). 400 bad_request for an invalid tenant, user or region; 503
// unavailable when no node can take the user.
Result<std::vector<RouteNode>> ChooseRoute(const RouteRules& rules,
                                           const std::vector<RouteNode>& live,
                                           const RouteQuery& query);

// The JSON answer of GET /v1/route: {"tenant":..,"user":..,"canary":bool,"gateways":[{"node":..,
// "tcp":"host:port","ws":"ws://..."}, ...]} (public addresses only).
std::string RouteJson(const RouteQuery& query, bool canary, const std::vector<RouteNode>& nodes);

// The rules an operator may change at run time (GET/PUT /v1/admin/routing), as JSON:
// {"canary_tag":..,"canary_percent":..,"canary_tenants":[..],"canary_users":["t/u",..],
//  "tenant_pools":{"t":"pool",..},"max_load":..,"max_answers":..}. region_cidrs is not among
// them (it stays the config's).
std::string RulesJson(const RouteRules& rules);
// Parses and checks such an object: every field optional (an absent one takes its default
// above), no other field. 400 bad_json for text that is not a JSON object, 400 bad_request
// naming the field for a wrong type or value.
Result<RouteRules> ParseRulesJson(std::string_view text);

}  // namespace im::internal

#endif  // IM_ROUTE_ROUTE_RULES_H_
