// taskengine-worker: the native worker process.
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>

#include "exec/process_group.hpp"
#include "taskengine/errors.hpp"
#include "taskengine/worker.hpp"

namespace {

constexpr const char* kUsage = R"(usage: taskengine-worker --url URL [options]

Runs tasks from a taskengine store until SIGTERM or SIGINT.

options (each also read from the environment variable shown):
  --url URL                store URL: sqlite:///path.db or postgresql://...   [TASKENGINE_URL]
  --name NAME              worker name (default: <host>-<pid>)                [TASKENGINE_WORKER_NAME]
  --type TYPE              worker, server or signing (default: worker)        [TASKENGINE_WORKER_TYPE]
  --concurrency N          tasks run at once (default: 2)                     [TASKENGINE_CONCURRENCY]
  --import MODULE          Python module each executor imports (repeatable)   [TASKENGINE_IMPORT, comma-separated]
  --python PATH            Python interpreter for function tasks              [TASKENGINE_PYTHON]
  --heartbeat SECONDS      heartbeat interval (default: 2)                    [TASKENGINE_HEARTBEAT]
  --heartbeat-timeout S    silence after which a worker is lost (default: 5x heartbeat)
  --poll-interval SECONDS  fallback poll when no wake-up arrives (default: 1)
  --shutdown-grace SECONDS time running tasks get after SIGTERM (default: 30)
  --kill-grace SECONDS     SIGTERM-to-SIGKILL delay on cancel/timeout (default: 3)
  --prefetch-window S      claim short tasks ahead: hold up to this much estimated work
                           per slot in a local queue; 0 turns it off (default: 0.02)
  --completion-window S    store the results of fast-ending tasks together, at most this
                           long after they end; 0 stores each at once (default: 0.001)
  --retention DURATION     delete finished tasks this old (builds of jobs are kept);
                           seconds, or with a unit: 90m, 36h, 7d; 0 keeps every task
                           (default: 7d)                                      [TASKENGINE_RETENTION]
  --retention-interval S   how often to look for tasks to delete (default: 60, or a
                           tenth of the retention when that is shorter, at least 1)
  --log-level LEVEL        trace, debug, info, warning, error (default: info) [TASKENGINE_LOG_LEVEL]
  --version, --help
)";

std::string env_or(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value && *value ? value : fallback;
}

std::chrono::milliseconds seconds_option(const std::string& flag, const std::string& text,
                                         bool zero_allowed = false) {
  try {
    std::size_t used = 0;
    double seconds = std::stod(text, &used);
    if (used != text.size() || !(seconds > 0 || (zero_allowed && seconds == 0)))
      throw std::invalid_argument(text);
    return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
  } catch (const std::exception&) {
    throw taskengine::InvalidArgument(flag + " needs a " + (zero_allowed ? "" : "positive ") +
                                      "number of seconds" + (zero_allowed ? " (0 or more)" : "") +
                                      ", got '" + text + "'");
  }
}

// A retention period: seconds, or a number with a unit (s, m, h, d); 0 (or
// "off") keeps every task.
std::chrono::milliseconds duration_option(const std::string& flag, const std::string& text) {
  if (text == "off") return std::chrono::milliseconds(0);
  try {
    std::size_t used = 0;
    double amount = std::stod(text, &used);
    double unit = 1;
    std::string suffix = text.substr(used);
    if (suffix == "m")
      unit = 60;
    else if (suffix == "h")
      unit = 3600;
    else if (suffix == "d")
      unit = 86400;
    else if (!suffix.empty() && suffix != "s")
      throw std::invalid_argument(text);
    if (!(amount >= 0) || amount * unit > 1e9) throw std::invalid_argument(text);
    return std::chrono::milliseconds(static_cast<long long>(amount * unit * 1000));
  } catch (const std::exception&) {
    throw taskengine::InvalidArgument(flag +
                                      " needs a duration: seconds, or a number with a unit "
                                      "s, m, h or d (e.g. 7d); 0 keeps every task; got '" +
                                      text + "'");
  }
}

