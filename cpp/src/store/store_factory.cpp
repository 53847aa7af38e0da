#include "store/postgres/postgres_session.hpp"
#include "store/session_factory.hpp"
#include "store/sql/sql_store.hpp"
#include "store/sqlite/sqlite_session.hpp"
#include "taskengine/store.hpp"
#include "taskengine/store_url.hpp"

namespace taskengine {

std::unique_ptr<sql::Session> sql::open_session(const std::string& url) {
  StoreUrl parsed = StoreUrl::parse(url);
  if (parsed.backend == StoreUrl::Backend::Sqlite)
    return std::make_unique<SqliteSession>(url, parsed.sqlite_path);
  return std::make_unique<PostgresSession>(parsed.conninfo);
}

std::unique_ptr<Store> open_store(const std::string& url) {
  return std::make_unique<sql::SqlStore>(sql::open_session(url));
}

}  // namespace taskengine
