// spawn_child(): the clone(CLONE_VM | CLONE_VFORK) spawn keeps every
// guarantee of prepare_child(), checked on real processes.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "exec/process_group.hpp"
#include "exec/spawn.hpp"

namespace taskengine::exec {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::string program(const std::string& name) {
  const auto path = find_executable(name, ::getenv("PATH"));
  EXPECT_TRUE(path.has_value()) << name;
  return path.value_or(name);
}

struct Ran {
  int status = 0;
  std::string output;
};

// Spawns argv (argv[0] looked up in PATH) with `env` and `setup`.
SpawnedChild spawn(std::vector<std::string> argv, std::vector<std::string> env = {},
                   const ChildSetup& setup = {}) {
  const std::string path = program(argv.front());
  return spawn_child(path.c_str(), exec_array(argv).data(), exec_array(env).data(), setup);
}

// spawn() with stdout+stderr into a pipe, read to EOF; the child reaped.
Ran run(std::vector<std::string> argv, std::vector<std::string> env = {"PATH=/usr/bin:/bin"},
        const char* cwd = nullptr) {
  auto [read_end, write_end] = make_pipe();
  const ChildSetup setup{-1, write_end.get(), write_end.get(), cwd};
  SpawnedChild child = spawn(std::move(argv), std::move(env), setup);
  write_end.reset();
  Ran ran;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(read_end.get(), buf, sizeof buf);
    if (n > 0) {
      ran.output.append(buf, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ran.status = child.wait();
  return ran;
}

// How many zombie children this process has (orphans reparented to a
// subreaper count too, so tests compare before and after).
int zombie_children() {
  int zombies = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const auto paren = text.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream fields(text.substr(paren + 1));
    char state = '?';
    pid_t ppid = 0;
    fields >> state >> ppid;
    if (state == 'Z' && ppid == ::getpid()) ++zombies;
  }
  return zombies;
}

// The hexadecimal mask of a "Sig...:" line of /proc/<pid>/status.
std::string status_field(const std::string& status, const std::string& name) {
  std::istringstream lines(status);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind(name + ":", 0) == 0)
      return line.substr(line.find_first_not_of(" \t:", name.size()));
  return "(no " + name + " line)";
}

TEST(SpawnChild, RunsArgvAndEnvironmentAndGivesTheExitStatus) {
  const Ran ran = run({"sh", "-c", "echo \"$0 $TE_X\"; exit 7", "name"}, {"TE_X=x-value"});
  ASSERT_TRUE(WIFEXITED(ran.status));
  EXPECT_EQ(WEXITSTATUS(ran.status), 7);
  EXPECT_EQ(ran.output, "name x-value\n");
}

TEST(SpawnChild, RunsInANewProcessGroupNamedAfterItsPid) {
  const Ran ran = run({"sh", "-c", "echo $$ $(cut -d' ' -f5 /proc/$$/stat)"});
  std::istringstream words(ran.output);
  pid_t pid = 0;
  pid_t pgid = 0;
  words >> pid >> pgid;
  EXPECT_GT(pid, 0) << ran.output;
  EXPECT_EQ(pgid, pid) << ran.output;
  EXPECT_NE(pgid, ::getpgrp());
}

TEST(SpawnChild, DefaultSignalsAndAnEmptyMaskWhateverTheParentHas) {
  // A worker's threads block SIGTERM and SIGPIPE, and a host may ignore or
  // catch signals: none of it reaches the child.
  sigset_t blocked;
  ::sigemptyset(&blocked);
  ::sigaddset(&blocked, SIGTERM);
  ::sigaddset(&blocked, SIGUSR2);
  sigset_t before;
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &blocked, &before), 0);
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction catcher {};
  catcher.sa_handler = [](int) {};
  struct sigaction old_hup {};
  struct sigaction old_usr1 {};
  ASSERT_EQ(::sigaction(SIGHUP, &ignore, &old_hup), 0);
  ASSERT_EQ(::sigaction(SIGUSR1, &catcher, &old_usr1), 0);

  const Ran ran = run({"cat", "/proc/self/status"});

  sigset_t after;
  ::pthread_sigmask(SIG_SETMASK, nullptr, &after);
  EXPECT_EQ(::sigismember(&after, SIGTERM), 1) << "the spawning thread's mask is restored";
  EXPECT_EQ(::sigismember(&after, SIGUSR2), 1);
  EXPECT_EQ(::sigismember(&after, SIGINT), ::sigismember(&before, SIGINT));
  ::pthread_sigmask(SIG_SETMASK, &before, nullptr);
  ::sigaction(SIGHUP, &old_hup, nullptr);
  ::sigaction(SIGUSR1, &old_usr1, nullptr);

  EXPECT_EQ(status_field(ran.output, "SigBlk"), "0000000000000000") << ran.output;
  EXPECT_EQ(status_field(ran.output, "SigIgn"), "0000000000000000") << ran.output;
  EXPECT_EQ(status_field(ran.output, "SigCgt"), "0000000000000000") << ran.output;
}

