// Wake-ups between processes for the SQLite store (cpp/src/store/local_wakeup.*).
#include "store/local_wakeup.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace taskengine {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

class LocalWakeupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "te-wakeup-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path root_;
};

// A deep directory makes the socket directory fall back to /tmp, named by a
// hash of the database's path: every process must compute the same one.
fs::path deep_directory(const fs::path& root) {
  fs::path dir = root / std::string(60, 'd');
  fs::create_directories(dir);
  return dir;
}

TEST_F(LocalWakeupTest, ProcessesAgreeOnTheDirectoryBeforeAndAfterTheFileExists) {
  for (const fs::path& dir : {root_, deep_directory(root_)}) {
    fs::path db = dir / "store.db";
    // The first process opens the store before creating the file, and may
    // name it with a doubled slash, as a sqlite://// URL does.
    LocalWakeup before("/" + db.string());
    std::ofstream(db).put('x');
    LocalWakeup after(db.string());
    EXPECT_EQ(before.directory(), after.directory()) << db;
    fs::remove_all(after.directory());
  }
}

TEST_F(LocalWakeupTest, ANotifyReachesOnlyListenersOfItsTopic) {
  fs::path db = deep_directory(root_) / "store.db";
  LocalWakeup sender("/" + db.string());
  auto listener = LocalWakeup(db.string()).listen({"w-1"});
  auto other = LocalWakeup(db.string()).listen({"w-2"});
  sender.notify("w-1");
  EXPECT_TRUE(listener->wait(milliseconds(2000)));
  EXPECT_FALSE(other->wait(milliseconds(50)));
  EXPECT_FALSE(listener->wait(milliseconds(50)));  // drained: one notify, one wake-up
  fs::remove_all(sender.directory());
}

}  // namespace
}  // namespace taskengine
