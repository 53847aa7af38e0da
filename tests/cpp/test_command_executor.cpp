// Command tasks: real processes, real pipes.

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "exec/command_executor.hpp"
#include "exec/process_group.hpp"
#include "taskengine/errors.hpp"

namespace taskengine::exec {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

CommandResult run(const Json& payload, std::size_t tail_bytes = 64 * 1024) {
  return run_command(payload, nullptr, tail_bytes);
}

CommandResult sh(const std::string& script, std::size_t tail_bytes = 64 * 1024) {
  return run(Json{{"argv", {"sh", "-c", script}}}, tail_bytes);
}

TEST(CommandExecutor, EchoOutputIsCaptured) {
  const CommandResult result = run(Json{{"argv", {"echo", "hello", "world"}}});
  EXPECT_EQ(result.returncode, 0);
  EXPECT_EQ(result.term_signal, 0);
  EXPECT_EQ(result.output, "hello world\n");
}

TEST(CommandExecutor, StdoutAndStderrAreMergedInOrder) {
  const CommandResult result = sh("echo out; echo err >&2; echo out2");
  EXPECT_EQ(result.output, "out\nerr\nout2\n");
}

TEST(CommandExecutor, KeepsOnlyTheTail) {
  const CommandResult result = sh("head -c 100000 /dev/zero | tr '\\0' a; echo END", 1000);
  EXPECT_EQ(result.returncode, 0);
  ASSERT_EQ(result.output.size(), 1000u);
  EXPECT_EQ(result.output, std::string(996, 'a') + "END\n");
}

TEST(CommandExecutor, ZeroTailKeepsNothing) { EXPECT_EQ(sh("echo something", 0).output, ""); }

TEST(CommandExecutor, TailDoesNotStartInsideAUtf8Sequence) {
  // "é" is 2 bytes: a 4-byte tail of "éé\n" would start with a continuation byte.
  const CommandResult result = sh("printf '\\303\\251\\303\\251\\n'", 4);
  EXPECT_EQ(result.output, "\xc3\xa9\n");
}

TEST(CommandExecutor, EnvOverlaysTheWorkersEnvironment) {
  ASSERT_NE(::getenv("PATH"), nullptr);
  const CommandResult result =
      run(Json{{"argv", {"sh", "-c", "echo \"$TE_VAR|${PATH:+path-inherited}|${HOME-unset}\""}},
               {"env", {{"TE_VAR", "overlay value"}, {"HOME", nullptr}}}});
  EXPECT_EQ(result.output, "overlay value|path-inherited|unset\n");
}

TEST(CommandExecutor, NullEnvInheritsUnchanged) {
  ::setenv("TE_INHERITED", "from-worker", 1);
  const CommandResult result =
      run(Json{{"argv", {"sh", "-c", "echo $TE_INHERITED"}}, {"env", nullptr}});
  EXPECT_EQ(result.output, "from-worker\n");
}

TEST(CommandExecutor, ProgramIsLookedUpInTheOverlaidPath) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("te-path-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto script = dir / "te-hello";
  {
    std::FILE* f = std::fopen(script.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("#!/bin/sh\necho \"hi from $0\"\n", f);
    std::fclose(f);
  }
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  const std::string path = dir.string() + ":" + ::getenv("PATH");
  const CommandResult result = run(Json{{"argv", {"te-hello"}}, {"env", {{"PATH", path}}}});
  EXPECT_EQ(result.returncode, 0);
  EXPECT_EQ(result.output, "hi from " + script.string() + "\n");
  std::filesystem::remove_all(dir);
}

TEST(CommandExecutor, RunsInTheGivenCwd) {
  const auto dir = std::filesystem::canonical(std::filesystem::temp_directory_path());
  const CommandResult result =
      run(Json{{"argv", {"pwd"}}, {"cwd", dir.string()}, {"env", nullptr}});
  EXPECT_EQ(result.output, dir.string() + "\n");
}

TEST(CommandExecutor, NonZeroExitCode) {
  const CommandResult result = sh("echo failing; exit 42");
  EXPECT_EQ(result.returncode, 42);
  EXPECT_EQ(result.term_signal, 0);
  EXPECT_EQ(result.output, "failing\n");
}

TEST(CommandExecutor, KilledBySignal) {
  const CommandResult result = sh("kill -KILL $$");
  EXPECT_EQ(result.term_signal, SIGKILL);
  EXPECT_EQ(result.returncode, -SIGKILL);
}

TEST(CommandExecutor, MissingProgramGives127) {
  const CommandResult result = run(Json{{"argv", {"te-no-such-program-xyz", "arg"}}});
  EXPECT_EQ(result.returncode, 127);
  EXPECT_NE(result.output.find("te-no-such-program-xyz: command not found"), std::string::npos)
      << result.output;
}

TEST(CommandExecutor, MissingPathGives127) {
  const CommandResult result = run(Json{{"argv", {"/nonexistent/te-prog"}}});
  EXPECT_EQ(result.returncode, 127);
  EXPECT_NE(result.output.find("No such file or directory"), std::string::npos) << result.output;
}

TEST(CommandExecutor, NotExecutableGives127) {
  const auto file =
      std::filesystem::temp_directory_path() / ("te-noexec-" + std::to_string(::getpid()));
  std::FILE* f = std::fopen(file.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("#!/bin/sh\necho ran\n", f);
  std::fclose(f);
  // No x bit at all: execve refuses even for root.
  std::filesystem::permissions(
      file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  const CommandResult result = run(Json{{"argv", {file.string()}}});
  std::filesystem::remove(file);
  EXPECT_EQ(result.returncode, 127);
  EXPECT_NE(result.output.find("Permission denied"), std::string::npos) << result.output;
}

TEST(CommandExecutor, BadCwdGives127AndDoesNotRun) {
  const CommandResult result =
      run(Json{{"argv", {"sh", "-c", "echo ran"}}, {"cwd", "/nonexistent/te-dir"}});
  EXPECT_EQ(result.returncode, 127);
  EXPECT_NE(result.output.find("cannot change directory to '/nonexistent/te-dir'"),
            std::string::npos)
      << result.output;
  EXPECT_EQ(result.output.find("ran"), std::string::npos);
}

TEST(CommandExecutor, BadPayloadsThrowInvalidArgument) {
  const std::vector<Json> bad = {
      Json::array(),
      Json::object(),
      Json{{"argv", nullptr}},
      Json{{"argv", Json::array()}},
      Json{{"argv", {"echo", 3}}},
      Json{{"argv", {""}}},
      Json{{"argv", "echo hi"}},
      Json{{"argv", {"echo"}}, {"env", {"A=B"}}},
      Json{{"argv", {"echo"}}, {"env", {{"A", 1}}}},
      Json{{"argv", {"echo"}}, {"env", {{"A=B", "c"}}}},
      Json{{"argv", {"echo"}}, {"cwd", 5}},
      Json{{"argv", {"echo"}}, {"cwd", ""}},
      Json{{"argv", {std::string("ec\0ho", 5)}}},
  };
  for (const auto& payload : bad) EXPECT_THROW(run(payload), InvalidArgument) << payload.dump();
}

TEST(CommandExecutor, StdinIsDevNull) {
  const auto begin = Clock::now();
  const CommandResult result = run(Json{{"argv", {"cat"}}});
  EXPECT_EQ(result.returncode, 0);
  EXPECT_EQ(result.output, "");
  EXPECT_LT(Clock::now() - begin, 2s);
}

TEST(CommandExecutor, RunsInItsOwnProcessGroup) {
  pid_t pgid = 0;
  const CommandResult result = run_command(
      Json{{"argv", {"sh", "-c", "cut -d' ' -f5 /proc/$$/stat"}}}, [&](pid_t p) { pgid = p; });
  ASSERT_GT(pgid, 0);
  EXPECT_NE(pgid, ::getpgrp());
  EXPECT_EQ(result.output, std::to_string(pgid) + "\n");
}

TEST(CommandExecutor, LeftoversDieWithTheCommand) {
  become_subreaper();
  pid_t pgid = 0;
  const auto begin = Clock::now();
  // The background sleep holds the output pipe: without the cleanup this takes 100 s.
  const CommandResult result = run_command(Json{{"argv", {"sh", "-c", "sleep 100 & echo started"}}},
                                           [&](pid_t p) { pgid = p; });
  EXPECT_LT(Clock::now() - begin, 5s);
  EXPECT_EQ(result.returncode, 0);
  EXPECT_EQ(result.output, "started\n");
  // SIGKILLed on return; dying takes a moment more.
  const auto deadline = Clock::now() + 2s;
  while (group_running(pgid) && Clock::now() < deadline) std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(group_running(pgid));
}

TEST(CommandExecutor, ConcurrentRunsFromFourThreads) {
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  const auto begin = Clock::now();
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &failures] {
      for (int i = 0; i < 25; ++i) {
        // (not "t" + to_string(t): GCC 12 -O2 warns -Wrestrict on it, bug 105329)
        const std::string word = std::to_string(t) + "-" + std::to_string(i) + "-word";
        // One long-lived command per thread checks that spawns do not wait on each other's
        // children.
        const std::string script = i == 0 ? "sleep 1; echo \"$0\"" : "echo \"$0\"";
        const CommandResult result = run(Json{{"argv", {"sh", "-c", script, word}}});
        if (result.returncode != 0 || result.output != word + "\n") ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_LT(Clock::now() - begin, 10s);
}

TEST(CommandExecutor, OnStartedExceptionKillsTheChild) {
  pid_t pgid = 0;
  EXPECT_THROW(run_command(Json{{"argv", {"sleep", "100"}}},
                           [&](pid_t p) {
                             pgid = p;
                             throw std::runtime_error("slot refused the task");
                           }),
               std::runtime_error);
  ASSERT_GT(pgid, 0);
  EXPECT_FALSE(group_running(pgid));
}

}  // namespace
}  // namespace taskengine::exec
