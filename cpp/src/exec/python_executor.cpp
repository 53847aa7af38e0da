#include "exec/python_executor.hpp"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/process/child.hpp>
#include <boost/process/error.hpp>
#include <boost/process/extend.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <string_view>
#include <system_error>
#include <thread>

#include "exec/process_group.hpp"
#include "taskengine/errors.hpp"

namespace taskengine::exec {
namespace {

namespace bp = boost::process;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kExitCheckMs = 100;  // how often a silent executor is checked for death
constexpr auto kStopGrace = milliseconds(2000);
constexpr auto kExitAfterEof = milliseconds(1000);

Json make_error(const std::string& type, const std::string& message) {
  return Json{{"type", type}, {"message", message}, {"traceback", Json::array()}};
}

// Gives an error from the executor the documented shape, whatever it sent.
Json normalize_error(const Json& error) {
  if (!error.is_object())
    return make_error("ProtocolError", "the executor reported a failure without an error object");
  Json result = error;
  if (!result.contains("type") || !result["type"].is_string()) result["type"] = "Error";
  if (!result.contains("message") || !result["message"].is_string()) result["message"] = "";
  if (!result.contains("traceback") || !result["traceback"].is_array())
    result["traceback"] = Json::array();
  return result;
}

thread_local bool sigpipe_blocked_for_good = false;

// Writes all of `data`; false once the reader is gone. SIGPIPE is blocked
// for this thread around the write and a SIGPIPE it raised is consumed, so
// the process need not ignore SIGPIPE globally (the approach libpq takes).
// Threads that called block_sigpipe_in_this_thread() skip the three system
// calls of the dance: for the worker's slots this is the per-task path.
bool write_all(int fd, std::string_view data) {
  sigset_t pipe_set;
  ::sigemptyset(&pipe_set);
  ::sigaddset(&pipe_set, SIGPIPE);
  sigset_t old_mask;
  bool was_pending = false;
  if (!sigpipe_blocked_for_good) {
    ::pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
    sigset_t pending;
    ::sigpending(&pending);
    was_pending = ::sigismember(&pending, SIGPIPE) == 1;
  }
  bool ok = true;
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n >= 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
    } else if (errno != EINTR) {
      ok = false;
      break;
    }
  }
  if (!ok && !was_pending) {
    const timespec zero{};
    ::sigtimedwait(&pipe_set, nullptr, &zero);
  }
  if (!sigpipe_blocked_for_good) ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  return ok;
}

}  // namespace

void block_sigpipe_in_this_thread() {
  sigset_t pipe_set;
  ::sigemptyset(&pipe_set);
  ::sigaddset(&pipe_set, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_set, nullptr);
  sigpipe_blocked_for_good = true;
}

namespace {}  // namespace

struct PythonExecutor::Process {
  OwnedChild owned;  // first: registered before the spawn, forgotten after the reap
  bp::child child;
  pid_t pid = 0;  // == pgid: setpgid(0, 0) ran in the child
  UniqueFd requests;
  UniqueFd responses;
  std::string buffer;  // bytes read and not yet consumed, from `consumed` on
  std::size_t consumed = 0;
  bool eof = false;
  bool ready = false;

  // The next line the executor wrote, without its '\n' (valid until the next
  // call), or nullopt once it is gone.
  std::optional<std::string_view> read_line();
  // The next JSON object the executor wrote, or nullopt once it is gone.
  std::optional<Json> read_message();
  // `line` as a JSON object; nullopt (and a warning) when it is not one.
  std::optional<Json> parse_message(std::string_view line) const;

 private:
  std::optional<std::string_view> next_line();
  bool fill(int timeout_ms);
};

std::optional<std::string_view> PythonExecutor::Process::next_line() {
  const auto newline = buffer.find('\n', consumed);
  if (newline == std::string::npos) return std::nullopt;
  const std::string_view line(buffer.data() + consumed, newline - consumed);
  consumed = newline + 1;
  return line;
}

// Reads what is available within timeout_ms; false when nothing came.
bool PythonExecutor::Process::fill(int timeout_ms) {
  if (consumed > 0) {  // only here: lines handed out stay valid until the next read
    buffer.erase(0, consumed);
    consumed = 0;
  }
  pollfd pfd{responses.get(), POLLIN, 0};
  const int ready_fds = ::poll(&pfd, 1, timeout_ms);
  if (ready_fds < 0 && errno != EINTR) throw Error(std::string("poll: ") + std::strerror(errno));
  if (ready_fds <= 0) return false;
  char chunk[64 * 1024];
  const ssize_t n = ::read(responses.get(), chunk, sizeof chunk);
  if (n > 0)
    buffer.append(chunk, static_cast<std::size_t>(n));
  else if (n == 0)
    eof = true;
  else if (errno != EINTR && errno != EAGAIN)
    throw Error(std::string("read: ") + std::strerror(errno));
  return n != 0;
}

