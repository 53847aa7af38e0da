#pragma once

#include <memory>
#include <string>

#include "taskengine/store.hpp"

namespace taskengine {

// Wake-ups between processes on one host, for the SQLite store, which has no
// LISTEN/NOTIFY. Each listening worker binds a Unix datagram socket in a
// directory that belongs to the database file; a dispatcher sends one byte
// to every socket there after it commits. Delivery takes tens of
// microseconds; a socket whose owner died is removed by the next sender.
class LocalWakeup {
 public:
  explicit LocalWakeup(const std::string& database_path);
  // Sends a wake-up to every listener of `topic`. Never throws: a lost
  // wake-up only costs latency, because workers also poll.
  void notify(const std::string& topic) const;
  // One socket per topic, all waited on together.
  std::unique_ptr<WakeupListener> listen(const std::vector<std::string>& topics) const;
  const std::string& directory() const { return directory_; }

 private:
  std::string directory_;
};

}  // namespace taskengine
