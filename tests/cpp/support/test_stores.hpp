#pragma once

#include <memory>
#include <string>

namespace taskengine::testing {

// A store that exists for one test and is removed after it: a SQLite file
// in a fresh temporary directory, or a uniquely named PostgreSQL database
// created through $TASKENGINE_TEST_POSTGRES (default
// postgresql://postgres@127.0.0.1:5432/postgres) and dropped afterwards.
class TestStore {
 public:
  virtual ~TestStore() = default;
  virtual std::string url() const = 0;
};

// "sqlite" or "postgresql". Returns nullptr when PostgreSQL is not
// reachable and the environment does not require it
// (TASKENGINE_REQUIRE_POSTGRES or CI set): the caller skips. When required,
// an unreachable server throws.
std::unique_ptr<TestStore> make_test_store(const std::string& backend);

}  // namespace taskengine::testing
