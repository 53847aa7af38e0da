#include "store/local_wakeup.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <functional>

#include "taskengine/errors.hpp"

namespace taskengine {
namespace {

constexpr std::size_t kMaxSocketPath = sizeof(sockaddr_un{}.sun_path) - 1;

std::string absolute_path(const std::string& path) {
  char resolved[PATH_MAX];
  if (realpath(path.c_str(), resolved) != nullptr) return resolved;
  if (!path.empty() && path[0] == '/') return path;
  char cwd[PATH_MAX];
  if (getcwd(cwd, sizeof cwd) == nullptr) return path;
  return std::string(cwd) + "/" + path;
}

sockaddr_un make_address(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), kMaxSocketPath);
  return address;
}

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd = -1) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

class SocketListener final : public WakeupListener {
 public:
  explicit SocketListener(const std::string& directory)
      : socket_(::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)),
        interrupt_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (socket_.get() < 0 || interrupt_.get() < 0)
      throw StoreError(std::string("cannot create a wake-up socket: ") + std::strerror(errno));
    static std::atomic<int> counter{0};
    path_ = directory + "/" + std::to_string(::getpid()) + "." + std::to_string(counter++);
    ::unlink(path_.c_str());
    sockaddr_un address = make_address(path_);
    if (::bind(socket_.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
      throw StoreError("cannot bind the wake-up socket " + path_ + ": " + std::strerror(errno));
  }

  ~SocketListener() override { ::unlink(path_.c_str()); }

  bool wait(std::chrono::milliseconds timeout) override {
    pollfd fds[2] = {{socket_.get(), POLLIN, 0}, {interrupt_.get(), POLLIN, 0}};
    int ready = ::poll(fds, 2, static_cast<int>(timeout.count()));
    if (ready <= 0) return false;
    char buffer[64];
    // Drain: many dispatches while we were busy are one wake-up.
    while (::recv(socket_.get(), buffer, sizeof buffer, 0) > 0) {
    }
    std::uint64_t value;
    while (::read(interrupt_.get(), &value, sizeof value) > 0) {
    }
    return true;
  }

  void interrupt() override {
    std::uint64_t one = 1;
    [[maybe_unused]] auto written = ::write(interrupt_.get(), &one, sizeof one);
  }

 private:
  FileDescriptor socket_;
  FileDescriptor interrupt_;
  std::string path_;
};

}  // namespace

LocalWakeup::LocalWakeup(const std::string& database_path) {
  std::string beside = absolute_path(database_path) + "-wakeup";
  // Socket paths are limited to 107 bytes; deep database paths get a
  // directory in /tmp named by a hash of the database's path instead.
  if (beside.size() + 24 <= kMaxSocketPath) {
    directory_ = beside;
  } else {
    directory_ = "/tmp/taskengine-wakeup-" +
                 std::to_string(std::hash<std::string>{}(absolute_path(database_path)));
  }
}

void LocalWakeup::notify() const {
  DIR* dir = ::opendir(directory_.c_str());
  if (dir == nullptr) return;  // nobody listens yet
  FileDescriptor sender(::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (sender.get() >= 0) {
    while (dirent* entry = ::readdir(dir)) {
      if (entry->d_name[0] == '.') continue;
      std::string path = directory_ + "/" + entry->d_name;
      sockaddr_un address = make_address(path);
      char byte = 1;
      if (::sendto(sender.get(), &byte, 1, 0, reinterpret_cast<sockaddr*>(&address),
                   sizeof address) < 0 &&
          errno == ECONNREFUSED) {
        ::unlink(path.c_str());  // its owner is gone
      }
    }
  }
  ::closedir(dir);
}

std::unique_ptr<WakeupListener> LocalWakeup::listen() const {
  if (::mkdir(directory_.c_str(), 0700) != 0 && errno != EEXIST)
    throw StoreError("cannot create the wake-up directory " + directory_ + ": " +
                     std::strerror(errno));
  return std::make_unique<SocketListener>(directory_);
}

}  // namespace taskengine
