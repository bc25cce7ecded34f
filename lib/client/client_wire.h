// The client's reading of the server's frames: fields of a JSON object with a default when
// absent or of another type, and the response bodies the client turns into its public structs.
//
// Thread-safety: pure functions.
#ifndef IM_CLIENT_CLIENT_WIRE_H_
#define IM_CLIENT_CLIENT_WIRE_H_

#include <cstdint>
#include <string>

#include "im/client.h"
#include "im/result.h"
#include "protocol/json.h"

namespace im::internal {

// A field of `v`: "" / 0 / false when absent or of another type. U64 also reads a decimal
// string.
std::string Str(const rapidjson::Value& v, const char* k);
uint64_t U64(const rapidjson::Value& v, const char* k);
int64_t I64(const rapidjson::Value& v, const char* k);
bool Bool(const rapidjson::Value& v, const char* k);

// A chat.message push body or a chat.sync page entry.
ReceivedMessage ParseMessage(const rapidjson::Value& m);
// Parses a request's response body into `d`: the request's own status when it failed, 500
// when the body is not a JSON object.
Status ParseBody(const Result<std::string>& r, rapidjson::Document* d);
LoginInfo ParseLogin(const rapidjson::Document& d);
// The body of a login request.
std::string LoginBody(const std::string& token, const std::string& device);

}  // namespace im::internal

#endif  // IM_CLIENT_CLIENT_WIRE_H_
