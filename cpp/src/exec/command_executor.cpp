#include "exec/command_executor.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "exec/process_group.hpp"
#include "exec/spawn.hpp"
#include "taskengine/errors.hpp"

namespace taskengine::exec {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr auto kExitCheckInterval = milliseconds(50);
// After the main process exits, how long output from its leftovers is read.
constexpr auto kDrainTime = milliseconds(1000);

struct Command {
  std::vector<std::string> argv;
  std::map<std::string, std::optional<std::string>> env;
  std::optional<std::string> cwd;
};

bool has_nul(const std::string& s) { return s.find('\0') != std::string::npos; }

Command parse_payload(const Json& payload) {
  if (!payload.is_object()) throw InvalidArgument("command payload must be a JSON object");
  Command cmd;
  const auto argv = payload.find("argv");
  if (argv == payload.end() || !argv->is_array() || argv->empty())
    throw InvalidArgument("command payload: 'argv' must be a non-empty list of strings");
  for (const auto& item : *argv) {
    if (!item.is_string() || has_nul(item.get_ref<const std::string&>()))
      throw InvalidArgument(
          "command payload: every 'argv' item must be a string without NUL bytes");
    cmd.argv.push_back(item.get<std::string>());
  }
  if (cmd.argv.front().empty()) throw InvalidArgument("command payload: 'argv[0]' is empty");

  if (const auto env = payload.find("env"); env != payload.end() && !env->is_null()) {
    if (!env->is_object())
      throw InvalidArgument("command payload: 'env' must be an object or null");
    for (const auto& [name, value] : env->items()) {
      if (name.empty() || name.find('=') != std::string::npos || has_nul(name))
        throw InvalidArgument("command payload: invalid environment variable name '" + name + "'");
      if (value.is_null()) {
        cmd.env[name] = std::nullopt;
      } else if (value.is_string() && !has_nul(value.get_ref<const std::string&>())) {
        cmd.env[name] = value.get<std::string>();
      } else {
        throw InvalidArgument("command payload: env '" + name + "' must be a string or null");
      }
    }
  }
  if (const auto cwd = payload.find("cwd"); cwd != payload.end() && !cwd->is_null()) {
    if (!cwd->is_string() || cwd->get_ref<const std::string&>().empty() ||
        has_nul(cwd->get_ref<const std::string&>()))
      throw InvalidArgument("command payload: 'cwd' must be a non-empty string or null");
    cmd.cwd = cwd->get<std::string>();
  }
  return cmd;
}

// Keeps the last `limit` bytes of a stream.
class TailBuffer {
 public:
  explicit TailBuffer(std::size_t limit) : limit_(limit) {}

  void append(const char* data, std::size_t n) {
    if (n >= limit_) {
      truncated_ = truncated_ || n > limit_ || !buf_.empty();
      buf_.assign(data + (n - limit_), limit_);
      return;
    }
    buf_.append(data, n);
    if (buf_.size() > 2 * limit_) trim();  // amortized: not on every chunk
  }

  std::string take() {
    trim();
    if (truncated_) {
      // A UTF-8 sequence cut at the start leaves up to 3 continuation bytes.
      std::size_t skip = 0;
      while (skip < 3 && skip < buf_.size() &&
             (static_cast<unsigned char>(buf_[skip]) & 0xC0) == 0x80)
        ++skip;
      buf_.erase(0, skip);
    }
    return std::move(buf_);
  }

 private:
  void trim() {
    if (buf_.size() <= limit_) return;
    buf_.erase(0, buf_.size() - limit_);
    truncated_ = true;
  }

