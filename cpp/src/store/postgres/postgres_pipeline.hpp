#pragma once

#include <libpq-fe.h>

#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "store/sql/sql_session.hpp"

namespace taskengine::sql {

// One libpq connection in pipeline mode. Statements are queued (and, past
// libpq's buffer threshold, already streamed to the server) and sync()
// sends what is left with a Sync message and reads every answer back: one
// round trip however many statements were queued. libpqxx 6.4 has no
// pipeline mode, hence libpq itself here.
//
// After an error the server skips the rest of the queue up to the Sync:
// inside an explicit transaction that transaction is then aborted
// (transaction_status() says so) and needs a ROLLBACK.
class PgPipeline {
 public:
  // ConnectionError if the server cannot be reached.
  explicit PgPipeline(const std::string& conninfo);
  ~PgPipeline();
  PgPipeline(const PgPipeline&) = delete;
  PgPipeline& operator=(const PgPipeline&) = delete;

  // Queues the preparation of `sql` as statement `name`. `forget` runs when
  // the server did not prepare it (an error, or skipped after another one),
  // so the caller prepares it again next time.
  void prepare(const std::string& name, const std::string& sql, std::function<void()> forget);
  // Queues a run of a prepared statement; `pending` receives its answer.
  void run_prepared(const std::string& name, const Params& params, Pending pending);
  // Queues a statement without parameters, unprepared. With `expect_tag`,
  // any other command tag is an error (a COMMIT that answers ROLLBACK).
  void run(const std::string& sql, Pending pending, const char* expect_tag = nullptr);
  // Runs `sql`, which may hold several statements, with the simple query
  // protocol (pipeline mode allows one statement per message): leaves
  // pipeline mode for it. Only with nothing queued.
  void run_script(const std::string& sql);
  // Sends the queue and reads every answer. Throws the first error:
  // ConnectionError when the connection is gone, else StoreError with the
  // server's message. Nothing queued: returns at once.
  void sync();
  // Writes the queued statements out to the server without a Sync: the
  // server runs them while more are queued. Their answers wait for sync().
  void push();
  bool empty() const { return queue_.empty(); }
  bool connected() const { return PQstatus(connection_) == CONNECTION_OK; }
  PGTransactionStatusType transaction_status() const;

 private:
  struct Entry {
    Pending pending;               // a statement's answer
    std::function<void()> forget;  // set for a preparation
    const char* expect_tag = nullptr;
  };
  struct ResultDeleter {
    void operator()(PGresult* r) const { PQclear(r); }
  };
  using Result = std::unique_ptr<PGresult, ResultDeleter>;

  [[noreturn]] void fail_send(const char* what);
  // Reads the answers of one queued entry; records the first error.
  void read_entry(Entry& entry);
  void record_error(const std::string& message);

  PGconn* connection_ = nullptr;
  std::deque<Entry> queue_;
  std::string error_;  // the first error of the current sync
  bool connection_lost_ = false;
};

}  // namespace taskengine::sql
