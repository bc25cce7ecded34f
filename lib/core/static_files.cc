#include "core/static_files.h"

#include <sys/stat.h>

#include <climits>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <vector>

#include "core/http_path.h"
#include "protocol/json.h"

namespace im::internal {

namespace {

// The first path segments the server itself answers; a static file never hides them.
bool Reserved(const std::string& first) {
  return first == "v1" || first == "ws" || first == "metrics" || first == "healthz" ||
         first == "readyz";
}

const char* ContentType(const std::string& path) {
  struct Type {
    const char* ext;
    const char* type;
  };
  static const Type kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".map", "application/json"},
      {".txt", "text/plain; charset=utf-8"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".wasm", "application/wasm"},
  };
  for (const Type& t : kTypes) {
    const std::string ext = t.ext;
    if (path.size() > ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0) {
      return t.type;
    }
  }
  return "application/octet-stream";
}

HttpResponse Refuse(int code, const char* error, const std::string& message) {
  HttpResponse r;
  r.status = code;
  JsonWriter w;
  w.StartObject();
  w.Key("code");
  w.Int(code);
  w.Key("error");
  w.String(error);
  w.Key("message");
  w.String(message);
  w.EndObject();
  r.body = w.str();
  return r;
}

std::optional<std::string> RealPath(const std::string& path) {
  char buf[PATH_MAX];
  if (realpath(path.c_str(), buf) == nullptr) return std::nullopt;
  return std::string(buf);
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

std::optional<HttpResponse> ServeStaticFile(const std::string& dir, const HttpRequest& req) {
  if (dir.empty() || (req.method != "GET" && req.method != "HEAD")) return std::nullopt;
  const std::string path = req.target.substr(0, req.target.find('?'));
  std::vector<std::string> parts;
  if (!PathParts(path, &parts).ok()) return std::nullopt;  // the API's 400
  if (!parts.empty() && Reserved(parts[0])) return std::nullopt;
  for (const std::string& s : parts) {
    if (s == "." || s == ".." || s.find_first_of(std::string("/\\\0", 3)) != std::string::npos) {
      return Refuse(400, "bad_request", "a static path may not hold '.', '..', '/', '\\' or NUL");
    }
    if (s[0] == '.') return std::nullopt;  // dot files stay private
  }
  const std::optional<std::string> root = RealPath(dir);
  if (!root) return std::nullopt;
  std::string file = *root;
  for (const std::string& s : parts) file += "/" + s;
  if (parts.empty() || path.back() == '/' || IsDirectory(file)) file += "/index.html";
  const std::optional<std::string> real = RealPath(file);
  // Symlinks are followed only while they stay inside the directory.
  if (!real || real->compare(0, root->size() + 1, *root + "/") != 0) return std::nullopt;
  struct stat st;
  if (stat(real->c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  if (static_cast<size_t>(st.st_size) > kMaxStaticFileBytes) {
    return Refuse(403, "forbidden", "file is over the static file limit of 8 MiB");
  }
  HttpResponse r;
  r.content_type = ContentType(*real);
  // The demo is rebuilt in place: let browsers revalidate rather than keep a stale copy.
  r.headers = {{"Cache-Control", "no-cache"}, {"X-Content-Type-Options", "nosniff"}};
  if (req.method == "HEAD") return r;
  std::ifstream in(*real, std::ios::binary);
  r.body.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) return Refuse(500, "internal", "cannot read the file");
  return r;
}

}  // namespace im::internal
