#include "store/postgres/postgres_listener.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <pqxx/pqxx>

#include "taskengine/errors.hpp"

namespace taskengine::sql {
namespace {

// Maps libpqxx's exceptions onto the engine's own, keeping the server's
// message: ConnectionError for "cannot reach the database", StoreError for
// everything the server refused.
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
  PostgresListener(const std::string& url, const std::vector<std::string>& channels)
      : interrupt_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (interrupt_ < 0) throw StoreError(std::string("eventfd: ") + std::strerror(errno));
    translated("LISTEN", [&] {
      connection_ = std::make_unique<pqxx::connection>(url);
      for (const auto& channel : channels)
        receivers_.push_back(std::make_unique<NotificationFlag>(*connection_, channel, notified_));
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

std::unique_ptr<WakeupListener> make_postgres_listener(const std::string& url,
                                                       const std::vector<std::string>& channels) {
  return std::make_unique<PostgresListener>(url, channels);
}

}  // namespace taskengine::sql
