// The Python executor against a real interpreter running the protocol
// stand-in in fixtures/pyroot/taskengine/_executor.py.

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "exec/process_group.hpp"
#include "exec/python_executor.hpp"
#include "taskengine/errors.hpp"

#ifndef TASKENGINE_TEST_FIXTURES
#error "TASKENGINE_TEST_FIXTURES must name tests/cpp/fixtures"
#endif
#ifndef TASKENGINE_TEST_PYTHON
#define TASKENGINE_TEST_PYTHON "python3"
#endif

namespace taskengine::exec {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

const std::string kPyRoot = std::string(TASKENGINE_TEST_FIXTURES) + "/pyroot";

std::unique_ptr<PythonExecutor> make_executor(std::vector<std::string> imports = {}) {
  return std::make_unique<PythonExecutor>(
      TASKENGINE_TEST_PYTHON, std::move(imports),
      std::map<std::string, std::string>{{"PYTHONPATH", kPyRoot},
                                         {"PYTHONDONTWRITEBYTECODE", "1"}});
}

Json request(int id, const std::string& function, Json args = Json::array()) {
  return Json{{"id", id},
              {"attempt", 1},
              {"function", "sample_tasks:" + function},
              {"args", std::move(args)},
              {"kwargs", Json::object()}};
}

PythonOutcome call(PythonExecutor& executor, int id, const std::string& function,
                   Json args = Json::array()) {
  return executor.run(request(id, function, std::move(args)), nullptr, nullptr);
}

bool group_gone(pid_t pgid) { return ::kill(-pgid, 0) == -1 && errno == ESRCH; }

class PythonExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override { become_subreaper(); }
};

TEST_F(PythonExecutorTest, UsesTheProtocolStandIn) {
  auto executor = make_executor();
  const PythonOutcome outcome = call(*executor, 1, "executor_file");
  ASSERT_TRUE(outcome.ok) << outcome.error.dump();
  EXPECT_EQ(outcome.result.get<std::string>().rfind(kPyRoot, 0), 0u)
      << "an installed taskengine shadows the test stand-in: " << outcome.result;
}

TEST_F(PythonExecutorTest, AddReturnsTheResult) {
  auto executor = make_executor();
  EXPECT_EQ(executor->pgid(), 0);
  pid_t started = 0;
  const PythonOutcome outcome = executor->run(
      request(7, "add", {2, 3}), [&](pid_t pgid) { started = pgid; }, nullptr);
  ASSERT_TRUE(outcome.ok) << outcome.error.dump();
  EXPECT_EQ(outcome.result, 5);
  EXPECT_GT(started, 0);
  EXPECT_EQ(executor->pgid(), started);
}

TEST_F(PythonExecutorTest, ExceptionGivesTypeMessageAndTraceback) {
  auto executor = make_executor();
  const PythonOutcome outcome = call(*executor, 1, "boom");
  ASSERT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.error["type"], "ValueError");
  EXPECT_EQ(outcome.error["message"], "boom went the task");
  ASSERT_TRUE(outcome.error["traceback"].is_array());
  EXPECT_FALSE(outcome.error["traceback"].empty());
  // The process survives a task's exception.
  EXPECT_TRUE(call(*executor, 2, "add", {1, 1}).ok);
}

TEST_F(PythonExecutorTest, OneProcessServesManyTasks) {
  auto executor = make_executor();
  const PythonOutcome first = call(*executor, 0, "getpid");
  ASSERT_TRUE(first.ok) << first.error.dump();
  const pid_t pid = first.result.get<pid_t>();
  EXPECT_EQ(executor->pgid(), pid);
  for (int id = 1; id <= 200; ++id) {
    const PythonOutcome outcome =
        call(*executor, id, id % 2 ? "getpid" : "add", id % 2 ? Json::array() : Json{id, 1});
    ASSERT_TRUE(outcome.ok) << outcome.error.dump();
    if (id % 2)
      EXPECT_EQ(outcome.result.get<pid_t>(), pid);
    else
      EXPECT_EQ(outcome.result, id + 1);
  }
}

TEST_F(PythonExecutorTest, LongResponseLinesSpanSeveralReads) {
  auto executor = make_executor();
  const std::string big(300000, 'x');  // several 64 KiB reads, a line cut in the middle
  for (int id = 1; id <= 3; ++id) {
    const PythonOutcome outcome = call(*executor, id, "add", {big, std::to_string(id)});
    ASSERT_TRUE(outcome.ok) << outcome.error.dump();
    EXPECT_EQ(outcome.result, big + std::to_string(id));
  }
}

