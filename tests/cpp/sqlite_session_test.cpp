// The SQLite driver's busy handling: a writer that finds the write lock taken
// waits for it instead of failing.
#include "store/sqlite/sqlite_session.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>

namespace taskengine::sql {
namespace {

class SqliteBusy : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("te-sqlite-busy-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "store.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  SqliteSession open() { return SqliteSession("sqlite://" + path_, path_); }

  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(SqliteBusy, AWriterWaitsForTheLockHolderAndThenWrites) {
  SqliteSession holder = open();
  holder.execute_script("CREATE TABLE t (v INTEGER)");
  holder.begin(true);
  holder.execute("INSERT INTO t (v) VALUES (1)", {});

  std::atomic<bool> written{false};
  std::thread writer([&] {
    SqliteSession other = open();
    other.begin(true);  // blocks until the holder commits
    other.execute("INSERT INTO t (v) VALUES (2)", {});
    other.commit();
    written = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(written.load());  // still waiting: the lock is held
  holder.commit();
  writer.join();
  EXPECT_TRUE(written.load());
  Rows rows = holder.query("SELECT v FROM t ORDER BY v", {});
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].integer(0), 2);
}

}  // namespace
}  // namespace taskengine::sql
