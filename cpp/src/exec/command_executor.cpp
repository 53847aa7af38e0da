#include "exec/command_executor.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/process/child.hpp>
#include <boost/process/error.hpp>
#include <boost/process/extend.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <system_error>
#include <vector>

#include "exec/process_group.hpp"
#include "taskengine/errors.hpp"

namespace taskengine::exec {
namespace {

namespace bp = boost::process;
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

std::string setup_failure(const Command& cmd, const std::string& step, const std::string& reason) {
  if (step == "chdir")
    return "cannot change directory to '" + cmd.cwd.value_or("") + "': " + reason;
  return "cannot start '" + cmd.argv.front() + "': " + step + ": " + reason;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> result;
  result.reserve(strings.size() + 1);
  for (auto& s : strings) result.push_back(s.data());
  result.push_back(nullptr);
  return result;
}

// Kills and reaps the child when the run is left by an exception.
class ChildGuard {
 public:
  explicit ChildGuard(bp::child& child) : child_(child) {}
  ~ChildGuard() {
    if (!armed_) return;
    ::kill(-child_.id(), SIGKILL);
    std::error_code ec;
    child_.wait(ec);
  }
  ChildGuard(const ChildGuard&) = delete;
  ChildGuard& operator=(const ChildGuard&) = delete;
  void release() { armed_ = false; }

 private:
  bp::child& child_;
  bool armed_ = true;
};

// Reads `fd` to EOF into `tail`. Once the leader has exited, its leftovers are
// killed and reading stops after kDrainTime even if one escaped the group
// still holding the pipe.
void read_output(int fd, pid_t pid, TailBuffer& tail) {
  std::vector<char> chunk(64 * 1024);
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
      const ssize_t n = ::read(fd, chunk.data(), chunk.size());
      if (n == 0) return;  // EOF: every writer is gone
      if (n > 0)
        tail.append(chunk.data(), static_cast<std::size_t>(n));
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
  std::vector<char*> argv_ptrs = c_strings(argv);
  std::vector<char*> env_ptrs = c_strings(environment);
  auto [read_end, write_end] = make_pipe();
  UniqueFd null_in = open_dev_null();
  ChildSetupReport report;
  const ChildSetup setup{null_in.get(), write_end.get(), write_end.get(),
                         cmd.cwd ? cmd.cwd->c_str() : nullptr, report.write_fd()};

  std::error_code spawn_error;
  pid_t failed_pid = -1;
  OwnedChild owned;
  bp::child child(
      bp::error = spawn_error,
      // argv[0] stays as given (not the resolved path), like a shell.
      bp::extend::on_setup =
          [&](auto& exec) {
            exec.exe = exe->c_str();
            exec.cmd_line = argv_ptrs.data();
            exec.env = env_ptrs.data();
          },
      bp::extend::on_exec_setup = [&setup](auto&) { prepare_child(setup); },
      bp::extend::on_error = [&failed_pid](auto& exec,
                                           const std::error_code&) { failed_pid = exec.pid; });
  if (!child.valid()) {
    if (failed_pid > 0) ::waitpid(failed_pid, nullptr, 0);  // Boost leaves it unreaped
    owned.spawned(-1);
    return cannot_run("cannot execute '" + cmd.argv.front() + "': " + spawn_error.message(),
                      tail_bytes);
  }
  const pid_t pid = child.id();  // == pgid: setpgid(0, 0) ran in the child
  owned.spawned(pid);
  ChildGuard guard(child);
  if (const auto failure = report.failure())  // the guard reaps the child
    return cannot_run(setup_failure(cmd, failure->first, failure->second), tail_bytes);
  write_end.reset();  // EOF must come when the child's copies close
  null_in.reset();
  if (on_started) on_started(pid);

  TailBuffer tail(tail_bytes);
  read_output(read_end.get(), pid, tail);
  child_exited(pid, true);
  ::kill(-pid, SIGKILL);  // leftovers, while the zombie leader still pins the pgid
  std::error_code wait_error;
  child.wait(wait_error);
  if (wait_error)
    throw Error("waitpid for command '" + cmd.argv.front() + "': " + wait_error.message());
  guard.release();

  const int status = child.native_exit_code();
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