TEST_F(PythonExecutorTest, RenderedRequestLinesRun) {
  auto executor = make_executor();
  const PythonOutcome outcome = executor->run(
      5, "{\"id\":5,\"function\":\"sample_tasks:add\",\"args\":[1,2]}\n", nullptr, nullptr);
  ASSERT_TRUE(outcome.ok) << outcome.error.dump();
  EXPECT_EQ(outcome.result, 3);
  EXPECT_THROW(executor->run(6, "{\"id\":6}", nullptr, nullptr), InvalidArgument);
}

TEST_F(PythonExecutorTest, CompactNoneResponseIsTakenAndALateOneDropped) {
  auto executor = make_executor();
  const PythonOutcome none = call(*executor, 41, "compact_none");
  ASSERT_TRUE(none.ok) << none.error.dump();
  EXPECT_TRUE(none.result.is_null());
  // The stand-in's own response for 41 comes after: the next task is not mistaken for it.
  const PythonOutcome next = call(*executor, 42, "add", {2, 2});
  ASSERT_TRUE(next.ok) << next.error.dump();
  EXPECT_EQ(next.result, 4);
}

TEST_F(PythonExecutorTest, DeathGivesExecutorLostAndTheNextRunStartsFresh) {
  auto executor = make_executor();
  const pid_t before = call(*executor, 1, "getpid").result.get<pid_t>();

  const PythonOutcome lost = call(*executor, 2, "die");
  ASSERT_FALSE(lost.ok);
  EXPECT_EQ(lost.error["type"], "ExecutorLost");
  EXPECT_NE(lost.error["message"].get<std::string>().find("exited with code 3"), std::string::npos)
      << lost.error["message"];
  EXPECT_EQ(executor->pgid(), 0);

  const PythonOutcome after = call(*executor, 3, "getpid");
  ASSERT_TRUE(after.ok) << after.error.dump();
  EXPECT_NE(after.result.get<pid_t>(), before);
}

TEST_F(PythonExecutorTest, DeathIsSeenWhileAForkedChildHoldsThePipe) {
  auto executor = make_executor();
  pid_t pgid = 0;
  const auto begin = Clock::now();
  const PythonOutcome lost = executor->run(
      request(1, "die_leaving_pipe_holder"), [&](pid_t p) { pgid = p; }, nullptr);
  EXPECT_LT(Clock::now() - begin, 5s);
  ASSERT_FALSE(lost.ok);
  EXPECT_EQ(lost.error["type"], "ExecutorLost");
  EXPECT_NE(lost.error["message"].get<std::string>().find("exited with code 5"), std::string::npos)
      << lost.error["message"];
  // SIGKILLed on return; dying takes a moment more.
  const auto deadline = Clock::now() + 2s;
  while (group_running(pgid) && Clock::now() < deadline) std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(group_running(pgid)) << "the forked child outlived its executor";
  EXPECT_TRUE(call(*executor, 2, "add", {1, 2}).ok);
}

TEST_F(PythonExecutorTest, TerminateGroupDuringALongTaskGivesExecutorLost) {
  auto executor = make_executor();
  ASSERT_TRUE(call(*executor, 1, "add", {1, 2}).ok);  // started and ready
  std::promise<pid_t> started;
  auto running = std::async(std::launch::async, [&] {
    return executor->run(
        request(2, "sleep", {100}), [&](pid_t pgid) { started.set_value(pgid); }, nullptr);
  });
  const pid_t pgid = started.get_future().get();
  std::this_thread::sleep_for(200ms);  // the request is in flight

  const auto begin = Clock::now();
  terminate_group(pgid, 5s);
  const PythonOutcome lost = running.get();
  EXPECT_LT(Clock::now() - begin, 5s);
  ASSERT_FALSE(lost.ok);
  EXPECT_EQ(lost.error["type"], "ExecutorLost");
  EXPECT_NE(lost.error["message"].get<std::string>().find("SIGTERM"), std::string::npos)
      << lost.error["message"];
  EXPECT_TRUE(group_gone(pgid));
  EXPECT_TRUE(call(*executor, 3, "add", {1, 2}).ok);
}

