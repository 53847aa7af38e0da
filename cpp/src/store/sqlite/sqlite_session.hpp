#pragma once

#include <sqlite3.h>

#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>

#include "store/local_wakeup.hpp"
#include "store/sql/sql_session.hpp"

namespace taskengine::sql {

// One SQLite connection in WAL mode with a busy timeout, so several worker
// processes on one host can share the file.
class SqliteSession final : public Session {
 public:
  SqliteSession(std::string url, const std::string& path);
  ~SqliteSession() override;

  Dialect dialect() const override { return Dialect::Sqlite; }
  std::string url() const override { return url_; }
  void begin(bool for_write) override;
  void commit() override;
  void rollback() override;
  Rows query(const std::string& sql, const Params& params) override;
  std::int64_t execute(const std::string& sql, const Params& params) override;
  // Nothing to gain from waiting later in-process: runs at once.
  Pending send(const std::string& sql, const Params& params) override;
  void flush() override {}
  void execute_script(const std::string& sql) override;
  bool table_exists(const std::string& table) override;
  std::size_t max_parameters() const override;
  void notify(const std::string& topic) override;
  std::unique_ptr<WakeupListener> listen(const std::vector<std::string>& topics) override;

 private:
  struct StatementDeleter {
    void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
  };
  struct ConnectionDeleter {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
  };
  using StatementPtr = std::unique_ptr<sqlite3_stmt, StatementDeleter>;

  sqlite3_stmt* prepare(const std::string& sql, const Params& params);
  // The busy handler: retries a locked write with short, growing sleeps
  // for up to 30 s.
  static int on_busy(void* self, int tries);
  [[noreturn]] void fail(int code, const std::string& what);

  std::string url_;
  std::unique_ptr<sqlite3, ConnectionDeleter> db_;
  std::unordered_map<std::string, StatementPtr> statements_;
  LocalWakeup wakeup_;
  bool in_transaction_ = false;
  std::chrono::steady_clock::time_point busy_since_;
  std::set<std::string> notify_on_commit_;
};

}  // namespace taskengine::sql