std::optional<Json> PythonExecutor::Process::parse_message(std::string_view line) const {
  Json message = Json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (message.is_object()) return message;
  // The real executor keeps user output off this pipe; say so if it leaks.
  spdlog::warn("python executor {}: ignoring a line that is not a JSON object: {:.200}", pid, line);
  return std::nullopt;
}

std::optional<Json> PythonExecutor::Process::read_message() {
  while (auto line = read_line())
    if (auto message = parse_message(*line)) return message;
  return std::nullopt;
}

std::optional<std::string_view> PythonExecutor::Process::read_line() {
  for (;;) {
    if (auto line = next_line()) return line;
    if (eof) return std::nullopt;
    if (fill(kExitCheckMs)) continue;
    // Silence: a grandchild may hold the pipe open after the executor died,
    // so EOF alone cannot tell. Take what it wrote before dying, then give up.
    if (!eof && child_exited(pid, false)) {
      for (int i = 0; i < 64 && !eof && fill(0); ++i) {
      }
      eof = true;
    }
  }
}

PythonExecutor::PythonExecutor(std::string python_exe, std::vector<std::string> imports,
                               std::map<std::string, std::string> extra_env)
    : python_exe_(std::move(python_exe)),
      imports_(std::move(imports)),
      extra_env_(std::move(extra_env)) {
  if (python_exe_.empty()) throw InvalidArgument("PythonExecutor: python_exe is empty");
  for (const auto& module : imports_)
    if (module.empty() || module.find('\0') != std::string::npos)
      throw InvalidArgument("PythonExecutor: invalid module name to import: '" + module + "'");
  for (const auto& [name, value] : extra_env_)
    if (name.empty() || name.find('=') != std::string::npos)
      throw InvalidArgument("PythonExecutor: invalid environment variable name '" + name + "'");
}

PythonExecutor::~PythonExecutor() {
  try {
    stop();
  } catch (const std::exception& e) {
    spdlog::error("python executor: stopping failed: {}", e.what());
  }
}

void PythonExecutor::start() {
  const std::map<std::string, std::optional<std::string>> overlay(extra_env_.begin(),
                                                                  extra_env_.end());
  std::vector<std::string> environment = build_environment(overlay);
  const auto exe = find_executable(python_exe_, path_of(environment));
  if (!exe)
    throw Error("cannot start the Python executor: '" + python_exe_ + "' not found in PATH");
  std::vector<std::string> argv{python_exe_, "-m", "taskengine._executor"};
  for (const auto& module : imports_) {
    argv.emplace_back("--import");
    argv.push_back(module);
  }
  std::vector<char*> argv_ptrs;
  for (auto& s : argv) argv_ptrs.push_back(s.data());
  argv_ptrs.push_back(nullptr);
  std::vector<char*> env_ptrs;
  for (auto& s : environment) env_ptrs.push_back(s.data());
  env_ptrs.push_back(nullptr);

  auto [request_read, request_write] = make_pipe();
  auto [response_read, response_write] = make_pipe();
  ChildSetupReport report;
  const ChildSetup setup{request_read.get(), response_write.get(), -1, nullptr, report.write_fd()};

  auto process = std::make_unique<Process>();  // takes the spawn lock
  std::error_code spawn_error;
  pid_t failed_pid = -1;
  process->child = bp::child(
      bp::error = spawn_error,
      bp::extend::on_setup =
          [&](auto& exec) {
            exec.exe = exe->c_str();
            exec.cmd_line = argv_ptrs.data();
            exec.env = env_ptrs.data();
          },
      bp::extend::on_exec_setup = [&setup](auto&) { prepare_child(setup); },
      bp::extend::on_error = [&failed_pid](auto& exec,
                                           const std::error_code&) { failed_pid = exec.pid; });
  if (!process->child.valid()) {
    if (failed_pid > 0) ::waitpid(failed_pid, nullptr, 0);  // Boost leaves it unreaped
    process->owned.spawned(-1);
    throw Error("cannot start the Python executor '" + *exe + "': " + spawn_error.message());
  }
  process->pid = process->child.id();
  process->owned.spawned(process->pid);
  if (const auto failure = report.failure()) {
    std::error_code ignored;
    process->child.wait(ignored);
    throw Error("cannot start the Python executor '" + *exe + "': " + failure->first + ": " +
                failure->second);
  }
  process->requests = std::move(request_write);
  process->responses = std::move(response_read);
  pgid_ = process->pid;
  process_ = std::move(process);
}

bool PythonExecutor::warm() const { return process_ && process_->ready; }

