#include "store/postgres/postgres_session.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "taskengine/errors.hpp"

namespace taskengine::sql {
namespace {

// Maps libpqxx's exceptions onto the engine's own, keeping the server's
// message: a caller sees ConnectionError for "cannot reach the database"
// and StoreError for everything the server refused.
template <typename F>
auto translated(const char* what, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const pqxx::broken_connection& e) {
    throw ConnectionError(std::string(what) + ": connection lost: " + e.what());
  } catch (const pqxx::sql_error& e) {
    throw StoreError(std::string(what) + ": " + e.what());
  } catch (const pqxx::failure& e) {
    throw StoreError(std::string(what) + ": " + e.what());
  }
}

class NotificationFlag final : public pqxx::notification_receiver {
 public:
  NotificationFlag(pqxx::connection_base& connection, const std::string& channel, bool& flag)
      : pqxx::notification_receiver(connection, channel), flag_(flag) {}
  void operator()(const std::string&, int) override { flag_ = true; }

 private:
  bool& flag_;
};

// Waits on the connection's socket and an eventfd together, so a worker can
// be interrupted out of its sleep without a NOTIFY.
class PostgresListener final : public WakeupListener {
 public:
  PostgresListener(const std::string& url, const std::vector<std::string>& topics)
      : interrupt_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (interrupt_ < 0) throw StoreError(std::string("eventfd: ") + std::strerror(errno));
    translated("LISTEN", [&] {
      connection_ = std::make_unique<pqxx::connection>(url);
      for (const auto& topic : topics)
        receivers_.push_back(std::make_unique<NotificationFlag>(
            *connection_, PostgresSession::kChannelPrefix + topic, notified_));
    });
  }

  ~PostgresListener() override {
    receivers_.clear();
    ::close(interrupt_);
  }

  bool wait(std::chrono::milliseconds timeout) override {
    return translated("waiting for notifications", [&] {
      notified_ = false;
      connection_->get_notifs();
      if (notified_) return true;
      pollfd fds[2] = {{connection_->sock(), POLLIN, 0}, {interrupt_, POLLIN, 0}};
      int ready = ::poll(fds, 2, static_cast<int>(timeout.count()));
      std::uint64_t value;
      bool interrupted = false;
      while (::read(interrupt_, &value, sizeof value) > 0) interrupted = true;
      if (ready > 0 && (fds[0].revents & POLLIN)) connection_->get_notifs();
      return notified_ || interrupted;
    });
  }

  void interrupt() override {
    std::uint64_t one = 1;
    [[maybe_unused]] auto written = ::write(interrupt_, &one, sizeof one);
  }

 private:
  int interrupt_;
  bool notified_ = false;
  std::unique_ptr<pqxx::connection> connection_;
  std::vector<std::unique_ptr<NotificationFlag>> receivers_;
};

}  // namespace

PostgresSession::PostgresSession(std::string url) : url_(std::move(url)) {
  try {
    connection_ = std::make_unique<pqxx::connection>(url_);
  } catch (const pqxx::broken_connection& e) {
    throw ConnectionError("cannot connect to PostgreSQL at '" + url_ + "': " + e.what());
  } catch (const std::exception& e) {
    throw ConnectionError("cannot connect to PostgreSQL at '" + url_ + "': " + e.what());
  }
  execute_script("SET client_min_messages TO WARNING");
}

PostgresSession::~PostgresSession() {
  transaction_.reset();  // aborts an open transaction
}

const std::string& PostgresSession::statement_name(const std::string& sql) {
  auto it = statements_.find(sql);
  if (it != statements_.end()) return it->second;
  std::string name = "te_" + std::to_string(statements_.size());
  connection_->prepare(name, sql);
  return statements_.emplace(sql, name).first->second;
}

pqxx::result PostgresSession::run(const std::string& sql, const Params& params) {
  return translated("query failed", [&] {
    // Numbers are sent as text; strings (JSON payloads of bulk inserts
    // among them) are sent from where they are, not copied.
    std::vector<std::string> storage(params.size());
    std::vector<const char*> values(params.size(), nullptr);
    for (std::size_t i = 0; i < params.size(); ++i) {
      if (auto p = std::get_if<std::int64_t>(&params[i])) {
        storage[i] = std::to_string(*p);
        values[i] = storage[i].c_str();
      } else if (auto p = std::get_if<double>(&params[i])) {
        storage[i] = pqxx::to_string(*p);
        values[i] = storage[i].c_str();
      } else if (auto p = std::get_if<std::string>(&params[i])) {
        values[i] = p->c_str();
      }
    }
    const std::string& name = statement_name(sql);
    auto dynamic = pqxx::prepare::make_dynamic_params(values);
    if (transaction_) return transaction_->exec_prepared(name, dynamic);
    pqxx::nontransaction autocommit(*connection_);
    return autocommit.exec_prepared(name, dynamic);
  });
}

Rows PostgresSession::query(const std::string& sql, const Params& params) {
  pqxx::result result = run(sql, params);
  Rows rows;
  rows.reserve(result.size());
  for (const auto& row : result) {
    std::vector<Value> values;
    values.reserve(row.size());
    for (const auto& field : row) {
      if (field.is_null())
        values.emplace_back(std::monostate{});
      else
        values.emplace_back(std::string(field.c_str(), field.size()));
    }
    rows.emplace_back(std::move(values));
  }
  return rows;
}

std::int64_t PostgresSession::execute(const std::string& sql, const Params& params) {
  return static_cast<std::int64_t>(run(sql, params).affected_rows());
}

void PostgresSession::execute_script(const std::string& sql) {
  translated("statement failed", [&] {
    if (transaction_) {
      transaction_->exec(sql);
    } else {
      pqxx::nontransaction autocommit(*connection_);
      autocommit.exec(sql);
    }
  });
}

void PostgresSession::begin(bool) {
  translated("BEGIN", [&] { transaction_ = std::make_unique<pqxx::work>(*connection_); });
}

void PostgresSession::commit() {
  translated("COMMIT", [&] {
    auto transaction = std::move(transaction_);
    transaction->commit();
  });
}

void PostgresSession::rollback() {
  auto transaction = std::move(transaction_);
  if (transaction) transaction->abort();
}

bool PostgresSession::table_exists(const std::string& table) {
  return !query(
              "SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND "
              "tablename = $1",
              {table})
              .empty();
}

void PostgresSession::notify(const std::string& topic) {
  execute("SELECT pg_notify($1, '')", {std::string(kChannelPrefix) + topic});
}

std::unique_ptr<WakeupListener> PostgresSession::listen(const std::vector<std::string>& topics) {
  return std::make_unique<PostgresListener>(url_, topics);
}

}  // namespace taskengine::sql
