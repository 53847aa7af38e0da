// The worker's OutputBuffer against real stores (SQLite and PostgreSQL):
// batching, the per-attempt cap, fencing, malformed messages, artifacts.
#include "worker/output_buffer.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "support/store_test.hpp"
#include "taskengine/store.hpp"

namespace taskengine {
namespace {

using std::chrono::hours;

class OutputBufferTest : public testing::StoreTest {
 protected:
  std::vector<LogRecord> logs(TaskId id) {
    LogFilter filter;
    filter.task_ids = {id};
    filter.limit = 100000;
    return store_->list_log_records(filter);
  }

  static Json lines(int from, int count) {
    Json records = Json::array();
    for (int i = from; i < from + count; ++i)
      records.push_back({{"message", "line " + std::to_string(i)}, {"level", 20}});
    return {{"records", records}};
  }
};

TEST_P(OutputBufferTest, ManyMessagesAreStoredInOneTransactionInOrder) {
  Task task = running();
  worker::OutputBuffer buffer(test_store_->url(), hours(1), 10000);
  for (int i = 0; i < 100; ++i) buffer.add(task.id, task.fence, lines(i * 10, 10));
  buffer.add(task.id, task.fence,
             {{"progress", Json::array({{{"group_name", "a"}, {"current", 1}, {"total", 9}},
                                        {{"group_name", "a"}, {"current", 2}, {"total", 9}}})}});
  EXPECT_EQ(buffer.transactions(), 0u);
  buffer.flush();
  EXPECT_EQ(buffer.transactions(), 1u);
  buffer.flush();  // nothing left: no transaction
  EXPECT_EQ(buffer.transactions(), 1u);

  auto stored = logs(task.id);
  ASSERT_EQ(stored.size(), 1000u);
  std::set<Micros> writes;
  for (int i = 0; i < 1000; ++i) {
    EXPECT_EQ(stored[i].message, "line " + std::to_string(i));
    writes.insert(stored[i].stored_at);
  }
  EXPECT_EQ(writes.size(), 1u);
  auto progress = store_->get_progress(task.id);
  ASSERT_EQ(progress.size(), 1u);
  EXPECT_EQ(progress[0].current, 2);  // the latest report of the group
}

TEST_P(OutputBufferTest, AFloodIsCappedAndTheDropCountIsStored) {
  Task task = running();
  worker::OutputBuffer buffer(test_store_->url(), hours(1), 50);
  buffer.add(task.id, task.fence, lines(0, 80));
  buffer.flush();
  auto stored = logs(task.id);
  ASSERT_EQ(stored.size(), 51u);
  EXPECT_EQ(stored[49].message, "line 49");
  EXPECT_EQ(stored[50].level, 30);
  EXPECT_EQ(stored[50].logger, "taskengine.worker");
  EXPECT_EQ(stored[50].message,
            "30 log record(s) were dropped: the task logged faster than they could be stored");
  // The cap is per flush: the next batch starts afresh.
  buffer.add(task.id, task.fence, lines(80, 5));
  buffer.flush();
  EXPECT_EQ(logs(task.id).size(), 56u);
}

TEST_P(OutputBufferTest, StaleAttemptsAndMalformedPartsAreDropped) {
  Task task = running();
  worker::OutputBuffer buffer(test_store_->url(), hours(1), 100);
  buffer.add(task.id, task.fence - 1, lines(0, 3));  // an older attempt's
  buffer.add(task.id, task.fence,
             {{"records", Json::array({{{"level", 20}}, {{"message", "ok"}}})},
              {"progress", Json::array({{{"current", -1}, {"total", 2}}})}});
  buffer.flush();
  auto stored = logs(task.id);
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[0].message, "ok");
  EXPECT_EQ(stored[1].level, 30);
  EXPECT_NE(stored[1].message.find("a log record was dropped"), std::string::npos);
  EXPECT_NE(stored[1].message.find("a progress report was dropped"), std::string::npos);
  EXPECT_TRUE(store_->get_progress(task.id).empty());
}

TEST_P(OutputBufferTest, ArtifactsAreReadStoredAndTheStagedFileRemoved) {
  Task task = running();
  auto staged = std::filesystem::temp_directory_path() /
                ("taskengine-staged-" + std::to_string(::getpid()) + "-" + GetParam());
  std::string bytes("a\0b\xff", 4);
  std::ofstream(staged, std::ios::binary) << bytes;
  {
    worker::OutputBuffer buffer(test_store_->url(), hours(1), 100);
    buffer.add(task.id, task.fence,
               {{"artifacts",
                 Json::array({{{"name", "out.bin"}, {"path", staged.string()}, {"sha256", "cafe"}},
                              {{"name", "gone"}, {"path", "/nonexistent/file"}}})}});
    EXPECT_FALSE(std::filesystem::exists(staged));
  }  // the destructor flushes
  Artifact stored = store_->read_artifact(task.id, "out.bin");
  EXPECT_EQ(stored.content, bytes);
  EXPECT_EQ(stored.info.sha256, "cafe");
  EXPECT_EQ(store_->list_artifacts(task.id).size(), 1u);
  auto records = logs(task.id);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_NE(records[0].message.find("artifact 'gone' could not be read"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Backends, OutputBufferTest, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace taskengine