taskengine::WorkerOptions parse(int argc, char** argv) {
  taskengine::WorkerOptions options;
  options.url = env_or("TASKENGINE_URL", "");
  options.name = env_or("TASKENGINE_WORKER_NAME", "");
  options.worker_type = env_or("TASKENGINE_WORKER_TYPE", "worker");
  options.python = env_or("TASKENGINE_PYTHON", "");
  std::string concurrency = env_or("TASKENGINE_CONCURRENCY", "2");
  std::string heartbeat = env_or("TASKENGINE_HEARTBEAT", "2");
  std::string heartbeat_timeout;
  for (std::string module, list = env_or("TASKENGINE_IMPORT", ""); !list.empty();) {
    auto comma = list.find(',');
    module = list.substr(0, comma);
    list = comma == std::string::npos ? "" : list.substr(comma + 1);
    if (!module.empty()) options.imports.push_back(module);
  }
  std::string level = env_or("TASKENGINE_LOG_LEVEL", "info");
  std::string retention = env_or("TASKENGINE_RETENTION", "7d");
  std::string retention_interval = env_or("TASKENGINE_RETENTION_INTERVAL", "");

  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::cout << kUsage;
      std::exit(0);
    }
    if (flag == "--version") {
      std::cout << "taskengine-worker 0.1.0\n";
      std::exit(0);
    }
    std::string value;
    if (auto eq = flag.find('='); eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      throw taskengine::InvalidArgument(flag + " needs a value");
    }
    if (flag == "--url")
      options.url = value;
    else if (flag == "--name")
      options.name = value;
    else if (flag == "--type")
      options.worker_type = value;
    else if (flag == "--concurrency")
      concurrency = value;
    else if (flag == "--import")
      options.imports.push_back(value);
    else if (flag == "--python")
      options.python = value;
    else if (flag == "--heartbeat")
      heartbeat = value;
    else if (flag == "--heartbeat-timeout")
      heartbeat_timeout = value;
    else if (flag == "--poll-interval")
      options.poll_interval = seconds_option(flag, value);
    else if (flag == "--shutdown-grace")
      options.shutdown_grace = seconds_option(flag, value);
    else if (flag == "--kill-grace")
      options.kill_grace = seconds_option(flag, value);
    else if (flag == "--prefetch-window")
      options.prefetch_window = seconds_option(flag, value, true);
    else if (flag == "--completion-window")
      options.completion_window = seconds_option(flag, value, true);
    else if (flag == "--retention")
      retention = value;
    else if (flag == "--retention-interval")
      retention_interval = value;
    else if (flag == "--log-level")
      level = value;
    else
      throw taskengine::InvalidArgument("unknown option " + flag + " (see --help)");
  }
  if (options.url.empty())
    throw taskengine::InvalidArgument("no store URL: pass --url or set TASKENGINE_URL");
  try {
    std::size_t used = 0;
    options.concurrency = std::stoi(concurrency, &used);
    if (used != concurrency.size() || options.concurrency < 1) throw std::invalid_argument("");
  } catch (const std::exception&) {
    throw taskengine::InvalidArgument("--concurrency needs a positive integer, got '" +
                                      concurrency + "'");
  }
  options.heartbeat = seconds_option("--heartbeat", heartbeat);
  options.heartbeat_timeout = heartbeat_timeout.empty()
                                  ? options.heartbeat * 5
                                  : seconds_option("--heartbeat-timeout", heartbeat_timeout);
  options.retention = duration_option("--retention", retention);
  options.retention_interval =
      retention_interval.empty()
          ? std::clamp(options.retention / 10, std::chrono::milliseconds(1000),
                       std::chrono::milliseconds(60000))
          : seconds_option("--retention-interval", retention_interval);
  if (options.worker_type != "worker" && options.worker_type != "server" &&
      options.worker_type != "signing")
    throw taskengine::InvalidArgument("--type must be worker, server or signing, got '" +
                                      options.worker_type + "'");
  auto parsed_level = spdlog::level::from_str(level == "warning" ? "warn" : level);
  if (parsed_level == spdlog::level::off && level != "off")
    throw taskengine::InvalidArgument("unknown --log-level '" + level + "'");
  spdlog::set_level(parsed_level);
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [worker] %v");
  taskengine::WorkerOptions options;
  try {
    options = parse(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "taskengine-worker: " << e.what() << "\n";
    return 2;
  }

  // Signals go to one thread that turns them into a clean stop; every other
  // thread (and so every child's inherited mask, reset by the executors)
  // keeps them blocked.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  taskengine::exec::become_subreaper();

  try {
    taskengine::Worker worker(options);
    std::thread signal_thread([&] {
      int received = 0;
      sigwait(&signals, &received);
      if (received != 0) {
        spdlog::info("received signal {}, stopping", received);
        worker.request_stop();
      }
    });
    int code = worker.run();
    // Wake the signal thread if the worker stopped on its own.
    pthread_kill(signal_thread.native_handle(), SIGTERM);
    signal_thread.join();
    return code;
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    std::cerr << "taskengine-worker: " << e.what() << "\n";
    return 1;
  }
}
