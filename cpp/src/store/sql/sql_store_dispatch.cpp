// Dispatch: every spec is validated, then all are stored in one transaction.
// Runs of consecutive simple specs go in bulk INSERTs (one statement per
// chunk instead of three per task: multi-row VALUES on SQLite, unnest of
// array parameters on PostgreSQL); the others one at a time, in order.
#include <algorithm>
#include <array>
#include <bit>
#include <optional>
#include <set>
#include <span>

#include "scheduler/dependencies.hpp"
#include "scheduler/retval.hpp"
#include "store/sql/array_param.hpp"
#include "store/sql/resource_queue.hpp"
#include "store/sql/sql_store.hpp"
#include "taskengine/errors.hpp"

namespace taskengine::sql {
namespace {

// A simple spec starts waiting and eligible and has rows nowhere but in
// taskengine_tasks, so it needs nothing read or decided per task.
bool is_simple(const TaskSpec& s) {
  return s.depends_on.empty() && !s.unique_key && s.declined_by.empty() &&
         s.exclusive_resources.empty() && s.shared_resources.empty();
}

// The fields a bulk INSERT passes once for all its rows: a run of simple
// specs breaks where one of them changes.
bool same_shared_fields(const TaskSpec& a, const TaskSpec& b) {
  return a.kind == b.kind && a.allow_failure == b.allow_failure &&
         a.timeout_seconds == b.timeout_seconds && a.requirements == b.requirements &&
         a.retry == b.retry && a.history == b.history;
}

constexpr std::size_t kSharedParams = 10;
constexpr std::size_t kRowParams = 5;  // name, payload, priority, not_before, task_group_id
// SQLite: rows per statement are powers of two up to this, so a session
// prepares and caches at most 11 bulk statements whatever the batch sizes.
constexpr std::size_t kMaxBulkLog2 = 10;

// PostgreSQL: a chunk of any size in one statement (ArrayParam; ROWS FROM
// zips the arrays). The rows are inserted, and numbered, in their order.
const std::string kUnnestSql =
    "INSERT INTO taskengine_tasks (kind, created_at, resources, depends_on, allow_failure, "
    "requirements, worker_type, retry_policy, timeout_seconds, history, name, payload, "
    "priority, not_before, task_group_id, state, eligible) "
    "SELECT $1::text, $2::bigint, $3::jsonb, $4::jsonb, $5::boolean, $6::jsonb, $7::text, "
    "$8::jsonb, $9::double precision, $10::jsonb, r.name, r.payload, r.priority, "
    "r.not_before, r.task_group_id, 'waiting', TRUE "
    "FROM ROWS FROM (unnest($11::text[]), jsonb_array_elements($12::jsonb), "
    "unnest($13::integer[]), unnest($14::bigint[]), unnest($15::bigint[])) "
    "AS r(name, payload, priority, not_before, task_group_id) RETURNING id";
constexpr std::size_t kFirstUnnestRows = 64;
constexpr std::size_t kMaxUnnestRows = 1024;

std::string build_bulk_sql(std::size_t rows) {
  std::string sql =
      "INSERT INTO taskengine_tasks (kind, created_at, resources, depends_on, allow_failure, "
      "requirements, worker_type, retry_policy, timeout_seconds, history, name, payload, "
      "priority, not_before, task_group_id, state, eligible) VALUES ";
  for (std::size_t r = 0; r < rows; ++r) {
    sql += r ? ", ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10"
             : "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10";
    std::size_t first = kSharedParams + r * kRowParams + 1;
    for (std::size_t i = 0; i < kRowParams; ++i) sql += ", $" + std::to_string(first + i);
    // Waiting with no resources: eligible at once (ResourceQueue::enqueue).
    sql += ", 'waiting', TRUE)";
  }
  return sql + " RETURNING id";
}

// The statement for 2^log2 rows, built once per process.
const std::string& bulk_sql(std::size_t log2) {
  static const std::array<std::string, kMaxBulkLog2 + 1> texts = [] {
    std::array<std::string, kMaxBulkLog2 + 1> out;
    for (std::size_t k = 0; k <= kMaxBulkLog2; ++k) out[k] = build_bulk_sql(std::size_t{1} << k);
    return out;
  }();
  return texts.at(log2);
}

// Requirements and retry policies are stored without the fields that keep
// their defaults (from_json fills them back in): most tasks store "{}" for
// both, and every version of their row is ~170 bytes smaller (each update
// on PostgreSQL writes the whole new version to the WAL).
std::string without_defaults(const Json& full, const Json& defaults) {
  Json out = Json::object();
  for (const auto& [key, value] : full.items())
    if (auto it = defaults.find(key); it == defaults.end() || *it != value) out[key] = value;
  return out.dump();
}

// Consecutive dispatches mostly share their requirements and retry policy:
// the last one's text is kept (per thread, as stores are), which spares
// building, comparing and dumping two JSON objects per call.
template <typename Value>
const std::string& stored_json(const Value& value) {
  thread_local std::optional<std::pair<Value, std::string>> last;
  if (!last || !(last->first == value)) {
    static const Json defaults = Value{}.to_json();
    last.emplace(value, without_defaults(value.to_json(), defaults));
  }
  return last->second;
}

// A {"$retval": id} argument needs its task in depends_on.
void check_retvals(const TaskSpec& spec) {
  for (TaskId ref : scheduler::retval_references(spec.payload))
    if (std::find(spec.depends_on.begin(), spec.depends_on.end(), ref) == spec.depends_on.end())
      throw InvalidArgument("an argument refers to the result of task " + std::to_string(ref) +
                            " ({\"$retval\": " + std::to_string(ref) +
                            "}), which is not in depends_on");
}

}  // namespace

std::vector<TaskId> SqlStore::dispatch(const std::vector<TaskSpec>& specs) {
  for (std::size_t i = 0; i < specs.size(); ++i) {
    try {
      specs[i].validate();
    } catch (const InvalidArgument& e) {
      if (specs.size() == 1) throw;
      throw InvalidArgument("task " + std::to_string(i) + " of the batch: " + e.what());
    }
  }
  require_schema();
  if (specs.empty()) return {};
  Micros now = now_micros();
  Transaction txn(*session_, true);
  // Resources: the queue's decisions. Dependencies: a completion settles
  // the dependents it can see, and this reads the dependencies' states;
  // taking turns, each sees the other's rows (else a dependent dispatched
  // while its dependency ends could stay blocked for ever).
  bool needs_lock = std::any_of(specs.begin(), specs.end(), [](const TaskSpec& s) {
    return !s.exclusive_resources.empty() || !s.shared_resources.empty() || !s.depends_on.empty();
  });
  if (needs_lock) lock_scheduling();
  std::vector<TaskId> ids;
  ids.reserve(specs.size());
  std::set<GroupId> known_groups;
  std::vector<BulkInsert> bulk;
  std::vector<ResourceQueue::Wants> resources;  // recorded together, after the inserts
  for (std::size_t start = 0; start < specs.size();) {
    if (!is_simple(specs[start])) {
      ids.push_back(insert_task(specs[start], now, known_groups, &resources));
      ++start;
      continue;
    }
    std::size_t end = start + 1;
    while (end < specs.size() && is_simple(specs[end]) &&
           same_shared_fields(specs[start], specs[end]))
      ++end;
    insert_simple_run(std::span(specs).subspan(start, end - start), now, known_groups, ids, bulk);
    start = end;
  }
  queue().add(resources);
  commit(txn);
  for (auto& insert : bulk) {
    const Rows& returned = insert.ids.rows();
    if (returned.size() != insert.rows)
      throw StoreError("a bulk insert of " + std::to_string(insert.rows) + " tasks returned " +
                       std::to_string(returned.size()) + " ids");
    // RETURNING promises no order, but both engines number a single
    // INSERT's rows in the order they come (VALUES, unnest's arrays):
    // ascending ids are the specs' order.
    auto first = ids.begin() + static_cast<std::ptrdiff_t>(insert.offset);
    for (std::size_t i = 0; i < insert.rows; ++i) first[i] = returned[i].integer(0);
    std::sort(first, first + static_cast<std::ptrdiff_t>(insert.rows));
  }
  return ids;
}

void SqlStore::require_group(GroupId group, std::set<GroupId>& known_groups) {
  if (known_groups.count(group)) return;
  if (session_->query("SELECT 1 FROM taskengine_task_groups WHERE id = $1", {group}).empty())
    throw InvalidArgument("task group " + std::to_string(group) + " does not exist");
  known_groups.insert(group);
}

void SqlStore::insert_simple_run(std::span<const TaskSpec> run, Micros now,
                                 std::set<GroupId>& known_groups, std::vector<TaskId>& ids,
                                 std::vector<BulkInsert>& bulk) {
  for (const auto& spec : run) {
    check_retvals(spec);
    if (spec.task_group) require_group(*spec.task_group, known_groups);
  }
  const TaskSpec& first = run.front();
  static const std::string kNoResources =
      Json{{"exclusive", Json::array()}, {"shared", Json::array()}}.dump();
  const Params shared{std::string(to_string(first.kind)),
                      now,
                      kNoResources,
                      std::string("[]"),
                      std::int64_t{first.allow_failure ? 1 : 0},
                      stored_json(first.requirements),
                      first.requirements.worker_type,
                      stored_json(first.retry),
                      optional_value(first.timeout_seconds),
                      first.history.dump()};
  if (session_->dialect() == Dialect::Postgres)
    send_unnest_chunks(run, shared, ids, bulk);
  else
    send_values_chunks(run, shared, ids, bulk);
  became_ready_.insert(first.requirements.worker_type);
}

void SqlStore::send_values_chunks(std::span<const TaskSpec> run, const Params& shared,
                                  std::vector<TaskId>& ids, std::vector<BulkInsert>& bulk) {
  std::size_t limit = session_->max_parameters();
  std::size_t fit = limit > kSharedParams ? (limit - kSharedParams) / kRowParams : 0;
  std::size_t max_rows =
      std::clamp(std::bit_floor(fit), std::size_t{1}, std::size_t{1} << kMaxBulkLog2);
  Params params;
  for (std::size_t done = 0; done < run.size();) {
    // Full statements first, then the rest from the smallest power of two
    // up (a statement text per size, so at most 11 prepared).
    std::size_t left = run.size() - done;
    std::size_t rows = left >= max_rows ? max_rows : std::size_t{1} << std::countr_zero(left);
    params = shared;
    params.reserve(kSharedParams + rows * kRowParams);
    for (const auto& spec : run.subspan(done, rows)) {
      params.emplace_back(spec.name);
      params.emplace_back(spec.payload.dump());
      params.emplace_back(std::int64_t{spec.priority});
      params.push_back(optional_value(spec.not_before));
      params.push_back(optional_value(spec.task_group));
    }
    bulk.push_back({ids.size(), rows, session_->send(bulk_sql(std::countr_zero(rows)), params)});
    ids.resize(ids.size() + rows);  // filled in from the RETURNING ids after commit
    done += rows;
  }
}

void SqlStore::send_unnest_chunks(std::span<const TaskSpec> run, const Params& shared,
                                  std::vector<TaskId>& ids, std::vector<BulkInsert>& bulk) {
  // One statement text for every size: the rows' columns travel as four
  // array parameters and the payloads as one JSON array, parsed once by
  // the server (measured: 10% less server CPU than a jsonb[] literal, and
  // nothing to escape). Chunks double from a small first one, each put on
  // the wire as soon as it is built: the server inserts chunk k while the
  // client builds chunk k+1.
  ArrayParam names, priorities, not_befores, groups;
  std::string payloads;
  Params params;
  std::size_t rows = kFirstUnnestRows;
  for (std::size_t done = 0; done < run.size();
       done += rows, rows = std::min(rows * 2, kMaxUnnestRows)) {
    rows = std::min(rows, run.size() - done);
    for (const auto& spec : run.subspan(done, rows)) {
      names.add_text(spec.name);
      payloads += payloads.empty() ? '[' : ',';
      payloads += spec.payload.dump();
      priorities.add_integer(spec.priority);
      not_befores.add_optional(spec.not_before);
      groups.add_optional(spec.task_group);
    }
    params = shared;
    params.reserve(kSharedParams + kRowParams);
    params.emplace_back(names.take());
    payloads += ']';
    params.emplace_back(std::move(payloads));
    payloads.clear();
    params.emplace_back(priorities.take());
    params.emplace_back(not_befores.take());
    params.emplace_back(groups.take());
    bulk.push_back({ids.size(), rows, session_->send(kUnnestSql, params)});
    session_->push();
    ids.resize(ids.size() + rows);  // filled in from the RETURNING ids after commit
  }
}

TaskId SqlStore::insert_task(const TaskSpec& spec, Micros now, std::set<GroupId>& known_groups,
                             std::vector<ResourceQueue::Wants>* queued_resources) {
  check_retvals(spec);
  // The dependencies decide the initial state (scheduler::dependency_verdict).
  std::vector<std::pair<TaskId, TaskState>> dependencies;
  for (TaskId dep : spec.depends_on) {
    Rows rows = session_->query("SELECT state FROM taskengine_tasks WHERE id = $1", {dep});
    if (rows.empty())
      throw InvalidArgument("depends_on names task " + std::to_string(dep) +
                            ", which does not exist");
    dependencies.emplace_back(dep, parse_task_state(rows[0].text(0)));
  }
  auto [state, reason] = scheduler::dependency_verdict(dependencies, spec.allow_failure);
  if (spec.task_group) require_group(*spec.task_group, known_groups);
  if (spec.unique_key &&
      !session_->query("SELECT id FROM taskengine_tasks WHERE unique_key = $1", {*spec.unique_key})
           .empty())
    throw InvalidArgument("a task with unique key '" + *spec.unique_key + "' already exists");

  Json resources = {{"exclusive", spec.exclusive_resources}, {"shared", spec.shared_resources}};
  // Tasks without resources are eligible as soon as they wait; the
  // resource queue decides for the others.
  bool no_resources = spec.exclusive_resources.empty() && spec.shared_resources.empty();
  bool eligible = state == TaskState::Waiting && no_resources;
  Value on_unblock = unblock_reactions(spec);
  Rows rows = session_->query(
      "INSERT INTO taskengine_tasks (kind, name, payload, state, priority, created_at, "
      "not_before, finished_at, resources, task_group_id, depends_on, allow_failure, "
      "requirements, worker_type, retry_policy, timeout_seconds, unique_key, reason, history, "
      "eligible, on_unblock) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, "
      "$15, $16, $17, $18, $19, $20, $21) RETURNING id",
      {std::string(to_string(spec.kind)),
       spec.name,
       spec.payload.dump(),
       std::string(to_string(state)),
       std::int64_t{spec.priority},
       now,
       optional_value(spec.not_before),
       state == TaskState::Skipped ? Value(now) : Value(std::monostate{}),
       resources.dump(),
       optional_value(spec.task_group),
       Json(spec.depends_on).dump(),
       std::int64_t{spec.allow_failure ? 1 : 0},
       stored_json(spec.requirements),
       spec.requirements.worker_type,
       stored_json(spec.retry),
       optional_value(spec.timeout_seconds),
       optional_value(spec.unique_key),
       optional_value(reason),
       spec.history.dump(),
       std::int64_t{eligible ? 1 : 0},
       on_unblock});
  TaskId id = rows.at(0).integer(0);
  if (eligible) became_ready_.insert(spec.requirements.worker_type);
  for (WorkerId worker : std::set<WorkerId>(spec.declined_by.begin(), spec.declined_by.end()))
    session_->execute(
        "INSERT INTO taskengine_task_declines (task_id, worker_id, reason) VALUES ($1, $2, $3)",
        {id, worker, std::string("can_run_on refused it at creation")});
  if (state != TaskState::Skipped && !no_resources) {
    ResourceQueue::Wants wants{id, spec.priority, spec.exclusive_resources, spec.shared_resources,
                               state == TaskState::Waiting};
    if (queued_resources)
      queued_resources->push_back(std::move(wants));
    else
      queue().add({wants});
  }
  std::set<TaskId> unique_deps(spec.depends_on.begin(), spec.depends_on.end());
  for (TaskId dep : unique_deps)
    session_->execute(
        "INSERT INTO taskengine_task_dependencies (task_id, depends_on) VALUES ($1, $2)",
        {id, dep});
  // Its dependencies are already done: it is unblocked as it is created.
  if (state == TaskState::Waiting)
    if (const auto* reactions = std::get_if<std::string>(&on_unblock))
      apply_unblock(id, *reactions, now);
  return id;
}

}  // namespace taskengine::sql
