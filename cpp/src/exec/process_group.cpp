#include "exec/process_group.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <string_view>
#include <thread>

#include "taskengine/errors.hpp"

extern char** environ;

namespace taskengine::exec {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::atomic<bool> g_subreaper{false};

std::shared_mutex& spawn_mutex() {
  static std::shared_mutex m;
  return m;
}

struct Owned {
  std::mutex mutex;
  std::multiset<pid_t> pids;  // multiset: a pid may be reused before its old owner forgets it
};

Owned& owned() {
  static Owned o;
  return o;
}

std::string errno_text(int err) {
  char buf[256];
  return strerror_r(err, buf, sizeof buf);  // GNU variant returns the message
}

// The fields of /proc/<pid>/stat this file needs.
struct ProcStat {
  pid_t pid;
  char state;
  pid_t ppid;
  pid_t pgrp;
};

// Calls fn(stat) for every process until fn returns true; returns whether it did.
template <typename Fn>
bool scan_processes(Fn&& fn) {
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir("/proc"), ::closedir);
  if (!dir) return false;
  while (const dirent* entry = ::readdir(dir.get())) {
    char* end = nullptr;
    const long pid = std::strtol(entry->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;  // exited meanwhile
    char buf[512];
    const ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0) continue;
    buf[n] = '\0';
    // "pid (comm) S ppid pgrp ...": comm may hold spaces and parens, the
    // fields after it hold neither, so the last ')' ends it.
    const char* close_paren = std::strrchr(buf, ')');
    if (close_paren == nullptr) continue;
    ProcStat stat{static_cast<pid_t>(pid), '?', 0, 0};
    int ppid = 0;
    int pgrp = 0;
    if (std::sscanf(close_paren + 1, " %c %d %d", &stat.state, &ppid, &pgrp) != 3) continue;
    stat.ppid = ppid;
    stat.pgrp = pgrp;
    if (fn(stat)) return true;
  }
  return false;
}

// Polls until no member of the group runs or the deadline passes.
bool wait_group_stopped(pid_t pgid, Clock::time_point deadline) {
  auto step = milliseconds(2);
  for (;;) {
    reap_strays();
    if (!group_running(pgid)) {
      reap_strays();  // members that became zombies after the first pass
      return true;
    }
    const auto now = Clock::now();
    if (now >= deadline) return false;
    std::this_thread::sleep_for(std::min<Clock::duration>(step, deadline - now));
    step = std::min(step * 2, milliseconds(50));
  }
}

}  // namespace

bool group_alive(pid_t pgid) {
  if (pgid <= 0) return false;
  return ::kill(-pgid, 0) == 0 || errno == EPERM;
}

bool group_running(pid_t pgid) {
  if (!group_alive(pgid)) return false;
  return scan_processes(
      [pgid](const ProcStat& s) { return s.pgrp == pgid && s.state != 'Z' && s.state != 'X'; });
}

void terminate_group(pid_t pgid, milliseconds grace) {
  // kill(-1) would signal every process we may signal, kill(0) our own group.
  if (pgid <= 1)
    throw InvalidArgument("terminate_group: invalid process group " + std::to_string(pgid));
  if (pgid == ::getpgrp())
    throw InvalidArgument("terminate_group: refusing to signal the worker's own process group");
  if (::kill(-pgid, SIGTERM) != 0 && errno == ESRCH) return;
  ::kill(-pgid, SIGCONT);
  if (wait_group_stopped(pgid, Clock::now() + grace)) return;
  spdlog::warn("process group {} still running {} ms after SIGTERM; sending SIGKILL", pgid,
               grace.count());
  ::kill(-pgid, SIGKILL);
  if (!wait_group_stopped(pgid, Clock::now() + milliseconds(1000)))
    spdlog::warn("process group {} still running 1 s after SIGKILL (uninterruptible sleep?)", pgid);
}

void become_subreaper() {
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
    throw Error("prctl(PR_SET_CHILD_SUBREAPER): " + errno_text(errno));
  g_subreaper = true;
}

bool is_subreaper() { return g_subreaper; }

std::size_t reap_strays() {
  if (!g_subreaper) return 0;
  // Holding the spawn lock means no child is between fork and registration.
  std::lock_guard spawn(spawn_mutex());
  std::multiset<pid_t> mine;
  {
    std::lock_guard lock(owned().mutex);
    mine = owned().pids;
  }
  const pid_t self = ::getpid();
  const pid_t own_group = ::getpgrp();
  std::vector<pid_t> strays;
  scan_processes([&](const ProcStat& s) {
    if (s.ppid == self && s.state == 'Z' && s.pgrp != own_group && mine.count(s.pid) == 0)
      strays.push_back(s.pid);
    return false;
  });
  std::size_t reaped = 0;
  for (const pid_t pid : strays)
    if (::waitpid(pid, nullptr, WNOHANG) == pid) ++reaped;
  return reaped;
}

OwnedChild::OwnedChild(SpawnLock lock) {
  if (lock == SpawnLock::Exclusive)
    exclusive_ = std::unique_lock(spawn_mutex());
  else
    shared_ = std::shared_lock(spawn_mutex());
}

OwnedChild::~OwnedChild() {
  if (pid_ <= 0) return;
  std::lock_guard lock(owned().mutex);
  if (const auto it = owned().pids.find(pid_); it != owned().pids.end()) owned().pids.erase(it);
}

void OwnedChild::spawned(pid_t pid) {
  if (pid > 0 && pid_ <= 0) {
    pid_ = pid;
    std::lock_guard lock(owned().mutex);
    owned().pids.insert(pid);
  }
  if (exclusive_.owns_lock()) exclusive_.unlock();
  if (shared_.owns_lock()) shared_.unlock();
}

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) reset(std::exchange(other.fd_, -1));
  return *this;
}

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

