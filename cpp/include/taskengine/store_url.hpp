#pragma once

#include <string>

namespace taskengine {

// A parsed store URL. sqlite:///abs/path.db and sqlite:///./rel.db name a
// file; postgresql://user@host:port/db (or postgres://) is handed to libpq
// as it is.
struct StoreUrl {
  enum class Backend { Sqlite, Postgres };
  Backend backend;
  std::string original;
  std::string sqlite_path;  // for Sqlite
  std::string conninfo;     // for Postgres

  static StoreUrl parse(const std::string& url);  // throws InvalidUrl
};

}  // namespace taskengine
