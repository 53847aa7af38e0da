// Claim benchmark: claim latency and claim+complete throughput with N waiting
// tasks, each holding one exclusive resource out of R (default 10,000), next
// to the same queue without resources. Prints figures; asserts nothing.
// See docs/benchmarks.md for how to run it and what it measured.

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <pqxx/pqxx>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "taskengine/json.hpp"
#include "taskengine/store.hpp"

namespace {

using taskengine::Json;
using Clock = std::chrono::steady_clock;

struct Options {
  std::vector<std::int64_t> sizes = {10'000, 100'000, 1'000'000};
  std::vector<std::string> stores = {"sqlite", "postgresql"};
  std::vector<bool> variants = {false, true};  // resource-free first: the ratio needs it
  int claims = 2'000;                          // K: timed claims per latency phase
  int batch = 10;                              // B: limit of the batched latency phase
  int throughput_tasks = 20'000;               // tasks claimed+completed, in batches of 100
  int resources = 10'000;
  int fill_batch = 5'000;
  std::string json_path;
  bool keep = false;
};

constexpr int kThroughputBatch = 100;
constexpr int kWarmupClaims = 20;
constexpr std::size_t kRefillBatch = 100;

// SIGINT/SIGTERM end the run between two store calls, so the scratch stores
// (a 1M-task database is GBs) are still removed.
volatile std::sig_atomic_t stop_signal = 0;

void check_stop() {
  if (stop_signal) throw std::runtime_error("interrupted by signal " + std::to_string(stop_signal));
}

[[noreturn]] void usage(const std::string& problem) {
  if (!problem.empty()) std::cerr << "claim_bench: " << problem << "\n\n";
  std::cerr
      << "usage: taskengine_claim_bench [options]\n"
         "  --sizes 10000,100000,1000000  waiting tasks per run\n"
         "  --stores sqlite,postgresql    stores to measure\n"
         "  --variants none,resources     queues to measure (resources: one exclusive each)\n"
         "  --claims K                    timed claims per latency phase (default 2000)\n"
         "  --batch B                     limit of the batched claim phase (default 10)\n"
         "  --throughput-tasks T          tasks claimed+completed by 100s (default 20000)\n"
         "  --resources R                 distinct resource names (default 10000)\n"
         "  --fill-batch F                specs per dispatch call while filling (default 5000)\n"
         "  --quick                       smoke run: N=2000, K=200, T=2000\n"
         "  --json PATH                   also write the figures as JSON\n"
         "  --keep                        keep the scratch stores and print their URLs\n"
         "PostgreSQL: a scratch database is created and dropped through the admin URL in\n"
         "$TASKENGINE_BENCH_POSTGRES, else $TASKENGINE_TEST_POSTGRES, else\n"
         "postgresql://postgres@127.0.0.1:5432/postgres.\n";
  std::exit(problem.empty() ? 0 : 2);
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  std::string part;
  while (std::getline(stream, part, ','))
    if (!part.empty()) parts.push_back(part);
  return parts;
}

int positive(const std::string& name, const std::string& text) {
  try {
    std::size_t used = 0;
    long value = std::stol(text, &used);
    if (used == text.size() && value > 0 && value <= 1'000'000'000) return static_cast<int>(value);
  } catch (const std::exception&) {
  }
  usage(name + " needs a positive integer, got '" + text + "'");
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      usage("");
    } else if (arg == "--quick") {
      o.sizes = {2'000};
      o.claims = 200;
      o.throughput_tasks = 2'000;
    } else if (arg == "--sizes") {
      o.sizes.clear();
      for (const auto& s : split(value())) o.sizes.push_back(positive("--sizes", s));
    } else if (arg == "--stores") {
      o.stores = split(value());
      for (const auto& s : o.stores)
        if (s != "sqlite" && s != "postgresql") usage("unknown store '" + s + "'");
    } else if (arg == "--variants") {
      o.variants.clear();
      for (const auto& v : split(value())) {
        if (v != "none" && v != "resources") usage("unknown variant '" + v + "'");
        o.variants.push_back(v == "resources");
      }
      std::sort(o.variants.begin(), o.variants.end());
    } else if (arg == "--claims") {
      o.claims = positive(arg, value());
    } else if (arg == "--batch") {
      o.batch = positive(arg, value());
    } else if (arg == "--throughput-tasks") {
      o.throughput_tasks = positive(arg, value());
    } else if (arg == "--resources") {
      o.resources = positive(arg, value());
    } else if (arg == "--fill-batch") {
      o.fill_batch = positive(arg, value());
    } else if (arg == "--json") {
      o.json_path = value();
    } else if (arg == "--keep") {
      o.keep = true;
    } else {
      usage("unknown option '" + arg + "'");
    }
  }
  if (o.sizes.empty() || o.stores.empty() || o.variants.empty()) usage("nothing to measure");
  return o;
}

// ---------------------------------------------------------------- scratch stores

std::string unique_name() {
  static int counter = 0;
  return "taskengine_bench_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
}

// A store that exists for one run: removed afterwards unless `keep`.
class ScratchStore {
 public:
  virtual ~ScratchStore() = default;
  virtual std::string url() const = 0;
};

class SqliteScratch final : public ScratchStore {
 public:
  explicit SqliteScratch(bool keep)
      : directory_(std::filesystem::temp_directory_path() / unique_name()), keep_(keep) {
    std::filesystem::create_directories(directory_);
  }
  ~SqliteScratch() override {
    std::error_code ignored;
    if (!keep_) std::filesystem::remove_all(directory_, ignored);
  }
  std::string url() const override { return "sqlite://" + (directory_ / "store.db").string(); }

