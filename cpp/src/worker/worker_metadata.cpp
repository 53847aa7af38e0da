#include "worker/worker_metadata.hpp"

#include <sys/utsname.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

namespace taskengine::worker {
namespace {

// Debian's architecture names, which debusine's task requirements use.
std::string debian_architecture(const std::string& machine) {
  if (machine == "x86_64") return "amd64";
  if (machine == "aarch64") return "arm64";
  if (machine == "i686" || machine == "i386") return "i386";
  if (machine == "armv7l") return "armhf";
  return machine;
}

}  // namespace

std::string host_name() {
  char buffer[256] = {};
  if (gethostname(buffer, sizeof buffer - 1) != 0) return "localhost";
  return buffer;
}

std::string default_worker_name() { return host_name() + "-" + std::to_string(::getpid()); }

std::string resolve_python(const std::string& configured) {
  if (!configured.empty()) return configured;
  if (const char* env = std::getenv("TASKENGINE_PYTHON"); env && *env) return env;
  // Installed by pip, the worker binary sits in the environment's bin/ next
  // to the interpreter that has taskengine installed.
  std::error_code error;
  auto self = std::filesystem::read_symlink("/proc/self/exe", error);
  if (!error) {
    for (const char* name : {"python3", "python"}) {
      auto candidate = self.parent_path() / name;
      if (std::filesystem::exists(candidate, error)) return candidate.string();
    }
  }
  return "python3";
}

Json collect_metadata(const WorkerOptions& options) {
  utsname uts{};
  uname(&uts);
  Json metadata = {
      {"system:worker_type", options.worker_type},
      {"system:architectures", Json::array({debian_architecture(uts.machine)})},
      {"system:machine", uts.machine},
      {"system:cpu_count", std::thread::hardware_concurrency()},
      {"system:host_name", host_name()},
      {"system:concurrency", options.concurrency},
      {"versions", {{"taskengine", "0.1.0"}}},
  };
  for (const auto& [key, value] : options.metadata.items()) {
    if (key == "versions" && value.is_object())
      metadata["versions"].update(value);
    else
      metadata[key] = value;
  }
  return metadata;
}

}  // namespace taskengine::worker