namespace {
// Moves fd to 3 or above (a worker started with 0..2 closed would get them).
UniqueFd above_stdio(UniqueFd fd) {
  if (fd.get() >= 3) return fd;
  const int moved = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
  if (moved < 0) throw Error("fcntl(F_DUPFD_CLOEXEC): " + errno_text(errno));
  return UniqueFd(moved);
}
}  // namespace

std::pair<UniqueFd, UniqueFd> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw Error("pipe2: " + errno_text(errno));
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);
  return {above_stdio(std::move(read_end)), above_stdio(std::move(write_end))};
}

UniqueFd open_dev_null() {
  const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("open /dev/null: " + errno_text(errno));
  return above_stdio(UniqueFd(fd));
}

namespace {
// What a failed prepare_child() writes: one write() of at most PIPE_BUF bytes is atomic.
struct SetupFailure {
  int error;
  char step[28];
};
}  // namespace

const char* prepare_child_steps(const ChildSetup& setup) noexcept {
  if (::setpgid(0, 0) != 0) return "setpgid";
  // A worker killed with SIGKILL must not leave its tasks running beside
  // their retries elsewhere: the child gets SIGKILL when the thread that
  // spawned it (a slot, which lives as long as the worker) goes away. The
  // getppid() check closes the race with a parent that died before prctl.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return "prctl";
  if (::getppid() != setup.parent) ::_exit(127);
  // Every signal to its default: ignored ones would survive exec, and a
  // handler must never run in a child that shares the parent's memory.
  // (glibc's internal signals refuse the change; they are never sent here.)
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig)
    if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);
  // Our fds are >= 3 (make_pipe), so these never overwrite each other.
  if (setup.in >= 0 && ::dup2(setup.in, STDIN_FILENO) < 0) return "dup2 stdin";
  if (setup.out >= 0 && ::dup2(setup.out, STDOUT_FILENO) < 0) return "dup2 stdout";
  if (setup.err >= 0 && ::dup2(setup.err, STDERR_FILENO) < 0) return "dup2 stderr";
  if (setup.cwd != nullptr && ::chdir(setup.cwd) != 0) return "chdir";
  // Descriptors the worker leaked without O_CLOEXEC stay out of tasks.
  // Marked rather than closed: Boost's exec-error pipe must live until exec.
  // Kernels before 5.11 lack the flag; nothing else depends on it.
  ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  return nullptr;
}

void prepare_child(const ChildSetup& setup) noexcept {
  const char* step = prepare_child_steps(setup);
  if (step == nullptr) return;
  SetupFailure report{errno, {}};
  std::strncpy(report.step, step, sizeof report.step - 1);
  if (setup.report >= 0) {
    [[maybe_unused]] const ssize_t written = ::write(setup.report, &report, sizeof report);
  }
  ::_exit(127);
}

ChildSetupReport::ChildSetupReport() {
  auto [read_end, write_end] = make_pipe();
  read_end_ = std::move(read_end);
  write_end_ = std::move(write_end);
}

std::optional<std::pair<std::string, std::string>> ChildSetupReport::failure() {
  write_end_.reset();
  // The child has exec'd or exited by now, so a report is there or never comes.
  pollfd pfd{read_end_.get(), POLLIN, 0};
  if (::poll(&pfd, 1, 0) <= 0) return std::nullopt;
  SetupFailure report{};
  if (::read(read_end_.get(), &report, sizeof report) != static_cast<ssize_t>(sizeof report))
    return std::nullopt;  // EOF: exec succeeded
  report.step[sizeof report.step - 1] = '\0';
  return std::make_pair(std::string(report.step), errno_text(report.error));
}

std::optional<std::string> find_executable(const std::string& name, const std::string& path) {
  if (name.empty()) return std::nullopt;
  if (name.find('/') != std::string::npos) return name;
  std::string_view rest = path;
  for (;;) {
    const auto colon = rest.find(':');
    std::string dir(rest.substr(0, colon));
    if (dir.empty()) dir = ".";  // an empty PATH entry means the current directory
    const std::string candidate = dir + "/" + name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0)
      return candidate;
    if (colon == std::string_view::npos) return std::nullopt;
    rest.remove_prefix(colon + 1);
  }
}

std::vector<std::string> build_environment(
    const std::map<std::string, std::optional<std::string>>& overlay) {
  std::vector<std::string> result;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view item(*entry);
    const auto eq = item.find('=');
    if (eq == std::string_view::npos) continue;
    if (overlay.count(std::string(item.substr(0, eq))) != 0) continue;
    result.emplace_back(item);
  }
  for (const auto& [name, value] : overlay)
    if (value) result.push_back(name + "=" + *value);
  return result;
}

std::string path_of(const std::vector<std::string>& environment) {
  for (const auto& item : environment)
    if (item.rfind("PATH=", 0) == 0) return item.substr(5);
  return "/usr/local/bin:/usr/bin:/bin";  // what execvp assumes
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* abbrev = ::sigabbrev_np(sig);
    return "was killed by signal " + std::to_string(sig) +
           (abbrev != nullptr ? std::string(" (SIG") + abbrev + ")" : std::string());
  }
  return "ended with wait status " + std::to_string(status);
}

bool child_exited(pid_t pid, bool block) {
  for (;;) {
    siginfo_t info{};
    const int flags = WEXITED | WNOWAIT | (block ? 0 : WNOHANG);
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, flags) == 0) return info.si_pid == pid;
    if (errno == EINTR) continue;
    // ECHILD: already reaped (or never ours), so certainly not running.
    return true;
  }
}

}  // namespace taskengine::exec
