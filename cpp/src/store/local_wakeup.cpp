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
#include <vector>

#include "taskengine/errors.hpp"

namespace taskengine {
namespace {

constexpr std::size_t kMaxSocketPath = sizeof(sockaddr_un{}.sun_path) - 1;

// The database's absolute, symlink-free path, the same in every process
// whether or not the file exists yet (the first process opens it before
// creating it): the directory is resolved, the file name kept.
std::string canonical_database_path(const std::string& path) {
  std::string absolute = path;
  if (absolute.empty() || absolute[0] != '/') {
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) != nullptr) absolute = std::string(cwd) + "/" + path;
  }
  auto slash = absolute.rfind('/');
  std::string directory = slash == 0 ? "/" : absolute.substr(0, slash);
  std::string name = absolute.substr(slash + 1);
  char resolved[PATH_MAX];
  if (realpath(directory.c_str(), resolved) == nullptr) return absolute;
  std::string base = resolved;
  return (base == "/" ? "" : base) + "/" + name;
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

// One datagram socket per topic, named "<topic>.<pid>.<n>", all polled
// together with an eventfd for interrupt().
class SocketListener final : public WakeupListener {
 public:
  SocketListener(const std::string& directory, const std::vector<std::string>& topics)
      : interrupt_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (interrupt_.get() < 0)
      throw StoreError(std::string("cannot create a wake-up eventfd: ") + std::strerror(errno));
    static std::atomic<int> counter{0};
    for (const auto& topic : topics) {
      auto socket = std::make_unique<FileDescriptor>(
          ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      if (socket->get() < 0)
        throw StoreError(std::string("cannot create a wake-up socket: ") + std::strerror(errno));
      std::string path = directory + "/" + topic + "." + std::to_string(::getpid()) + "." +
                         std::to_string(counter++);
      ::unlink(path.c_str());
      sockaddr_un address = make_address(path);
      if (::bind(socket->get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
        throw StoreError("cannot bind the wake-up socket " + path + ": " + std::strerror(errno));
      paths_.push_back(path);
      sockets_.push_back(std::move(socket));
    }
  }

  ~SocketListener() override {
    for (const auto& path : paths_) ::unlink(path.c_str());
  }

  bool wait(std::chrono::milliseconds timeout) override {
    std::vector<pollfd> fds;
    for (const auto& socket : sockets_) fds.push_back({socket->get(), POLLIN, 0});
    fds.push_back({interrupt_.get(), POLLIN, 0});
    int ready = ::poll(fds.data(), fds.size(), static_cast<int>(timeout.count()));
    if (ready <= 0) return false;
    char buffer[64];
    // Drain: many dispatches while we were busy are one wake-up.
    for (const auto& socket : sockets_)
      while (::recv(socket->get(), buffer, sizeof buffer, 0) > 0) {
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
  std::vector<std::unique_ptr<FileDescriptor>> sockets_;
  std::vector<std::string> paths_;
  FileDescriptor interrupt_;
};

}  // namespace

LocalWakeup::LocalWakeup(const std::string& database_path) {
  std::string beside = canonical_database_path(database_path) + "-wakeup";
  // Socket paths are limited to 107 bytes; deep database paths get a
  // directory in /tmp named by a hash of the database's path instead.
  if (beside.size() + 40 <= kMaxSocketPath) {
    directory_ = beside;
  } else {
    directory_ = "/tmp/taskengine-wakeup-" +
                 std::to_string(std::hash<std::string>{}(canonical_database_path(database_path)));
  }
}

void LocalWakeup::notify(const std::string& topic) const {
  const std::string prefix = topic + ".";
  DIR* dir = ::opendir(directory_.c_str());
  if (dir == nullptr) return;  // nobody listens yet
  FileDescriptor sender(::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (sender.get() >= 0) {
    while (dirent* entry = ::readdir(dir)) {
      if (std::strncmp(entry->d_name, prefix.c_str(), prefix.size()) != 0) continue;
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

std::unique_ptr<WakeupListener> LocalWakeup::listen(const std::vector<std::string>& topics) const {
  if (::mkdir(directory_.c_str(), 0700) != 0 && errno != EEXIST)
    throw StoreError("cannot create the wake-up directory " + directory_ + ": " +
                     std::strerror(errno));
  return std::make_unique<SocketListener>(directory_, topics);
}

}  // namespace taskengine
