// The REST front's URL decoding: path segments and query values (docs/protocol.md §11).
//
// Thread-safety: free functions over caller-owned values.
#ifndef IM_CORE_HTTP_PATH_H_
#define IM_CORE_HTTP_PATH_H_

#include <string>
#include <string_view>
#include <vector>

#include "im/status.h"

namespace im::internal {

// RFC 3986 percent-decoding of one path segment or query component; in a query, '+' is a space
// (HTML forms). False on a '%' that is not followed by two hex digits.
bool PercentDecode(std::string_view in, bool plus_is_space, std::string* out);

// Percent-encodes every byte but RFC 3986's unreserved ones (A-Z a-z 0-9 - . _ ~): the result
// decodes back to `in` as a path segment and as a query value alike.
std::string PercentEncode(std::string_view in);

// Splits "/v1/groups/g1/members" into {"v1","groups","g1","members"}, each segment
// percent-decoded (so an id may hold '/', '?', spaces or any UTF-8 as %XX). 400 on a malformed
// escape.
Status PathParts(const std::string& path, std::vector<std::string>* parts);

// The decoded value of query parameter `name` of `target` (a request target with its query;
// "" when absent). 400 on a malformed escape.
Status QueryParam(const std::string& target, std::string_view name, std::string* value);

}  // namespace im::internal

#endif  // IM_CORE_HTTP_PATH_H_
