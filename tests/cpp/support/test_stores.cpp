#include "support/test_stores.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <pqxx/pqxx>
#include <random>
#include <stdexcept>

namespace taskengine::testing {
namespace {

std::string admin_url() {
  const char* env = std::getenv("TASKENGINE_TEST_POSTGRES");
  return env && *env ? env : "postgresql://postgres@127.0.0.1:5432/postgres";
}

bool postgres_required() {
  return std::getenv("TASKENGINE_REQUIRE_POSTGRES") != nullptr || std::getenv("CI") != nullptr;
}

std::string unique_suffix() {
  static std::atomic<int> counter{0};
  std::random_device device;
  return std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" +
         std::to_string(device() % 1000000);
}

// Replaces the database name (the path after the last '/') of a URL.
std::string with_database(const std::string& url, const std::string& database) {
  auto scheme = url.find("://");
  auto slash = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  auto query = url.find('?');
  std::string base = slash == std::string::npos ? url.substr(0, query) : url.substr(0, slash);
  std::string tail = query == std::string::npos ? "" : url.substr(query);
  return base + "/" + database + tail;
}

class SqliteTestStore final : public TestStore {
 public:
  SqliteTestStore() {
    directory_ = std::filesystem::temp_directory_path() / ("taskengine_test_" + unique_suffix());
    std::filesystem::create_directories(directory_);
  }
  ~SqliteTestStore() override {
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
  }
  std::string url() const override { return "sqlite://" + (directory_ / "store.db").string(); }

 private:
  std::filesystem::path directory_;
};

class PostgresTestStore final : public TestStore {
 public:
  explicit PostgresTestStore(std::string admin) : admin_(std::move(admin)) {
    name_ = "taskengine_test_" + unique_suffix();
    pqxx::connection connection(admin_);
    pqxx::nontransaction txn(connection);
    txn.exec("CREATE DATABASE " + name_);
  }
  ~PostgresTestStore() override {
    try {
      pqxx::connection connection(admin_);
      pqxx::nontransaction txn(connection);
      txn.exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    } catch (const std::exception&) {
      // Best effort: a leftover test database is harmless and uniquely named.
    }
  }
  std::string url() const override { return with_database(admin_, name_); }

 private:
  std::string admin_;
  std::string name_;
};

}  // namespace

std::unique_ptr<TestStore> make_test_store(const std::string& backend) {
  if (backend == "sqlite") return std::make_unique<SqliteTestStore>();
  try {
    return std::make_unique<PostgresTestStore>(admin_url());
  } catch (const pqxx::broken_connection& e) {
    if (postgres_required())
      throw std::runtime_error("PostgreSQL is required but unreachable at " + admin_url() + ": " +
                               e.what());
    return nullptr;
  }
}

}  // namespace taskengine::testing
