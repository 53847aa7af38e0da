#pragma once

// Runs a `command` task: an argv, natively, in its own process group.

#include <sys/types.h>

#include <cstddef>
#include <functional>
#include <string>

#include "taskengine/json.hpp"

namespace taskengine::exec {

struct CommandResult {
  int returncode = 0;   // exit code; -N when killed by signal N (as Python's subprocess)
  std::string output;   // tail of merged stdout+stderr, at most tail_bytes
  int term_signal = 0;  // 0 if the command exited
};

// payload: {"argv": [non-empty list of strings], "env": {"K": "V"} | null,
//           "cwd": "..." | null}
// env overlays the worker's environment (a null value removes the name);
// argv[0] without a '/' is looked up in the PATH of that environment.
//
// The command runs in a new process group with stdin from /dev/null and
// stdout+stderr merged into one pipe, read to EOF keeping the last tail_bytes
// (a partial UTF-8 sequence cut at the start is dropped). on_started(pgid) is
// called right after the spawn so another thread may terminate_group() it.
// When the command's main process exits, whatever it left in its group is
// SIGKILLed: a task's processes end with the task.
//
// Throws InvalidArgument for a bad payload. A program that cannot be run (not
// found, not executable, bad cwd) gives returncode 127 with the reason in
// output, like a shell. Safe to call from several threads at once.
CommandResult run_command(const Json& payload, const std::function<void(pid_t)>& on_started,
                          std::size_t tail_bytes = 64 * 1024);

}  // namespace taskengine::exec