TEST(SpawnChild, InheritsNoOtherDescriptor) {
  // Opened without O_CLOEXEC, as a careless library would.
  const int plain = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(plain, 0);
  const int high = ::fcntl(plain, F_DUPFD, 100);
  ASSERT_GE(high, 100);
  const Ran ran = run({"ls", "/proc/self/fd"});
  ::close(plain);
  ::close(high);
  std::istringstream lines(ran.output);
  std::vector<int> fds;
  for (int fd; lines >> fd;) fds.push_back(fd);
  // 0-2, and the descriptor ls reads the directory through.
  EXPECT_LE(fds.size(), 4u) << ran.output;
  for (const int fd : fds) EXPECT_LE(fd, 3) << ran.output;
}

TEST(SpawnChild, ExecFailureIsReportedAndTheChildReaped) {
  const int zombies = zombie_children();
  try {
    spawn({"/nonexistent/te-missing"});
    FAIL() << "spawned a missing program";
  } catch (const SpawnError& e) {
    EXPECT_EQ(e.step(), "exec");
    EXPECT_EQ(e.reason(), "No such file or directory");
  }
  EXPECT_EQ(zombie_children(), zombies) << "the failed child is left unreaped";
}

TEST(SpawnChild, ChdirFailureIsReportedAndNothingRuns) {
  const int zombies = zombie_children();
  try {
    run({"sh", "-c", "echo ran"}, {}, "/nonexistent/te-dir");
    FAIL() << "ran in a missing directory";
  } catch (const SpawnError& e) {
    EXPECT_EQ(e.step(), "chdir");
    EXPECT_EQ(e.reason(), "No such file or directory");
  }
  EXPECT_EQ(zombie_children(), zombies);
}

TEST(SpawnChild, RunsInTheGivenDirectory) { EXPECT_EQ(run({"pwd"}, {}, "/").output, "/\n"); }

TEST(SpawnChild, DiesWithTheThreadThatSpawnedIt) {
  // PR_SET_PDEATHSIG: a worker that is SIGKILLed leaves nothing running.
  SpawnedChild child;
  std::thread spawner([&] { child = spawn({"sleep", "30"}); });
  spawner.join();
  ASSERT_TRUE(child);
  const auto begin = Clock::now();
  const int status = child.wait();
  EXPECT_LT(Clock::now() - begin, 10s);
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
}

TEST(SpawnChild, ReapStraysLeavesASpawnedChildToItsOwner) {
  become_subreaper();
  SpawnedChild child = spawn({"true"});
  child_exited(child.pid(), true);  // a zombie now
  reap_strays();                    // may take orphans of other tests, never this child
  const int status = child.wait();
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(child.wait(), status) << "a second wait returns the same status";
}

TEST(SpawnChild, AChildReapedBySomeoneElseIsAnErrorNotAStatus) {
  SpawnedChild child = spawn({"true"});
  ASSERT_EQ(::waitpid(child.pid(), nullptr, 0), child.pid());  // stolen
  EXPECT_THROW(child.wait(), Error);
  EXPECT_THROW(child.wait(), Error) << "still no status to give";
  // Dropping it now must not signal the old number's group: nothing to see
  // here but that it returns.
}

TEST(SpawnChild, DroppedUnreapedItsGroupIsKilledAndReaped) {
  pid_t pid = 0;
  {
    SpawnedChild child = spawn({"sh", "-c", "sleep 30 & sleep 30"}, {"PATH=/usr/bin:/bin"});
    pid = child.pid();
    std::this_thread::sleep_for(100ms);  // let the shell start its sleeps
  }
  EXPECT_EQ(::kill(pid, 0), -1) << "the leader is reaped";
  const auto deadline = Clock::now() + 5s;
  while (group_running(pid) && Clock::now() < deadline) std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(group_running(pid)) << "the group's other members are killed";
}

TEST(SpawnChild, ManyThreadsSpawnAtOnce) {
  std::vector<std::future<int>> runs;
  for (int t = 0; t < 4; ++t)
    runs.push_back(std::async(std::launch::async, [t] {
      int failures = 0;
      for (int i = 0; i < 50; ++i) {
        const std::string word = std::to_string(t) + "/" + std::to_string(i);
        const Ran ran = run({"sh", "-c", "echo \"$0\"", word});
        if (ran.output != word + "\n" || !WIFEXITED(ran.status) || WEXITSTATUS(ran.status) != 0)
          ++failures;
      }
      return failures;
    }));
  for (auto& r : runs) EXPECT_EQ(r.get(), 0);
}

}  // namespace
}  // namespace taskengine::exec
