#include "exec/spawn.hpp"

#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <utility>

namespace taskengine::exec {
namespace {

std::string errno_text(int err) {
  char buf[256];
  return strerror_r(err, buf, sizeof buf);  // GNU variant returns the message
}

// The stack the child runs on until its exec: the parent thread is suspended
// meanwhile, but the child must not use the parent's own stack frames. One
// per thread, with a guard page below it, mapped on the thread's first spawn.
class ChildStack {
 public:
  static constexpr std::size_t kSize = 64 * 1024;

  ~ChildStack() {
    if (base_ != nullptr) ::munmap(base_, kSize + guard());
  }
  // The top of the stack (stacks grow down here), or nullptr with errno set.
  void* top() {
    if (base_ == nullptr) {
      void* base = ::mmap(nullptr, kSize + guard(), PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
      if (base == MAP_FAILED) return nullptr;
      if (::mprotect(base, guard(), PROT_NONE) != 0) {
        const int err = errno;
        ::munmap(base, kSize + guard());
        errno = err;
        return nullptr;
      }
      base_ = base;
    }
    return static_cast<std::byte*>(base_) + guard() + kSize;
  }

 private:
  static std::size_t guard() { return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)); }
  void* base_ = nullptr;
};

// Shared between parent and child (CLONE_VM): the child writes a failure
// here before it _exits; the parent reads it once clone() has returned,
// which CLONE_VFORK delays until the child has exec'd or exited.
struct CloneArgs {
  const char* path;
  char* const* argv;
  char* const* envp;
  const ChildSetup* setup;
  const char* failed_step = nullptr;
  int error = 0;
};

// The child: only async-signal-safe calls, no allocation, no locks: it
// shares the memory of a multi-threaded parent whose other threads run on.
// Not instrumented by AddressSanitizer, which cannot follow a stack switch
// into a function that never returns.
__attribute__((no_sanitize_address)) int child_main(void* arg) {
  auto* args = static_cast<CloneArgs*>(arg);
  const char* step = prepare_child_steps(*args->setup);
  if (step == nullptr) {
    ::execve(args->path, args->argv, args->envp);
    step = "exec";
  }
  args->error = errno;
  args->failed_step = step;
  ::_exit(127);
}

// Blocks every signal in the calling thread for its lifetime: the child
// starts with them blocked, so no handler of the parent's runs in it before
// prepare_child_steps() has reset the dispositions.
class AllSignalsBlocked {
 public:
  AllSignalsBlocked() {
    sigset_t all;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &old_);
  }
  ~AllSignalsBlocked() { ::pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  AllSignalsBlocked(const AllSignalsBlocked&) = delete;
  AllSignalsBlocked& operator=(const AllSignalsBlocked&) = delete;

 private:
  sigset_t old_;
};

int wait_status(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR)
      throw Error("waitpid for process " + std::to_string(pid) + ": " + errno_text(errno));
  }
  return status;
}

}  // namespace

SpawnedChild::~SpawnedChild() { reset(); }

SpawnedChild::SpawnedChild(SpawnedChild&& other) noexcept
    : pid_(std::exchange(other.pid_, 0)),
      status_(std::exchange(other.status_, std::nullopt)),
      lost_(std::exchange(other.lost_, false)),
      owned_(std::move(other.owned_)) {}

SpawnedChild& SpawnedChild::operator=(SpawnedChild&& other) noexcept {
  if (this != &other) {
    reset();
    pid_ = std::exchange(other.pid_, 0);
    status_ = std::exchange(other.status_, std::nullopt);
    lost_ = std::exchange(other.lost_, false);
    owned_ = std::move(other.owned_);
  }
  return *this;
}

void SpawnedChild::reset() noexcept {
  if (pid_ > 0 && !status_ && !lost_) {
    // The unreaped child keeps the group number ours, so this reaches no one else.
    ::kill(-pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  owned_.reset();
  pid_ = 0;
  status_.reset();
  lost_ = false;
}

int SpawnedChild::wait() {
  // Never waitpid again: the number may belong to another child by now.
  if (lost_) throw Error("process " + std::to_string(pid_) + " was reaped elsewhere");
  if (!status_) {
    try {
      status_ = wait_status(pid_);
    } catch (const Error&) {
      lost_ = true;
      owned_.reset();
      throw;
    }
    owned_.reset();  // reaped: reap_strays() may take a new process of that number
  }
  return *status_;
}

SpawnedChild spawn_child(const char* path, char* const* argv, char* const* envp,
                         const ChildSetup& setup) {
  thread_local ChildStack stack;
  void* top = stack.top();
  if (top == nullptr) throw SpawnError("mmap", errno_text(errno));

  CloneArgs args{path, argv, envp, &setup};
  auto owned = std::make_unique<OwnedChild>(SpawnLock::Shared);
  pid_t pid;
  {
    AllSignalsBlocked blocked;
    pid = ::clone(child_main, top, CLONE_VM | CLONE_VFORK | SIGCHLD, &args);
  }
  if (pid < 0) {
    const int err = errno;
    owned->spawned(-1);
    throw SpawnError("clone", errno_text(err));
  }
  owned->spawned(pid);
  if (args.failed_step != nullptr) {
    wait_status(pid);
    throw SpawnError(args.failed_step, errno_text(args.error));
  }
  SpawnedChild child;
  child.pid_ = pid;
  child.owned_ = std::move(owned);
  return child;
}

std::vector<char*> exec_array(std::vector<std::string>& strings) {
  std::vector<char*> result;
  result.reserve(strings.size() + 1);
  for (auto& s : strings) result.push_back(s.data());
  result.push_back(nullptr);
  return result;
}

}  // namespace taskengine::exec
