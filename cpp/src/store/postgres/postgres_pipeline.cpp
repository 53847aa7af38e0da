#include "store/postgres/postgres_pipeline.hpp"

#include <spdlog/spdlog.h>

#include <charconv>
#include <cstring>
#include <vector>

#include "taskengine/errors.hpp"

namespace taskengine::sql {
namespace {

std::string trimmed(const char* message) {
  std::string out = message ? message : "";
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

Rows rows_of(const PGresult* result) {
  int count = PQntuples(result);
  int columns = PQnfields(result);
  Rows rows;
  rows.reserve(static_cast<std::size_t>(count));
  for (int r = 0; r < count; ++r) {
    std::vector<Value> values;
    values.reserve(static_cast<std::size_t>(columns));
    for (int c = 0; c < columns; ++c) {
      if (PQgetisnull(result, r, c))
        values.emplace_back(std::monostate{});
      else
        values.emplace_back(std::string(PQgetvalue(result, r, c),
                                        static_cast<std::size_t>(PQgetlength(result, r, c))));
    }
    rows.emplace_back(std::move(values));
  }
  return rows;
}

std::int64_t affected_of(const PGresult* result) {
  const char* tuples = PQcmdTuples(const_cast<PGresult*>(result));
  std::int64_t count = 0;
  if (tuples && *tuples) std::from_chars(tuples, tuples + std::strlen(tuples), count);
  return count;
}

// Server warnings (client_min_messages is WARNING) go to the log, not to
// stderr as libpq would have it.
void log_notice(void*, const char* message) { spdlog::warn("PostgreSQL: {}", trimmed(message)); }

}  // namespace

PgPipeline::PgPipeline(const std::string& conninfo) : connection_(PQconnectdb(conninfo.c_str())) {
  if (!connection_ || PQstatus(connection_) != CONNECTION_OK) {
    std::string message = connection_ ? trimmed(PQerrorMessage(connection_)) : "out of memory";
    PQfinish(connection_);
    connection_ = nullptr;
    throw ConnectionError("cannot connect to PostgreSQL at '" + conninfo + "': " + message);
  }
  PQsetNoticeProcessor(connection_, log_notice, nullptr);
  if (!PQenterPipelineMode(connection_)) {
    std::string message = trimmed(PQerrorMessage(connection_));
    PQfinish(connection_);
    connection_ = nullptr;
    throw ConnectionError("cannot use PostgreSQL at '" + conninfo + "': " + message);
  }
}

PgPipeline::~PgPipeline() { PQfinish(connection_); }

void PgPipeline::fail_send(const char* what) {
  std::string message = std::string(what) + ": " + trimmed(PQerrorMessage(connection_));
  if (PQstatus(connection_) == CONNECTION_BAD) {
    queue_.clear();
    throw ConnectionError(std::string(what) +
                          ": connection lost: " + trimmed(PQerrorMessage(connection_)));
  }
  throw StoreError(message);
}

void PgPipeline::prepare(const std::string& name, const std::string& sql,
                         std::function<void()> forget) {
  if (!PQsendPrepare(connection_, name.c_str(), sql.c_str(), 0, nullptr))
    fail_send("cannot send a statement");
  queue_.push_back({Pending(), std::move(forget), nullptr});
}

void PgPipeline::run_prepared(const std::string& name, const Params& params, Pending pending) {
  // Numbers travel as text; strings (bulk inserts' JSON payloads among
  // them) are sent from where they are, not copied.
  std::vector<std::string> storage(params.size());
  std::vector<const char*> values(params.size(), nullptr);
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (auto p = std::get_if<std::int64_t>(&params[i])) {
      storage[i] = std::to_string(*p);
      values[i] = storage[i].c_str();
    } else if (auto p = std::get_if<double>(&params[i])) {
      char buffer[32];
      auto end = std::to_chars(buffer, buffer + sizeof buffer, *p).ptr;  // shortest round trip
      storage[i].assign(buffer, end);
      values[i] = storage[i].c_str();
    } else if (auto p = std::get_if<std::string>(&params[i])) {
      values[i] = p->c_str();
    }
  }
  if (!PQsendQueryPrepared(connection_, name.c_str(), static_cast<int>(values.size()),
                           values.data(), nullptr, nullptr, 0))
    fail_send("cannot send a statement");
  queue_.push_back({std::move(pending), nullptr, nullptr});
}

void PgPipeline::run(const std::string& sql, Pending pending, const char* expect_tag) {
  if (!PQsendQueryParams(connection_, sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0))
    fail_send("cannot send a statement");
  queue_.push_back({std::move(pending), nullptr, expect_tag});
}

void PgPipeline::record_error(const std::string& message) {
  if (error_.empty()) error_ = message;
}

void PgPipeline::read_entry(Entry& entry) {
  for (;;) {
    Result result(PQgetResult(connection_));
    if (!result) return;  // this entry's answers are all in
    ExecStatusType status = PQresultStatus(result.get());
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
      if (entry.expect_tag && std::strcmp(PQcmdStatus(result.get()), entry.expect_tag) != 0)
        record_error(std::string("expected ") + entry.expect_tag + ", the server answered " +
                     PQcmdStatus(result.get()));
      else if (!entry.forget)
        entry.pending.fulfil(rows_of(result.get()), affected_of(result.get()));
      continue;
    }
    // Skipped after an earlier error, or failed itself: a preparation that
    // did not happen must be sent again next time.
    if (entry.forget) entry.forget();
    if (status == PGRES_PIPELINE_ABORTED) continue;
    record_error(trimmed(PQresultErrorMessage(result.get())));
    if (PQstatus(connection_) == CONNECTION_BAD) {
      connection_lost_ = true;
      return;
    }
  }
}

void PgPipeline::sync() {
  if (queue_.empty()) return;
  error_.clear();
  connection_lost_ = false;
  if (!PQpipelineSync(connection_)) fail_send("cannot send a statement");
  for (auto& entry : queue_) {
    read_entry(entry);
    if (connection_lost_) break;
  }
  if (!connection_lost_) {
    Result result(PQgetResult(connection_));
    if (!result || PQresultStatus(result.get()) != PGRES_PIPELINE_SYNC) {
      record_error(result ? trimmed(PQresultErrorMessage(result.get()))
                          : trimmed(PQerrorMessage(connection_)));
      connection_lost_ = PQstatus(connection_) == CONNECTION_BAD;
      if (!connection_lost_) record_error("the server's answers are out of step");
    }
  }
  queue_.clear();
  if (connection_lost_ || PQstatus(connection_) == CONNECTION_BAD)
    throw ConnectionError("connection lost: " + error_);
  if (!error_.empty()) throw StoreError(error_);
}

void PgPipeline::push() {
  // Blocking connection: PQflush returns once libpq's buffer is written.
  if (PQflush(connection_) != 0) fail_send("cannot send a statement");
}

void PgPipeline::run_script(const std::string& sql) {
  if (!queue_.empty()) throw StoreError("a script was run with statements still queued");
  if (!PQexitPipelineMode(connection_)) fail_send("cannot run a script");
  Result result(PQexec(connection_, sql.c_str()));
  ExecStatusType status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  std::string message =
      result ? trimmed(PQresultErrorMessage(result.get())) : trimmed(PQerrorMessage(connection_));
  if (PQstatus(connection_) == CONNECTION_BAD) throw ConnectionError("connection lost: " + message);
  if (!PQenterPipelineMode(connection_)) fail_send("cannot run a script");
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) throw StoreError(message);
}

PGTransactionStatusType PgPipeline::transaction_status() const {
  return PQtransactionStatus(connection_);
}

}  // namespace taskengine::sql
