// Commit benchmark: the store's durable commit rate, the yardstick of the
// one-call dispatch target ("within 80% of the store's durable commit
// rate"). A tight loop of single-row INSERTs, each its own transaction
// (autocommit), into a scratch table of the store's own database, through
// the store's own session: the same driver, connection settings and
// prepared statements as dispatch (on PostgreSQL one round trip and one WAL
// flush per commit, what `pgbench -M prepared` measures; on SQLite WAL with
// synchronous=NORMAL, the store's settings). Prints one JSON object;
// asserts nothing. See docs/benchmarks.md.

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>

#include "store/session_factory.hpp"
#include "taskengine/errors.hpp"
#include "taskengine/json.hpp"

namespace {

[[noreturn]] void usage(const std::string& problem) {
  if (!problem.empty()) std::cerr << "commit_bench: " << problem << "\n\n";
  std::cerr << "usage: taskengine_commit_bench --url URL [--commits N]\n"
               "  --url URL     the store (sqlite:///path or postgresql://...); a scratch\n"
               "                table taskengine_commit_probe is created there and dropped\n"
               "  --commits N   single-row commits to time (default 2000)\n";
  std::exit(problem.empty() ? 0 : 2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string url;
  long commits = 2000;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--url")
      url = value();
    else if (arg == "--commits")
      commits = std::stol(value());
    else if (arg == "--help" || arg == "-h")
      usage("");
    else
      usage("unknown option " + arg);
  }
  if (url.empty()) usage("--url is required");
  if (commits <= 0) usage("--commits must be positive");
  try {
    auto session = taskengine::sql::open_session(url);
    session->execute_script("DROP TABLE IF EXISTS taskengine_commit_probe");
    session->execute_script(
        "CREATE TABLE taskengine_commit_probe (n BIGINT NOT NULL, payload TEXT NOT NULL)");
    const std::string insert = "INSERT INTO taskengine_commit_probe (n, payload) VALUES ($1, $2)";
    const std::string payload = "{\"args\": [1, 2.5], \"kwargs\": {}}";
    // Untimed: prepares the statement and warms the connection.
    for (long i = 0; i < 20; ++i) session->execute(insert, {std::int64_t{-i - 1}, payload});
    auto started = std::chrono::steady_clock::now();
    for (long i = 0; i < commits; ++i) session->execute(insert, {std::int64_t{i}, payload});
    std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - started;
    session->execute_script("DROP TABLE taskengine_commit_probe");
    taskengine::Json out = {
        {"backend",
         session->dialect() == taskengine::sql::Dialect::Sqlite ? "sqlite" : "postgresql"},
        {"commits", commits},
        {"seconds", elapsed.count()},
        {"commit_per_s", static_cast<double>(commits) / elapsed.count()},
        {"commit_us", elapsed.count() * 1e6 / static_cast<double>(commits)}};
    std::cout << out.dump() << std::endl;
  } catch (const taskengine::Error& e) {
    std::cerr << "commit_bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
