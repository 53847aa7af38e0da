// Process groups: terminating a group reaches grandchildren; stray reaping
// takes orphans only, never a child someone else waits for.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <future>
#include <thread>

#include "exec/command_executor.hpp"
#include "exec/process_group.hpp"
#include "taskengine/errors.hpp"

namespace taskengine::exec {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

class ProcessGroupTest : public ::testing::Test {
 protected:
  // Orphans come back to the test process instead of a PID 1 that may not reap.
  void SetUp() override { become_subreaper(); }
};

bool group_gone(pid_t pgid) { return ::kill(-pgid, 0) == -1 && errno == ESRCH; }

// Runs a shell script in a thread; returns its pgid once started.
struct Background {
  std::promise<pid_t> started;
  std::future<CommandResult> result;

  explicit Background(const std::string& script) {
    result = std::async(std::launch::async, [this, script] {
      return run_command(Json{{"argv", {"sh", "-c", script}}},
                         [this](pid_t pgid) { started.set_value(pgid); });
    });
  }
  pid_t pgid() { return started.get_future().get(); }
};

TEST_F(ProcessGroupTest, TerminateGroupKillsGrandchildrenWithinGrace) {
  Background bg("sleep 100 & sleep 100 & wait");
  const pid_t pgid = bg.pgid();
  std::this_thread::sleep_for(300ms);  // let the shell start both sleeps
  ASSERT_TRUE(group_running(pgid));

  const auto begin = Clock::now();
  terminate_group(pgid, 5s);
  EXPECT_LT(Clock::now() - begin, 5s) << "needed SIGKILL although every member honours SIGTERM";
  EXPECT_FALSE(group_running(pgid));

  const CommandResult result = bg.result.get();
  EXPECT_EQ(result.term_signal, SIGTERM);
  EXPECT_EQ(result.returncode, -SIGTERM);
  EXPECT_TRUE(group_gone(pgid)) << "a member of the group is left, zombie or not";
}

TEST_F(ProcessGroupTest, TerminateGroupEscalatesToSigkill) {
  // Ignored signals are inherited, so the sleeps ignore SIGTERM too.
  Background bg("trap '' TERM; sleep 100 & sleep 100 & wait");
  const pid_t pgid = bg.pgid();
  std::this_thread::sleep_for(300ms);

  const auto begin = Clock::now();
  terminate_group(pgid, 300ms);
  const auto elapsed = Clock::now() - begin;
  EXPECT_GE(elapsed, 300ms);
  EXPECT_LT(elapsed, 3s);

  const CommandResult result = bg.result.get();
  EXPECT_EQ(result.term_signal, SIGKILL);
  EXPECT_TRUE(group_gone(pgid));
}

TEST_F(ProcessGroupTest, TerminateGroupOfAFinishedGroupReturnsAtOnce) {
  const pid_t pgid = [] {
    pid_t seen = 0;
    run_command(Json{{"argv", {"true"}}}, [&](pid_t p) { seen = p; });
    return seen;
  }();
  const auto begin = Clock::now();
  terminate_group(pgid, 5s);
  EXPECT_LT(Clock::now() - begin, 1s);
}

TEST_F(ProcessGroupTest, RefusesDangerousGroups) {
  EXPECT_THROW(terminate_group(0, 10ms), InvalidArgument);
  EXPECT_THROW(terminate_group(1, 10ms), InvalidArgument);
  EXPECT_THROW(terminate_group(-5, 10ms), InvalidArgument);
  EXPECT_THROW(terminate_group(::getpgrp(), 10ms), InvalidArgument);
}

TEST_F(ProcessGroupTest, AliveAndRunningOfAMissingGroup) {
  EXPECT_FALSE(group_alive(0));
  EXPECT_FALSE(group_alive(999999999));
  EXPECT_FALSE(group_running(999999999));
}

TEST_F(ProcessGroupTest, ReapStraysTakesOrphansButNotOwnedChildren) {
  // A command running meanwhile: reaping its leader would break its wait.
  auto owned_run = std::async(std::launch::async, [] {
    return run_command(Json{{"argv", {"sh", "-c", "sleep 0.5; exit 7"}}}, nullptr);
  });

  // The subshell's sleep is orphaned to us, then killed as a leftover: a zombie stray.
  pid_t pgid = 0;
  run_command(Json{{"argv", {"sh", "-c", "(sleep 100 >/dev/null 2>&1 &)"}}},
              [&](pid_t p) { pgid = p; });
  const auto deadline = Clock::now() + 2s;
  while (!group_gone(pgid) && Clock::now() < deadline) {
    reap_strays();
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(group_gone(pgid));

  EXPECT_EQ(owned_run.get().returncode, 7);
}

TEST_F(ProcessGroupTest, ReapStraysLeavesChildrenOfTheOwnGroupAlone) {
  // A child spawned by other code, without a group of its own.
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) ::_exit(9);
  std::this_thread::sleep_for(100ms);
  reap_strays();
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid) << "reap_strays() stole another owner's child";
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 9);
}

TEST_F(ProcessGroupTest, OwnedChildProtectsARegisteredPid) {
  pid_t pid = 0;
  {
    OwnedChild owned;
    pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::setpgid(0, 0);
      ::_exit(4);
    }
    owned.spawned(pid);
    std::this_thread::sleep_for(100ms);
    reap_strays();
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_EQ(WEXITSTATUS(status), 4);
  }
  // Unregistered and in a group of its own: taken as a stray.
  pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::setpgid(0, 0);
    ::_exit(4);
  }
  std::this_thread::sleep_for(100ms);
  EXPECT_GE(reap_strays(), 1u);
  EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1);
}

}  // namespace
}  // namespace taskengine::exec
