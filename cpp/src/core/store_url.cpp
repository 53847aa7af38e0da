#include "taskengine/store_url.hpp"

#include "taskengine/errors.hpp"

namespace taskengine {
namespace {

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.rfind(prefix, 0) == 0;
}

}  // namespace

StoreUrl StoreUrl::parse(const std::string& url) {
  StoreUrl parsed;
  parsed.original = url;
  if (url.empty()) throw InvalidUrl("empty store URL");
  if (starts_with(url, "sqlite://")) {
    parsed.backend = Backend::Sqlite;
    std::string rest = url.substr(std::string("sqlite://").size());
    // sqlite:///abs -> "/abs"; sqlite:///./rel -> "./rel" (SQLAlchemy's form).
    if (rest.empty() || rest[0] != '/')
      throw InvalidUrl("a SQLite URL is sqlite:///path/to/file.db (three slashes), got '" + url +
                       "'");
    std::string path = rest.substr(1);
    if (starts_with(path, "./") || starts_with(path, "../")) {
      parsed.sqlite_path = path;
    } else {
      parsed.sqlite_path = "/" + path;
    }
    if (parsed.sqlite_path == "/" || parsed.sqlite_path.back() == '/')
      throw InvalidUrl("a SQLite URL must name a file, got '" + url + "'");
    if (auto q = parsed.sqlite_path.find('?'); q != std::string::npos)
      throw InvalidUrl("SQLite URLs take no query parameters, got '" + url + "'");
    return parsed;
  }
  if (starts_with(url, "postgresql://") || starts_with(url, "postgres://")) {
    parsed.backend = Backend::Postgres;
    parsed.conninfo = url;
    return parsed;
  }
  auto scheme_end = url.find("://");
  std::string scheme = scheme_end == std::string::npos ? url : url.substr(0, scheme_end);
  throw InvalidUrl("unsupported store URL scheme '" + scheme +
                   "' (expected sqlite:///path or postgresql://user@host:port/db)");
}

}  // namespace taskengine
