#include "store/sqlite/sqlite_session.hpp"

#include <algorithm>
#include <thread>

#include "taskengine/errors.hpp"

namespace taskengine::sql {
namespace {

// Statements are written with PostgreSQL's $n placeholders; SQLite reads
// ?n the same way.
std::string to_sqlite_placeholders(const std::string& sql) {
  std::string out = sql;
  for (std::size_t i = 0; i + 1 < out.size(); ++i)
    if (out[i] == '$' && out[i + 1] >= '0' && out[i + 1] <= '9') out[i] = '?';
  return out;
}

constexpr auto kBusyTimeout = std::chrono::seconds(30);
// A writer that finds the write lock taken retries after 20 us, doubling up
// to 1 ms. SQLite's own busy timeout sleeps 1, 2, 5, 10, ... 100 ms between
// tries: on a store shared by a dispatching application and its workers,
// whose transactions last tens to hundreds of microseconds, every collision
// then cost a millisecond or more of idling.
constexpr auto kFirstRetry = std::chrono::microseconds(20);
constexpr auto kLongestRetry = std::chrono::microseconds(1000);

}  // namespace

int SqliteSession::on_busy(void* self, int tries) {
  auto& session = *static_cast<SqliteSession*>(self);
  auto now = std::chrono::steady_clock::now();
  if (tries == 0) session.busy_since_ = now;
  if (now - session.busy_since_ >= kBusyTimeout) return 0;  // SQLITE_BUSY for the caller
  auto wait = kFirstRetry * (1 << std::min(tries, 6));
  std::this_thread::sleep_for(std::min<std::chrono::microseconds>(wait, kLongestRetry));
  return 1;
}

SqliteSession::SqliteSession(std::string url, const std::string& path)
    : url_(std::move(url)), wakeup_(path) {
  sqlite3* raw = nullptr;
  int code =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  db_.reset(raw);
  if (code != SQLITE_OK) {
    std::string message = raw ? sqlite3_errmsg(raw) : sqlite3_errstr(code);
    throw ConnectionError("cannot open SQLite database '" + path + "': " + message);
  }
  sqlite3_busy_handler(db_.get(), &SqliteSession::on_busy, this);
  // WAL lets readers run beside the one writer; synchronous=NORMAL in WAL
  // mode survives any process crash (only power loss may drop the last
  // commits); foreign keys keep dependencies honest.
  execute_script("PRAGMA journal_mode=WAL");
  execute_script("PRAGMA synchronous=NORMAL");
  execute_script("PRAGMA foreign_keys=ON");
}

SqliteSession::~SqliteSession() { statements_.clear(); }

void SqliteSession::fail(int code, const std::string& what) {
  std::string message = what + ": " + sqlite3_errmsg(db_.get());
  if (code == SQLITE_CANTOPEN || code == SQLITE_NOTADB || code == SQLITE_PERM)
    throw ConnectionError(message);
  throw StoreError(message);
}

sqlite3_stmt* SqliteSession::prepare(const std::string& sql, const Params& params) {
  auto it = statements_.find(sql);
  if (it == statements_.end()) {
    std::string text = to_sqlite_placeholders(sql);
    sqlite3_stmt* raw = nullptr;
    int code = sqlite3_prepare_v3(db_.get(), text.c_str(), static_cast<int>(text.size()),
                                  SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
    if (code != SQLITE_OK) fail(code, "cannot prepare statement");
    it = statements_.emplace(sql, StatementPtr(raw)).first;
  }
  sqlite3_stmt* stmt = it->second.get();
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  for (std::size_t i = 0; i < params.size(); ++i) {
    int index = static_cast<int>(i + 1);
    const Value& v = params[i];
    int code = SQLITE_OK;
    if (auto p = std::get_if<std::int64_t>(&v)) {
      code = sqlite3_bind_int64(stmt, index, *p);
    } else if (auto p = std::get_if<double>(&v)) {
      code = sqlite3_bind_double(stmt, index, *p);
    } else if (auto p = std::get_if<std::string>(&v)) {
      code =
          sqlite3_bind_text(stmt, index, p->data(), static_cast<int>(p->size()), SQLITE_TRANSIENT);
    } else {
      code = sqlite3_bind_null(stmt, index);
    }
    if (code != SQLITE_OK) fail(code, "cannot bind parameter " + std::to_string(index));
  }
  return stmt;
}

Rows SqliteSession::query(const std::string& sql, const Params& params) {
  sqlite3_stmt* stmt = prepare(sql, params);
  Rows rows;
  int columns = sqlite3_column_count(stmt);
  for (;;) {
    int code = sqlite3_step(stmt);
    if (code == SQLITE_DONE) break;
    if (code != SQLITE_ROW) {
      sqlite3_reset(stmt);
      fail(code, "query failed");
    }
    std::vector<Value> values;
    values.reserve(columns);
    for (int c = 0; c < columns; ++c) {
      switch (sqlite3_column_type(stmt, c)) {
        case SQLITE_INTEGER:
          values.emplace_back(static_cast<std::int64_t>(sqlite3_column_int64(stmt, c)));
          break;
        case SQLITE_FLOAT:
          values.emplace_back(sqlite3_column_double(stmt, c));
          break;
        case SQLITE_NULL:
          values.emplace_back(std::monostate{});
          break;
        default:
          values.emplace_back(
              std::string(reinterpret_cast<const char*>(sqlite3_column_text(stmt, c)),
                          static_cast<std::size_t>(sqlite3_column_bytes(stmt, c))));
      }
    }
    rows.emplace_back(std::move(values));
  }
  sqlite3_reset(stmt);
  return rows;
}

std::int64_t SqliteSession::execute(const std::string& sql, const Params& params) {
  sqlite3_stmt* stmt = prepare(sql, params);
  int code;
  while ((code = sqlite3_step(stmt)) == SQLITE_ROW) {
  }
  sqlite3_reset(stmt);
  if (code != SQLITE_DONE) fail(code, "statement failed");
  return sqlite3_changes64(db_.get());
}

Pending SqliteSession::send(const std::string& sql, const Params& params) {
  Pending pending;
  Rows rows = query(sql, params);
  pending.fulfil(std::move(rows), sqlite3_changes64(db_.get()));
  return pending;
}

std::size_t SqliteSession::max_parameters() const {
  // SQLITE_MAX_VARIABLE_NUMBER as compiled in (32766 since 3.32).
  return static_cast<std::size_t>(sqlite3_limit(db_.get(), SQLITE_LIMIT_VARIABLE_NUMBER, -1));
}

void SqliteSession::execute_script(const std::string& sql) {
  char* error = nullptr;
  int code = sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, &error);
  if (code != SQLITE_OK) {
    std::string message = error ? error : sqlite3_errstr(code);
    sqlite3_free(error);
    if (code == SQLITE_NOTADB || code == SQLITE_CANTOPEN)
      throw ConnectionError("cannot use SQLite database: " + message);
    throw StoreError(message + " (in: " + sql.substr(0, 80) + ")");
  }
}

void SqliteSession::begin(bool for_write) {
  execute(for_write ? "BEGIN IMMEDIATE" : "BEGIN", {});
  in_transaction_ = true;
  notify_on_commit_.clear();
}

void SqliteSession::commit() {
  execute("COMMIT", {});
  in_transaction_ = false;
  for (const auto& topic : notify_on_commit_) wakeup_.notify(topic);
  notify_on_commit_.clear();
}

void SqliteSession::rollback() {
  in_transaction_ = false;
  notify_on_commit_.clear();
  if (!sqlite3_get_autocommit(db_.get())) execute("ROLLBACK", {});
}

bool SqliteSession::table_exists(const std::string& table) {
  return !query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = $1", {table}).empty();
}

void SqliteSession::notify(const std::string& topic) {
  if (in_transaction_)
    notify_on_commit_.insert(topic);
  else
    wakeup_.notify(topic);
}

std::unique_ptr<WakeupListener> SqliteSession::listen(const std::vector<std::string>& topics) {
  return wakeup_.listen(topics);
}

}  // namespace taskengine::sql