 private:
  std::filesystem::path directory_;
  bool keep_;
};

std::string postgres_admin_url() {
  for (const char* name : {"TASKENGINE_BENCH_POSTGRES", "TASKENGINE_TEST_POSTGRES"})
    if (const char* env = std::getenv(name); env && *env) return env;
  return "postgresql://postgres@127.0.0.1:5432/postgres";
}

class PostgresScratch final : public ScratchStore {
 public:
  explicit PostgresScratch(bool keep)
      : admin_(postgres_admin_url()), name_(unique_name()), keep_(keep) {
    pqxx::connection connection(admin_);
    pqxx::nontransaction txn(connection);
    txn.exec("CREATE DATABASE " + name_);
  }
  ~PostgresScratch() override {
    if (keep_) return;
    try {
      pqxx::connection connection(admin_);
      pqxx::nontransaction txn(connection);
      txn.exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    } catch (const std::exception& e) {
      std::cerr << "claim_bench: could not drop scratch database " << name_ << ": " << e.what()
                << "\n";
    }
  }
  // The admin URL with its database name replaced.
  std::string url() const override {
    auto scheme = admin_.find("://");
    auto slash = admin_.find('/', scheme == std::string::npos ? 0 : scheme + 3);
    auto query = admin_.find('?');
    std::string base = admin_.substr(0, slash == std::string::npos ? query : slash);
    return base + "/" + name_ + (query == std::string::npos ? "" : admin_.substr(query));
  }

