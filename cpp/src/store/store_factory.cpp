#include "store/postgres/postgres_session.hpp"
#include "store/sql/sql_store.hpp"
#include "store/sqlite/sqlite_session.hpp"
#include "taskengine/store.hpp"
#include "taskengine/store_url.hpp"

namespace taskengine {

std::unique_ptr<Store> open_store(const std::string& url) {
  StoreUrl parsed = StoreUrl::parse(url);
  std::unique_ptr<sql::Session> session;
  if (parsed.backend == StoreUrl::Backend::Sqlite)
    session = std::make_unique<sql::SqliteSession>(url, parsed.sqlite_path);
  else
    session = std::make_unique<sql::PostgresSession>(parsed.conninfo);
  return std::make_unique<sql::SqlStore>(std::move(session));
}

}  // namespace taskengine
