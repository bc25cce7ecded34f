// Static files on the HTTP port: a directory of plain files (the web demo) served next to the
// Web API (docs/operations.md, `[http] static_dir`).
//
// Thread-safety: a free function over caller-owned values; it reads the file system only.
#ifndef IM_CORE_STATIC_FILES_H_
#define IM_CORE_STATIC_FILES_H_

#include <cstddef>
#include <optional>
#include <string>

#include "transport/handler.h"

namespace im::internal {

// Files larger than this are not served (403): the response is built in memory.
inline constexpr size_t kMaxStaticFileBytes = 8 << 20;

// The response for `req` when it names a file under `dir`, else nullopt (the Web API answers
// it: its paths, a method other than GET or HEAD, a missing file all stay the API's, so the
// files never shadow /ws, /v1/..., /metrics, /healthz or /readyz).
//
// The path is percent-decoded segment by segment; a segment "." or "..", or one holding '/',
// '\' or NUL once decoded, is 400 bad_request. Dot files are never served. A path ending in '/'
// (or naming a directory) serves that directory's index.html; there is no directory listing.
// A file whose real path (symlinks resolved) is outside `dir` is 404. `dir` "" serves nothing.
std::optional<HttpResponse> ServeStaticFile(const std::string& dir, const HttpRequest& req);

}  // namespace im::internal

#endif  // IM_CORE_STATIC_FILES_H_
