#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "taskengine/store.hpp"

namespace taskengine::sql {

// A statement parameter or a column value. Booleans travel as integers
// (both backends accept 0/1), JSON as text.
using Value = std::variant<std::monostate, std::int64_t, double, std::string>;

Value null();
template <typename T>
Value optional_value(const std::optional<T>& v) {
  return v ? Value(*v) : Value(std::monostate{});
}

class Row {
 public:
  explicit Row(std::vector<Value> values) : values_(std::move(values)) {}
  bool is_null(std::size_t i) const;
  std::int64_t integer(std::size_t i) const;
  double real(std::size_t i) const;
  std::string text(std::size_t i) const;
  bool boolean(std::size_t i) const;  // 0/1 (SQLite) or t/f (PostgreSQL)
  std::optional<std::int64_t> optional_integer(std::size_t i) const;
  std::optional<double> optional_real(std::size_t i) const;
  std::optional<std::string> optional_text(std::size_t i) const;
  std::size_t size() const { return values_.size(); }

 private:
  std::vector<Value> values_;
};

using Rows = std::vector<Row>;
using Params = std::vector<Value>;

enum class Dialect { Sqlite, Postgres };

// The result of a statement sent ahead (Session::send): filled in once the
// session has heard back from the server, i.e. after the next query(),
// execute() or commit(). A failed statement fails that call instead, so a
// caller reads a Pending only after one of them returned.
class Pending {
 public:
  Pending() : state_(std::make_shared<State>()) {}
  bool ready() const { return state_->ready; }
  // StoreError when the statement has not been answered yet.
  const Rows& rows() const;
  Rows take_rows();
  std::int64_t affected() const;
  void fulfil(Rows rows, std::int64_t affected);

 private:
  struct State {
    bool ready = false;
    Rows rows;
    std::int64_t affected = 0;
  };
  std::shared_ptr<State> state_;
};

// The placeholders of an IN list made of the last `count` values of
// `params`, which it pads to a power of two with copies of the last value
// (IN ignores duplicates). Sessions prepare and cache a statement per text,
// on PostgreSQL on the server too: padded, a query with a list of up to
// 1,024 ids has at most 11 texts instead of one per length, and the cache
// stays small however long a worker runs.
std::string padded_in_list(Params& params, std::size_t count);

// Calls fn(Params) for each run of up to `chunk` ids, in order: id lists
// stay within the backends' parameter limits.
template <typename Fn>
void for_id_chunks(const std::vector<TaskId>& ids, std::size_t chunk, Fn&& fn) {
  for (std::size_t start = 0; start < ids.size(); start += chunk) {
    std::size_t end = std::min(ids.size(), start + chunk);
    fn(Params(ids.begin() + static_cast<std::ptrdiff_t>(start),
              ids.begin() + static_cast<std::ptrdiff_t>(end)));
  }
}

// One database connection, as the shared SQL store sees it. Statements are
// written once with PostgreSQL's $1..$n placeholders; the SQLite session
// rewrites them to ?1..?n. Sessions cache prepared statements by text.
class Session {
 public:
  virtual ~Session() = default;
  virtual Dialect dialect() const = 0;
  virtual std::string url() const = 0;

  // `for_write` takes the write lock up front on SQLite (BEGIN IMMEDIATE)
  // so two claimers never deadlock upgrading a read lock. On PostgreSQL
  // BEGIN goes with the transaction's first statement, and COMMIT with the
  // statements sent ahead and the queued NOTIFYs: a transaction costs a
  // round trip per statement whose answer it waits for, plus the commit.
  virtual void begin(bool for_write) = 0;
  virtual void commit() = 0;
  virtual void rollback() = 0;

  virtual Rows query(const std::string& sql, const Params& params = {}) = 0;
  virtual std::int64_t execute(const std::string& sql, const Params& params = {}) = 0;
  // Sends a statement without waiting for its answer. On PostgreSQL it
  // travels with the next statement that waits (query, execute) or with
  // COMMIT, in one round trip, and the server runs them in order; on SQLite
  // it runs at once. Its error, if any, is thrown by that later call, and
  // the transaction is then rolled back like after any failed statement.
  virtual Pending send(const std::string& sql, const Params& params = {}) = 0;
  // Waits for the answers of everything sent ahead (nothing on SQLite).
  virtual void flush() = 0;
  // Puts what was sent ahead on the wire now, without waiting for answers,
  // so the server works on it while the caller builds what follows (libpq
  // holds back up to 64 KB otherwise). Nothing to do on SQLite.
  virtual void push() {}
  // Runs a statement with no parameters and no result, outside the cache
  // (schema changes).
  virtual void execute_script(const std::string& sql) = 0;
  virtual bool table_exists(const std::string& table) = 0;
  // The most parameters one statement may take (multi-row INSERTs are cut
  // into chunks below it).
  virtual std::size_t max_parameters() const = 0;

  // Wake-ups by topic (short names of letters, digits and '-'). On
  // PostgreSQL notify() queues a NOTIFY inside the open transaction
  // (delivered on commit); on SQLite it is sent after commit.
  virtual void notify(const std::string& topic) = 0;
  virtual std::unique_ptr<WakeupListener> listen(const std::vector<std::string>& topics) = 0;
};

// Commits on commit(), rolls back on scope exit otherwise: a failed call
// leaves the store as it was.
class Transaction {
 public:
  Transaction(Session& session, bool for_write);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit();

 private:
  Session& session_;
  bool open_ = true;
};

}  // namespace taskengine::sql
