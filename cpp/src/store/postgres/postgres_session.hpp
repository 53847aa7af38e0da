#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "store/postgres/postgres_pipeline.hpp"
#include "store/sql/sql_session.hpp"

namespace taskengine::sql {

// One PostgreSQL connection, in libpq's pipeline mode (PgPipeline), so that
// a transaction pays a round trip only where it waits for an answer: BEGIN
// travels with the first statement, statements sent ahead (send()) and the
// queued NOTIFYs with the next statement or with COMMIT. A single dispatch
// (BEGIN, INSERT ... RETURNING, pg_notify, COMMIT) is one round trip.
// Statements are prepared once per connection, named by a counter; the
// preparation rides in the same round trip as the statement's first run.
class PostgresSession final : public Session {
 public:
  explicit PostgresSession(std::string url);
  ~PostgresSession() override;

  Dialect dialect() const override { return Dialect::Postgres; }
  std::string url() const override { return url_; }
  void begin(bool for_write) override;
  void commit() override;
  void rollback() override;
  Rows query(const std::string& sql, const Params& params) override;
  std::int64_t execute(const std::string& sql, const Params& params) override;
  Pending send(const std::string& sql, const Params& params) override;
  void flush() override { sync("query failed"); }
  void push() override;
  void execute_script(const std::string& sql) override;
  bool table_exists(const std::string& table) override;
  // The wire protocol counts parameters in 16 bits.
  std::size_t max_parameters() const override { return 65535; }
  // Inside a transaction: a pg_notify sent with COMMIT (delivered on commit,
  // so a woken worker always finds the change).
  void notify(const std::string& topic) override;
  std::unique_ptr<WakeupListener> listen(const std::vector<std::string>& topics) override;

  static constexpr const char* kChannelPrefix = "taskengine_";

 private:
  void connect();
  void reconnect_if_lost();
  // Queues BEGIN first if the open transaction has sent nothing yet.
  void start_transaction();
  // Queues a prepared statement's run (and its preparation, the first time).
  Pending enqueue(const std::string& sql, const Params& params);
  // Sends the queue and waits for every answer, as `what` failed if not.
  void sync(const char* what);
  const std::string& statement_name(const std::string& sql);

  std::string url_;
  std::unique_ptr<PgPipeline> pipeline_;
  std::unordered_map<std::string, std::string> statements_;
  std::uint64_t next_statement_ = 0;
  // begin() was called; `begun_`: BEGIN has been queued.
  bool in_transaction_ = false;
  bool begun_ = false;
};

}  // namespace taskengine::sql
