#pragma once

#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <unordered_map>

#include "store/sql/sql_session.hpp"

namespace taskengine::sql {

// One libpqxx connection. Statements are prepared once per connection and
// named by a counter; NOTIFY rides inside the transaction that makes the
// change visible, so a woken worker always finds it.
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
  void execute_script(const std::string& sql) override;
  bool table_exists(const std::string& table) override;
  // The wire protocol counts parameters in 16 bits.
  std::size_t max_parameters() const override { return 65535; }
  void notify(const std::string& topic) override;
  std::unique_ptr<WakeupListener> listen(const std::vector<std::string>& topics) override;

  static constexpr const char* kChannelPrefix = "taskengine_";

 private:
  pqxx::result run(const std::string& sql, const Params& params);
  const std::string& statement_name(const std::string& sql);

  std::string url_;
  std::unique_ptr<pqxx::connection> connection_;
  std::unique_ptr<pqxx::work> transaction_;
  std::unordered_map<std::string, std::string> statements_;
};

}  // namespace taskengine::sql
