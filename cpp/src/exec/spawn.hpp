#pragma once

// A fast spawn for executors: clone(CLONE_VM | CLONE_VFORK) instead of fork,
// so the worker's page tables are not copied and its threads take no
// copy-on-write faults afterwards, with the guarantees of prepare_child()
// (own process group, PDEATHSIG, default signals, stdio, cwd, no inherited
// descriptors). The command executor uses it; the Python executor can too.

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "exec/process_group.hpp"
#include "taskengine/errors.hpp"

namespace taskengine::exec {

// A spawn that did not get as far as running the program: step is "clone",
// "exec" or a prepare_child() step such as "chdir"; reason is strerror's text.
class SpawnError : public Error {
 public:
  SpawnError(std::string step, std::string reason)
      : Error(step + ": " + reason), step_(std::move(step)), reason_(std::move(reason)) {}
  const std::string& step() const { return step_; }
  const std::string& reason() const { return reason_; }

 private:
  std::string step_;
  std::string reason_;
};

// A child from spawn_child(): registered as owned (OwnedChild) until reaped.
// Its pid is also its process group. Dropped unreaped, its group is
// SIGKILLed and it is reaped.
class SpawnedChild {
 public:
  SpawnedChild() = default;
  ~SpawnedChild();
  SpawnedChild(SpawnedChild&& other) noexcept;
  SpawnedChild& operator=(SpawnedChild&& other) noexcept;
  SpawnedChild(const SpawnedChild&) = delete;
  SpawnedChild& operator=(const SpawnedChild&) = delete;

  pid_t pid() const { return pid_; }
  explicit operator bool() const { return pid_ > 0; }
  // Waits for the child's exit and reaps it; the wait status (as waitpid
  // gives it). Later calls return the same status. Throws Error if waitpid
  // fails (someone else reaped it): the child is then never signalled
  // again, since its pid and group number may already be someone else's.
  int wait();

 private:
  friend SpawnedChild spawn_child(const char*, char* const*, char* const*, const ChildSetup&);
  void reset() noexcept;

  pid_t pid_ = 0;
  std::optional<int> status_;
  bool lost_ = false;  // waitpid failed: not ours to signal or reap any more
  std::unique_ptr<OwnedChild> owned_;
};

// Starts `path` (an executable path, not looked up) with `argv` and `envp`
// (null-terminated, as for execve), prepared as prepare_child() describes;
// setup.report is not used: a failed step comes back through the memory the
// child shares until its exec. Returns once the child has exec'd; throws
// SpawnError (the child reaped) if a step or the exec failed. Safe to call
// from several threads at once: spawns run side by side (SpawnLock::Shared),
// as every descriptor the spawn creates is close-on-exec.
SpawnedChild spawn_child(const char* path, char* const* argv, char* const* envp,
                         const ChildSetup& setup);

// Pointers to the strings' characters, then a null: an argv or envp for
// spawn_child(), valid while `strings` stays unchanged.
std::vector<char*> exec_array(std::vector<std::string>& strings);

}  // namespace taskengine::exec
