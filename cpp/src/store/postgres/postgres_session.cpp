#include "store/postgres/postgres_session.hpp"

#include "store/postgres/postgres_listener.hpp"
#include "taskengine/errors.hpp"

namespace taskengine::sql {

PostgresSession::PostgresSession(std::string url) : url_(std::move(url)) { connect(); }

void PostgresSession::connect() {
  statements_.clear();  // a new connection has none of them prepared
  pipeline_ = std::make_unique<PgPipeline>(url_);
  pipeline_->run_script("SET client_min_messages TO WARNING");
}

void PostgresSession::reconnect_if_lost() {
  // A lost connection fails the call that meets it (ConnectionError) and
  // takes its transaction with it; the next one outside a transaction
  // connects again, so a store survives a restart of the server.
  if (!in_transaction_ && !pipeline_->connected()) connect();
}

// Closing the connection ends an open transaction on the server (rolled back).
PostgresSession::~PostgresSession() = default;

const std::string& PostgresSession::statement_name(const std::string& sql) {
  auto it = statements_.find(sql);
  if (it != statements_.end()) return it->second;
  it = statements_.emplace(sql, "te_" + std::to_string(next_statement_++)).first;
  try {
    pipeline_->prepare(it->second, sql, [this, sql] { statements_.erase(sql); });
  } catch (...) {
    statements_.erase(it);
    throw;
  }
  return it->second;
}

void PostgresSession::start_transaction() {
  if (!in_transaction_ || begun_) return;
  pipeline_->run("BEGIN", Pending());
  begun_ = true;
}

Pending PostgresSession::enqueue(const std::string& sql, const Params& params) {
  reconnect_if_lost();
  start_transaction();
  Pending pending;
  pipeline_->run_prepared(statement_name(sql), params, pending);
  return pending;
}

void PostgresSession::sync(const char* what) {
  try {
    pipeline_->sync();
  } catch (const ConnectionError& e) {
    throw ConnectionError(std::string(what) + ": " + e.what());
  } catch (const StoreError& e) {
    throw StoreError(std::string(what) + ": " + e.what());
  }
}

Rows PostgresSession::query(const std::string& sql, const Params& params) {
  Pending pending = enqueue(sql, params);
  sync("query failed");
  return pending.take_rows();
}

std::int64_t PostgresSession::execute(const std::string& sql, const Params& params) {
  Pending pending = enqueue(sql, params);
  sync("statement failed");
  return pending.affected();
}

Pending PostgresSession::send(const std::string& sql, const Params& params) {
  Pending pending = enqueue(sql, params);
  // Outside a transaction the statement is its own (autocommit): queued,
  // it would share an implicit transaction with the next one.
  if (!in_transaction_) sync("statement failed");
  return pending;
}

void PostgresSession::push() {
  try {
    pipeline_->push();
  } catch (const ConnectionError& e) {
    throw ConnectionError(std::string("statement failed: ") + e.what());
  }
}

void PostgresSession::execute_script(const std::string& sql) {
  reconnect_if_lost();
  start_transaction();
  sync("statement failed");  // BEGIN and what was sent ahead, first
  try {
    pipeline_->run_script(sql);
  } catch (const ConnectionError& e) {
    throw ConnectionError(std::string("statement failed: ") + e.what());
  } catch (const StoreError& e) {
    throw StoreError(std::string("statement failed: ") + e.what());
  }
}

void PostgresSession::begin(bool) {
  if (in_transaction_) throw StoreError("BEGIN: a transaction is already open on this session");
  reconnect_if_lost();
  in_transaction_ = true;
  begun_ = false;
}

void PostgresSession::commit() {
  if (!in_transaction_) throw StoreError("COMMIT: no transaction is open on this session");
  bool begun = begun_;
  in_transaction_ = false;
  begun_ = false;
  if (!begun) return;  // nothing was sent: nothing to commit
  // A COMMIT of a transaction the server had aborted answers ROLLBACK.
  pipeline_->run("COMMIT", Pending(), "COMMIT");
  sync("COMMIT");
}

void PostgresSession::rollback() {
  in_transaction_ = false;
  begun_ = false;
  // A lost connection took the transaction with it.
  if (!pipeline_->connected()) return;
  if (pipeline_->empty() && pipeline_->transaction_status() == PQTRANS_IDLE) return;
  // Statements sent ahead may still be queued (the caller failed before
  // waiting for them): they run, and are rolled back with the rest.
  pipeline_->run("ROLLBACK", Pending());
  try {
    pipeline_->sync();
  } catch (const ConnectionError&) {
    throw;
  } catch (const StoreError&) {
    // One of them failed, so the ROLLBACK behind it was skipped: the
    // transaction is aborted and the next ROLLBACK ends it.
  }
  if (pipeline_->transaction_status() != PQTRANS_IDLE) {
    pipeline_->run("ROLLBACK", Pending());
    sync("ROLLBACK");
  }
}

bool PostgresSession::table_exists(const std::string& table) {
  return !query(
              "SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND "
              "tablename = $1",
              {table})
              .empty();
}

void PostgresSession::notify(const std::string& topic) {
  send("SELECT pg_notify($1, '')", {std::string(kChannelPrefix) + topic});
}

std::unique_ptr<WakeupListener> PostgresSession::listen(const std::vector<std::string>& topics) {
  std::vector<std::string> channels;
  for (const auto& topic : topics) channels.push_back(kChannelPrefix + topic);
  return make_postgres_listener(url_, channels);
}

}  // namespace taskengine::sql
