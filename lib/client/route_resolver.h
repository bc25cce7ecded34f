// The client's side of GET /v1/route: which gateway URLs to dial, in order.
//
//   std::vector<std::string> urls = RouteCandidates(options);  // then dial each until one answers
//
// With options.route_url set (the full endpoint URL with its query, e.g.
// "http://gw.example.com:7000/v1/route?tenant=default&user=alice"), the endpoint is asked once
// per call (blocking, at most connect_timeout_ms to connect and as long again to answer); its
// gateways come first, as WebSocket URLs when options.url is ws://, else as tcp:// URLs, and
// options.url comes last as the fallback (alone when the endpoint fails or answers nothing).
// At most kMaxRouteGateways of the answer's gateways are taken (each dial may take
// connect_timeout_ms); the rest are ignored.
//
// Thread-safety: a pure function of its argument (it opens one socket of its own).
#ifndef IM_CLIENT_ROUTE_RESOLVER_H_
#define IM_CLIENT_ROUTE_RESOLVER_H_

#include <string>
#include <vector>

#include "im/client.h"
#include "im/result.h"

namespace im::internal {

// The most gateways a server answers ([routing] max_answers is at most 64).
constexpr size_t kMaxRouteGateways = 64;

// The body of a 200 answer to an HTTP/1.1 GET of `url` ("http://host:port/path?query"), read to
// the end (at most 64 KiB). 400 for a URL that is not http://; 503 when the server cannot be
// reached in time or does not answer 200.
Result<std::string> HttpGet(const std::string& url, int64_t timeout_ms);

// The URLs to dial (see above); never empty.
std::vector<std::string> RouteCandidates(const ClientOptions& options);

}  // namespace im::internal

#endif  // IM_CLIENT_ROUTE_RESOLVER_H_