void PythonExecutor::prestart() {
  discard_if_exited();
  if (process_) return;
  try {
    start();
  } catch (const Error&) {
    // run() starts again and reports the error as the task's outcome.
  }
}

PythonOutcome PythonExecutor::run(const Json& request, const std::function<void(pid_t)>& on_started,
                                  const std::function<void(const Json&)>& on_message) {
  if (!request.is_object() || !request.contains("id") || !request["id"].is_number_integer())
    throw InvalidArgument("python executor request must be an object with an integer 'id'");
  const std::string line = request.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  return run(request["id"].get<std::int64_t>(), line, on_started, on_message);
}

PythonOutcome PythonExecutor::run(std::int64_t id, std::string_view request_line,
                                  const std::function<void(pid_t)>& on_started,
                                  const std::function<void(const Json&)>& on_message) {
  if (request_line.empty() || request_line.back() != '\n')
    throw InvalidArgument("python executor request line must end with a newline");
  discard_if_exited();
  if (!process_) {
    try {
      start();
    } catch (const Error& e) {
      return PythonOutcome{false, nullptr, make_error("ExecutorStartError", e.what())};
    }
  }
  try {
    if (on_started) on_started(process_->pid);
    while (!process_->ready) {
      auto message = process_->read_message();
      if (!message) return lost("while starting");
      if (!message->contains("ready")) {
        if (on_message) on_message(*message);
        continue;
      }
      if (message->value("ready", false)) {
        process_->ready = true;
      } else {
        Json error = normalize_error(message->value("error", Json()));
        stop();
        return PythonOutcome{false, nullptr, std::move(error)};
      }
    }

    if (!write_all(process_->requests.get(), request_line)) return lost("while receiving a task");
    const Json id_json(id);
    // What taskengine._executor writes for a task that returned None, as no-op
    // tasks do: recognised without parsing it.
    const std::string none_result =
        "{\"id\":" + std::to_string(id) + ",\"ok\":true,\"result\":null}";
    for (;;) {
      auto line = process_->read_line();
      if (!line) return lost("while running a task");
      if (*line == none_result) return PythonOutcome{true, nullptr, nullptr};
      auto message = process_->parse_message(*line);
      if (!message) continue;
      if (!message->contains("ok")) {
        if (on_message) on_message(*message);
        continue;
      }
      if (message->value("id", Json()) != id_json) {
        spdlog::warn("python executor {}: dropping a response for id {} while waiting for id {}",
                     process_->pid, message->value("id", Json()).dump(), id);
        continue;
      }
      if (message->value("ok", false))
        return PythonOutcome{true, message->value("result", Json()), nullptr};
      return PythonOutcome{false, nullptr, normalize_error(message->value("error", Json()))};
    }
  } catch (...) {
    // A callback or I/O failed mid-task: the process state is unknown, so it
    // is not reused.
    kill_and_reap();
    throw;
  }
}

void PythonExecutor::discard_if_exited() {
  if (!process_ || !child_exited(process_->pid, false)) return;
  spdlog::info("python executor {} ended while idle; starting a fresh one", process_->pid);
  kill_and_reap();
}

PythonOutcome PythonExecutor::lost(const std::string& while_doing) {
  const pid_t pid = process_->pid;
  // EOF can come a moment before the exit; do not mistake a dying process for a stuck one.
  const auto deadline = Clock::now() + kExitAfterEof;
  while (!child_exited(pid, false) && Clock::now() < deadline)
    std::this_thread::sleep_for(milliseconds(5));
  ::kill(-pid, SIGKILL);  // leftovers, or the leader itself if it only closed stdout
  pgid_ = 0;
  std::error_code ec;
  process_->child.wait(ec);
  const std::string how = ec ? "ended (waitpid: " + ec.message() + ")"
                             : describe_status(process_->child.native_exit_code());
  process_.reset();
  const std::string message =
      "the Python executor process " + std::to_string(pid) + " " + how + " " + while_doing;
  spdlog::warn("{}", message);
  return PythonOutcome{false, nullptr, make_error("ExecutorLost", message)};
}

void PythonExecutor::kill_and_reap() {
  if (!process_) return;
  ::kill(-process_->pid, SIGKILL);
  pgid_ = 0;
  std::error_code ec;
  process_->child.wait(ec);
  process_.reset();
}

void PythonExecutor::stop() {
  if (!process_) return;
  const pid_t pid = process_->pid;
  process_->requests.reset();  // EOF ends the executor's request loop
  const auto deadline = Clock::now() + kStopGrace;
  while (!child_exited(pid, false) && Clock::now() < deadline)
    std::this_thread::sleep_for(milliseconds(5));
  if (!child_exited(pid, false)) terminate_group(pid, kStopGrace);
  kill_and_reap();
}

}  // namespace taskengine::exec
