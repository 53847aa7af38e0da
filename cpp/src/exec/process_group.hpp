#pragma once

// Process groups: every task runs in its own group so that cancel, abort and
// timeout reach its grandchildren too. This file holds what the command and
// Python executors share: spawning a child into a new group, terminating a
// group, and reaping the orphans a group leaves behind.

#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

namespace taskengine::exec {

// --- Terminating a group ----------------------------------------------------

// True while any member of the group exists, zombies included (kill(-pgid, 0)).
bool group_alive(pid_t pgid);

// True while any member of the group is not a zombie, i.e. still runs code.
bool group_running(pid_t pgid);

// SIGTERM (and SIGCONT, so stopped members see it) to the whole group, then
// waits until no member is running or `grace` elapses, then SIGKILLs the group
// and waits up to 1 s more. Zombies count as stopped: the leader's zombie is
// reaped by whoever spawned it (its run_command / PythonExecutor), orphaned
// members by reap_strays() below, which this calls while it waits when the
// process is a subreaper. Call it only while the run that reported `pgid` is
// in progress: once a group is gone its number may be reused.
// Throws InvalidArgument for pgid <= 1 or the caller's own group.
void terminate_group(pid_t pgid, std::chrono::milliseconds grace);

// --- Orphans ----------------------------------------------------------------
//
// Grandchildren whose parent died are reparented to the nearest subreaper,
// else to PID 1, which in a container may never reap them; their zombies then
// keep kill(-pgid, 0) succeeding forever. So the worker becomes a subreaper
// and reaps those orphans itself. waitpid(-1) would also steal the exit status
// of children that Boost.Process waits on by pid, so reap_strays() only takes
// a zombie child that (a) is not registered through OwnedChild and (b) is not
// in the caller's own process group (children spawned by other code without a
// group of their own). Anything else in the process that spawns a child into a
// new process group must register it with OwnedChild.

// prctl(PR_SET_CHILD_SUBREAPER). Only the worker binary calls it, at start;
// a process hosting the Python bindings never does (Python's own subprocess
// children would otherwise be taken by reap_strays()).
void become_subreaper();
bool is_subreaper();

// Reaps zombie orphans as described above; returns how many. A no-op unless
// become_subreaper() was called. Scans /proc: call it from a periodic loop
// (e.g. the heartbeat), not per task.
std::size_t reap_strays();

// Registers a child this process reaps itself, from just before the spawn
// until it has been waited for. The constructor also takes the process-wide
// spawn lock, released by spawned(); reap_strays() takes it exclusively, so
// it never sees a child between its spawn and its registration.
//  - Exclusive (the default): for Boost.Process spawns. Boost 1.74 creates
//    its exec-error pipe with pipe() then sets FD_CLOEXEC, so a fork in
//    another thread between the two would leak the write end into that
//    child and block this spawn until that child exits.
//  - Shared: for spawns that create every descriptor close-on-exec
//    (spawn_child() in exec/spawn.hpp). They run side by side; they only
//    wait for an exclusive spawn or a reap_strays() scan.
enum class SpawnLock { Exclusive, Shared };

class OwnedChild {
 public:
  explicit OwnedChild(SpawnLock lock = SpawnLock::Exclusive);
  ~OwnedChild();
  OwnedChild(const OwnedChild&) = delete;
  OwnedChild& operator=(const OwnedChild&) = delete;

  // Records the child (pid 0 or less: the spawn failed) and ends the spawn.
  void spawned(pid_t pid);

 private:
  std::unique_lock<std::shared_mutex> exclusive_;
  std::shared_lock<std::shared_mutex> shared_;
  pid_t pid_ = 0;
};

// --- Spawning support -------------------------------------------------------

// An owned file descriptor.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// A pipe whose ends are close-on-exec and numbered 3 or above, so that a
// concurrent spawn never inherits them and dup2 onto 0..2 never collides.
// Throws taskengine::Error on failure.
std::pair<UniqueFd, UniqueFd> make_pipe();  // {read end, write end}

// /dev/null opened for reading, close-on-exec.
UniqueFd open_dev_null();

// What the child's stdio and working directory become; -1 / nullptr inherit.
struct ChildSetup {
  int in = -1;
  int out = -1;
  int err = -1;
  const char* cwd = nullptr;
  int report = -1;  // ChildSetupReport::write_fd()
  // The spawning process, read before the fork: the child dies with it.
  pid_t parent = ::getpid();
};

// Runs in the forked child before exec, so only async-signal-safe calls: new
// process group (setpgid(0, 0)), PR_SET_PDEATHSIG(SIGKILL), default
// dispositions for every signal and an empty signal mask (a worker may ignore
// SIGPIPE or block SIGTERM, which children would inherit), stdio, working
// directory, every other descriptor close-on-exec. On failure it reports the
// step and errno through setup.report and _exits(127): never exec in a
// half-prepared child.
void prepare_child(const ChildSetup& setup) noexcept;

// The steps of prepare_child() without the report: nullptr when all went
// well, else the step that failed, with errno set. The signal mask is
// emptied last, so a child that starts with every signal blocked (as
// spawn_child() does) takes no signal before its dispositions are default.
// _exits(127) if the parent is already gone.
const char* prepare_child_steps(const ChildSetup& setup) noexcept;

// Carries a prepare_child() failure to the parent. Boost's own channel is not
// used for that: Boost 1.74 writes a child-side error in three write() calls
// but reads it with one read(), so a short read yields a garbage length.
class ChildSetupReport {
 public:
  ChildSetupReport();  // throws taskengine::Error if no pipe can be made
  int write_fd() const { return write_end_.get(); }
  // Call once the spawn returned, i.e. the child has exec'd or exited.
  // {step, reason}, e.g. {"chdir", "No such file or directory"}, or nullopt.
  std::optional<std::pair<std::string, std::string>> failure();

 private:
  UniqueFd read_end_;
  UniqueFd write_end_;
};

// execvp-style lookup of `name` in `path` (a PATH value; names with a '/' are
// returned unchanged). nullopt when no executable regular file matches.
std::optional<std::string> find_executable(const std::string& name, const std::string& path);

// The worker's environment with `overlay` applied (nullopt removes a name),
// as "K=V" strings for execve.
std::vector<std::string> build_environment(
    const std::map<std::string, std::optional<std::string>>& overlay);

// The PATH value inside an environment built above (a default if unset).
std::string path_of(const std::vector<std::string>& environment);

// Describes a wait status: "exited with code 3", "was killed by signal 9 (SIGKILL)".
std::string describe_status(int status);

// Waits (without reaping, so Boost's waitpid still sees it) until `pid` has
// exited; with block == false only checks. True once it has exited.
bool child_exited(pid_t pid, bool block);

}  // namespace taskengine::exec
