// Commit benchmark: the store's durable commit rate, the yardstick of the
// one-call dispatch target ("within 80% of the store's durable commit
// rate"). A tight loop of single-row INSERTs, each its own transaction
// (autocommit), into a scratch table of the store's own database, through
// the store's own session: the same driver, connection settings and
// prepared statements as dispatch (on PostgreSQL one round trip and one WAL
// flush per commit, what `pgbench -M prepared` measures; on SQLite WAL with
// synchronous=NORMAL, the store's settings). Prints JSON; asserts nothing.
// See docs/benchmarks.md.

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>

#include "store/session_factory.hpp"
#include "taskengine/errors.hpp"
#include "taskengine/json.hpp"

namespace {

using taskengine::Json;
using taskengine::sql::Session;

[[noreturn]] void usage(const std::string& problem) {
  if (!problem.empty()) std::cerr << "commit_bench: " << problem << "\n\n";
  std::cerr << "usage: taskengine_commit_bench --url URL [--commits N | --serve]\n"
               "  --url URL     the store (sqlite:///path or postgresql://...); a scratch\n"
               "                table taskengine_commit_probe is created there and dropped\n"
               "  --commits N   single-row commits to time (default 2000)\n"
               "  --serve       read counts from stdin, one a line: time that many commits\n"
               "                and print a JSON line for each (a caller interleaves them\n"
               "                with its own measurement); ends at an empty line or EOF\n";
  std::exit(problem.empty() ? 0 : 2);
}

// Times `commits` single-row commits; `next` numbers the rows.
Json timed_commits(Session& session, long commits, long& next) {
  const std::string insert = "INSERT INTO taskengine_commit_probe (n, payload) VALUES ($1, $2)";
  const std::string payload = "{\"args\": [1, 2.5], \"kwargs\": {}}";
  auto started = std::chrono::steady_clock::now();
  for (long i = 0; i < commits; ++i) session.execute(insert, {std::int64_t{next++}, payload});
  std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - started;
  return {
      {"backend", session.dialect() == taskengine::sql::Dialect::Sqlite ? "sqlite" : "postgresql"},
      {"commits", commits},
      {"seconds", elapsed.count()},
      {"commit_per_s", static_cast<double>(commits) / elapsed.count()},
      {"commit_us", elapsed.count() * 1e6 / static_cast<double>(commits)}};
}

}  // namespace

int main(int argc, char** argv) {
  std::string url;
  long commits = 2000;
  bool serve = false;
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
    else if (arg == "--serve")
      serve = true;
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
    long next = 0;
    timed_commits(*session, 20, next);  // untimed: prepares the statement, warms the connection
    if (serve) {
      std::string line;
      while (std::getline(std::cin, line) && !line.empty())
        std::cout << timed_commits(*session, std::stol(line), next).dump() << std::endl;
    } else {
      std::cout << timed_commits(*session, commits, next).dump() << std::endl;
    }
    session->execute_script("DROP TABLE taskengine_commit_probe");
  } catch (const taskengine::Error& e) {
    std::cerr << "commit_bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