TEST_F(PythonExecutorTest, TerminateGroupKillsTheTasksGrandchildren) {
  auto executor = make_executor();
  std::promise<pid_t> started;
  auto running = std::async(std::launch::async, [&] {
    return executor->run(
        request(1, "spawn_grandchild"), [&](pid_t pgid) { started.set_value(pgid); }, nullptr);
  });
  const pid_t pgid = started.get_future().get();
  std::this_thread::sleep_for(800ms);  // interpreter start + Popen
  terminate_group(pgid, 5s);
  const PythonOutcome lost = running.get();
  ASSERT_FALSE(lost.ok);
  EXPECT_EQ(lost.error["type"], "ExecutorLost");
  EXPECT_TRUE(group_gone(pgid)) << "the grandchild `sleep 100` survived";
}

TEST_F(PythonExecutorTest, KilledWhileIdleRestartsWithoutFailingTheNextTask) {
  auto executor = make_executor();
  const pid_t before = call(*executor, 1, "getpid").result.get<pid_t>();
  ::kill(before, SIGKILL);
  std::this_thread::sleep_for(100ms);
  const PythonOutcome after = call(*executor, 2, "getpid");
  ASSERT_TRUE(after.ok) << after.error.dump();
  EXPECT_NE(after.result.get<pid_t>(), before);
}

TEST_F(PythonExecutorTest, MessagesGoToOnMessage) {
  auto executor = make_executor();
  std::vector<Json> messages;
  const PythonOutcome outcome = executor->run(request(9, "chatty", {3}), nullptr,
                                              [&](const Json& m) { messages.push_back(m); });
  ASSERT_TRUE(outcome.ok) << outcome.error.dump();
  EXPECT_EQ(outcome.result, 3);
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_EQ(messages[2]["id"], 9);
  EXPECT_EQ(messages[2]["progress"]["current"], 3);
}

TEST_F(PythonExecutorTest, ImportsAtStart) {
  auto executor = make_executor({"sample_tasks", "json"});
  EXPECT_TRUE(call(*executor, 1, "add", {1, 2}).ok);
}

TEST_F(PythonExecutorTest, FailedImportIsReportedAndTheProcessStopped) {
  auto executor = make_executor({"bad_import"});
  for (int id = 1; id <= 2; ++id) {
    const PythonOutcome outcome = call(*executor, id, "add", {1, 2});
    ASSERT_FALSE(outcome.ok);
    EXPECT_EQ(outcome.error["type"], "ImportError");
    EXPECT_NE(outcome.error["message"].get<std::string>().find("bad_import cannot be imported"),
              std::string::npos);
    EXPECT_EQ(executor->pgid(), 0);
  }
}

TEST_F(PythonExecutorTest, MissingFunctionIsATaskError) {
  auto executor = make_executor();
  const PythonOutcome outcome = call(*executor, 1, "no_such_function");
  ASSERT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.error["type"], "AttributeError");
}

TEST_F(PythonExecutorTest, MissingPythonGivesExecutorStartError) {
  PythonExecutor executor("te-no-such-python", {}, {});
  const PythonOutcome outcome = call(executor, 1, "add", {1, 2});
  ASSERT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.error["type"], "ExecutorStartError");
}

TEST_F(PythonExecutorTest, StopEndsTheGroupAndRunRestarts) {
  auto executor = make_executor();
  ASSERT_TRUE(call(*executor, 1, "add", {1, 2}).ok);
  const pid_t pgid = executor->pgid();
  executor->stop();
  EXPECT_EQ(executor->pgid(), 0);
  EXPECT_TRUE(group_gone(pgid));
  executor->stop();  // idempotent
  EXPECT_TRUE(call(*executor, 2, "add", {1, 2}).ok);
}

TEST_F(PythonExecutorTest, BadInputThrowsInvalidArgument) {
  EXPECT_THROW(PythonExecutor("", {}, {}), InvalidArgument);
  EXPECT_THROW(PythonExecutor("python3", {""}, {}), InvalidArgument);
  EXPECT_THROW(PythonExecutor("python3", {}, {{"A=B", "c"}}), InvalidArgument);
  auto executor = make_executor();
  EXPECT_THROW(executor->run(Json{{"function", "sample_tasks:add"}}, nullptr, nullptr),
               InvalidArgument);
  EXPECT_THROW(executor->run(Json{{"id", "x"}}, nullptr, nullptr), InvalidArgument);
}

TEST_F(PythonExecutorTest, SeveralExecutorsInParallel) {
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([t, &failures] {
      auto executor = make_executor();
      for (int i = 0; i < 30; ++i) {
        const PythonOutcome outcome = call(*executor, i, "add", {t, i});
        if (!outcome.ok || outcome.result != t + i) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace taskengine::exec