  std::size_t limit_;
  std::string buf_;
  bool truncated_ = false;
};

CommandResult cannot_run(const std::string& reason, std::size_t tail_bytes) {
  TailBuffer tail(tail_bytes);
  const std::string text = "taskengine: " + reason + "\n";
  tail.append(text.data(), text.size());
  return CommandResult{127, tail.take(), 0};
}

std::string spawn_failure(const Command& cmd, const SpawnError& error) {
  if (error.step() == "chdir")
    return "cannot change directory to '" + cmd.cwd.value_or("") + "': " + error.reason();
  if (error.step() == "exec" || error.step() == "clone" || error.step() == "mmap")
    return "cannot execute '" + cmd.argv.front() + "': " + error.reason();
  return "cannot start '" + cmd.argv.front() + "': " + error.step() + ": " + error.reason();
}

// Reads `fd` to EOF into `tail`. Once the leader has exited, its leftovers are
// killed and reading stops after kDrainTime even if one escaped the group
// still holding the pipe.
void read_output(int fd, pid_t pid, TailBuffer& tail) {
  constexpr std::size_t kChunk = 64 * 1024;
  const auto chunk = std::make_unique_for_overwrite<char[]>(kChunk);  // not zeroed per command
  bool leader_exited = false;
  auto drain_deadline = Clock::time_point::max();
  auto next_check = Clock::now() + kExitCheckInterval;
  for (;;) {
    const auto before = Clock::now();
    const auto wait = leader_exited ? std::max(Clock::duration::zero(), drain_deadline - before)
                                    : Clock::duration(kExitCheckInterval);
    pollfd pfd{fd, POLLIN, 0};
    const int ready =
        ::poll(&pfd, 1, static_cast<int>(std::chrono::duration_cast<milliseconds>(wait).count()));
    if (ready < 0 && errno != EINTR) throw Error(std::string("poll: ") + std::strerror(errno));
    if (ready > 0) {
      const ssize_t n = ::read(fd, chunk.get(), kChunk);
      if (n == 0) return;  // EOF: every writer is gone
      if (n > 0)
        tail.append(chunk.get(), static_cast<std::size_t>(n));
      else if (errno != EINTR && errno != EAGAIN)
        throw Error(std::string("read: ") + std::strerror(errno));
    }
    const auto now = Clock::now();
    if (leader_exited) {
      if (now >= drain_deadline) return;
    } else if (ready == 0 || now >= next_check) {
      next_check = now + kExitCheckInterval;
      if (child_exited(pid, false)) {
        ::kill(-pid, SIGKILL);  // the unreaped leader keeps this pgid ours
        leader_exited = true;
        drain_deadline = now + kDrainTime;
      }
    }
  }
}

}  // namespace

CommandResult run_command(const Json& payload, const std::function<void(pid_t)>& on_started,
                          std::size_t tail_bytes) {
  const Command cmd = parse_payload(payload);
  std::vector<std::string> environment = build_environment(cmd.env);
  const auto exe = find_executable(cmd.argv.front(), path_of(environment));
  if (!exe) return cannot_run(cmd.argv.front() + ": command not found", tail_bytes);

  std::vector<std::string> argv = cmd.argv;
  std::vector<char*> argv_ptrs = exec_array(argv);
  std::vector<char*> env_ptrs = exec_array(environment);
  auto [read_end, write_end] = make_pipe();
  UniqueFd null_in = open_dev_null();
  const ChildSetup setup{null_in.get(), write_end.get(), write_end.get(),
                         cmd.cwd ? cmd.cwd->c_str() : nullptr};

  SpawnedChild child;
  try {
    // argv[0] stays as given (not the resolved path), like a shell.
    child = spawn_child(exe->c_str(), argv_ptrs.data(), env_ptrs.data(), setup);
  } catch (const SpawnError& e) {
    return cannot_run(spawn_failure(cmd, e), tail_bytes);
  }
  const pid_t pid = child.pid();  // == pgid: setpgid(0, 0) ran in the child
  write_end.reset();              // EOF must come when the child's copies close
  null_in.reset();
  // If on_started or the read throws, dropping `child` kills and reaps it.
  if (on_started) on_started(pid);

  TailBuffer tail(tail_bytes);
  read_output(read_end.get(), pid, tail);
  child_exited(pid, true);
  ::kill(-pid, SIGKILL);  // leftovers, while the zombie leader still pins the pgid
  const int status = child.wait();

  CommandResult result;
  result.output = tail.take();
  if (WIFSIGNALED(status)) {
    result.term_signal = WTERMSIG(status);
    result.returncode = -result.term_signal;
  } else {
    result.returncode = WEXITSTATUS(status);
  }
  return result;
}

}  // namespace taskengine::exec