 private:
  std::string admin_;
  std::string name_;
  bool keep_;
};

std::unique_ptr<ScratchStore> make_scratch(const std::string& store, bool keep) {
  if (store == "sqlite") return std::make_unique<SqliteScratch>(keep);
  return std::make_unique<PostgresScratch>(keep);
}

// ---------------------------------------------------------------- figures

// The machine may be shared: the load average goes with every figure.
double load_average() {
  double load = 0;
  std::ifstream("/proc/loadavg") >> load;
  return load;
}

double micros_since(Clock::time_point start) {
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

struct Latency {
  double p50 = 0, p99 = 0, max = 0;  // microseconds
};

Latency summarize(std::vector<double> samples) {
  if (samples.empty()) return {};
  std::sort(samples.begin(), samples.end());
  auto rank = [&](double p) {  // nearest rank
    auto i = static_cast<std::size_t>(std::ceil(p * static_cast<double>(samples.size())));
    return samples[std::clamp<std::size_t>(i, 1, samples.size()) - 1];
  };
  return {rank(0.50), rank(0.99), samples.back()};
}

Json to_json(const Latency& l) { return {{"p50_us", l.p50}, {"p99_us", l.p99}, {"max_us", l.max}}; }

struct Result {
  std::string store;
  std::int64_t size = 0;
  bool with_resources = false;
  double fill_rate = 0;         // tasks/s through Store::dispatch
  Latency claim_one;            // claim(limit 1), per call
  Latency claim_batch;          // claim(limit B), per call
  Latency complete_one;         // complete() of one task
  double throughput = 0;        // tasks/s, claim+complete in batches of 100
  std::optional<double> ratio;  // throughput / resource-free throughput
  double load = 0;              // 1-minute load average when the run ended
};

// ---------------------------------------------------------------- the run

taskengine::TaskSpec make_spec(std::optional<std::string> resource) {
  taskengine::TaskSpec spec;
  spec.kind = taskengine::TaskKind::Function;
  spec.name = "bench:noop";
  spec.payload = {{"function", "bench:noop"}, {"args", Json::array()}, {"kwargs", Json::object()}};
  if (resource) spec.exclusive_resources = {std::move(*resource)};
  return spec;
}

// Claims and completes against one filled store. Every claimed task is
// replaced by a new one on the same resource (outside the timed sections),
// so the queue stays at N waiting tasks for the whole run.
class ClaimLoop {
 public:
  ClaimLoop(taskengine::Store& store, std::string worker_name) : store_(store) {
    worker_.name = std::move(worker_name);
    worker_.pid = ::getpid();
    worker_.id = store_.register_worker(worker_);
  }

  // Claims `limit` tasks; returns the claim's duration in microseconds.
  double claim(int limit, std::vector<taskengine::Task>& claimed) {
    check_stop();
    auto start = Clock::now();
    claimed = store_.claim(worker_, limit);
    double elapsed = micros_since(start);
    if (claimed.empty()) throw std::runtime_error("claim returned nothing: the queue is stuck");
    return elapsed;
  }

  // Completes the tasks and queues their replacements; returns the
  // complete's duration in microseconds.
  double complete(const std::vector<taskengine::Task>& tasks) {
    std::vector<taskengine::Completion> completions;
    for (const auto& task : tasks) {
      completions.push_back(
          {task.id, task.fence, taskengine::TaskState::Completed, nullptr, nullptr, std::nullopt});
      refill_.push_back(make_spec(task.exclusive_resources.empty()
                                      ? std::nullopt
                                      : std::optional(task.exclusive_resources[0])));
    }
    auto start = Clock::now();
    store_.complete(completions);
    return micros_since(start);
  }

  void refill(bool force) {
    if (refill_.empty() || (!force && refill_.size() < kRefillBatch)) return;
    store_.dispatch(refill_);
    refill_.clear();
  }

 private:
  taskengine::Store& store_;
  taskengine::WorkerInfo worker_;
  std::vector<taskengine::TaskSpec> refill_;
};

double fill(taskengine::Store& store, std::int64_t size, bool with_resources,
            const Options& options, const std::string& label) {
  auto start = Clock::now();
  std::vector<taskengine::TaskSpec> specs;
  std::int64_t next_report = size / 10;
  for (std::int64_t i = 0; i < size;) {
    specs.clear();
    for (; i < size && static_cast<int>(specs.size()) < options.fill_batch; ++i)
      specs.push_back(make_spec(with_resources
                                    ? std::optional("res-" + std::to_string(i % options.resources))
                                    : std::nullopt));
    check_stop();
    store.dispatch(specs);
    if (i >= next_report && i < size) {
      double seconds = micros_since(start) / 1e6;
      std::fprintf(stderr, "  %s: filled %lld/%lld (%.0f tasks/s)\n", label.c_str(),
                   static_cast<long long>(i), static_cast<long long>(size),
                   static_cast<double>(i) / seconds);
      next_report += size / 10;
    }
  }
  return static_cast<double>(size) / (micros_since(start) / 1e6);
}

Result run(const std::string& store_name, std::int64_t size, bool with_resources,
           const Options& options) {
  std::string label =
      store_name + " N=" + std::to_string(size) + (with_resources ? " resources" : " no resources");
  auto scratch = make_scratch(store_name, options.keep);
  if (options.keep) std::fprintf(stderr, "  %s: store %s\n", label.c_str(), scratch->url().c_str());
  auto store = taskengine::open_store(scratch->url());
  store->install();

  Result r;
  r.store = store_name;
  r.size = size;
  r.with_resources = with_resources;
  r.fill_rate = fill(*store, size, with_resources, options, label);
  std::fprintf(stderr, "  %s: filled at %.0f tasks/s, measuring\n", label.c_str(), r.fill_rate);

  ClaimLoop loop(*store, "claim-bench");
  std::vector<taskengine::Task> claimed;
  for (int i = 0; i < kWarmupClaims; ++i) {
    loop.claim(1, claimed);
    loop.complete(claimed);
  }
  loop.refill(true);

  std::vector<double> claims, completes;
  for (int i = 0; i < options.claims; ++i) {
    claims.push_back(loop.claim(1, claimed));
    completes.push_back(loop.complete(claimed));
    loop.refill(false);
  }
  loop.refill(true);
  r.claim_one = summarize(claims);
  r.complete_one = summarize(completes);

  claims.clear();
  for (int i = 0; i < options.claims; ++i) {
    claims.push_back(loop.claim(options.batch, claimed));
    loop.complete(claimed);
    loop.refill(false);
  }
  loop.refill(true);
  r.claim_batch = summarize(claims);

  double busy = 0;  // microseconds spent in claim and complete
  std::int64_t done = 0;
  while (done < options.throughput_tasks) {
    busy += loop.claim(kThroughputBatch, claimed);
    busy += loop.complete(claimed);
    done += static_cast<std::int64_t>(claimed.size());
    loop.refill(true);
  }
  r.throughput = static_cast<double>(done) / (busy / 1e6);
  r.load = load_average();
  std::fprintf(stderr, "  %s: done, load average %.2f\n", label.c_str(), r.load);
  return r;
}

// ---------------------------------------------------------------- output

void print_header(const Options& o) {
  std::printf("%-10s %9s %9s %10s | %-22s | %-22s | %-14s | %12s %6s\n", "store", "N", "resources",
              "fill/s", "claim(1) p50/p99/max",
              ("claim(" + std::to_string(o.batch) + ") p50/p99/max").c_str(), "complete p50/p99",
              "claim+compl/s", "ratio");
  std::printf("%-10s %9s %9s %10s | %-22s | %-22s | %-14s | %12s %6s\n", "", "", "", "", "us", "us",
              "us", "", "");
}

void print_row(const Result& r, const Options& o) {
  auto triple = [](const Latency& l) {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%.0f/%.0f/%.0f", l.p50, l.p99, l.max);
    return std::string(buffer);
  };
  char pair[64];
  std::snprintf(pair, sizeof pair, "%.0f/%.0f", r.complete_one.p50, r.complete_one.p99);
  std::string ratio =
      r.ratio ? std::to_string(static_cast<int>(std::lround(*r.ratio * 100))) + "%" : "-";
  std::printf("%-10s %9lld %9s %10.0f | %-22s | %-22s | %-14s | %12.0f %6s\n", r.store.c_str(),
              static_cast<long long>(r.size),
              r.with_resources ? std::to_string(o.resources).c_str() : "none", r.fill_rate,
              triple(r.claim_one).c_str(), triple(r.claim_batch).c_str(), pair, r.throughput,
              ratio.c_str());
  std::fflush(stdout);
}

Json to_json(const Result& r, const Options& o) {
  return {{"store", r.store},
          {"waiting_tasks", r.size},
          {"resources", r.with_resources ? o.resources : 0},
          {"fill_tasks_per_s", r.fill_rate},
          {"claim_1", to_json(r.claim_one)},
          {"claim_batch", to_json(r.claim_batch)},
          {"complete_1", to_json(r.complete_one)},
          {"throughput_tasks_per_s", r.throughput},
          {"ratio_to_resource_free", r.ratio ? Json(*r.ratio) : Json(nullptr)},
          {"load_average", r.load}};
}

}  // namespace

int main(int argc, char** argv) {
  Options options = parse_options(argc, argv);
  for (int signal : {SIGINT, SIGTERM}) std::signal(signal, [](int s) { stop_signal = s; });
  std::vector<Result> results;
  bool failed = false;
  print_header(options);
  for (const auto& store : options.stores) {
    for (std::int64_t size : options.sizes) {
      std::optional<double> resource_free;
      for (bool with_resources : options.variants) {
        try {
          Result r = run(store, size, with_resources, options);
          if (!with_resources) resource_free = r.throughput;
          if (with_resources && resource_free) r.ratio = r.throughput / *resource_free;
          print_row(r, options);
          results.push_back(r);
        } catch (const std::exception& e) {
          if (stop_signal) return 128 + stop_signal;
          std::fprintf(stderr, "claim_bench: %s N=%lld failed: %s\n", store.c_str(),
                       static_cast<long long>(size), e.what());
          failed = true;
        }
      }
    }
  }
  std::printf(
      "\nclaim(B): one claim call of limit B; complete: one task, right after its claim;\n"
      "claim+compl/s: batches of %d, store time only; ratio: vs. the resource-free run.\n",
      kThroughputBatch);
  if (!options.json_path.empty()) {
    Json runs = Json::array();
    for (const auto& r : results) runs.push_back(to_json(r, options));
    Json out = {{"benchmark", "claim"},
                {"options",
                 {{"claims", options.claims},
                  {"batch", options.batch},
                  {"throughput_tasks", options.throughput_tasks},
                  {"throughput_batch", kThroughputBatch},
                  {"fill_batch", options.fill_batch}}},
                {"runs", runs}};
    std::ofstream(options.json_path) << out.dump(2) << "\n";
  }
  return failed ? 1 : 0;
}
