#include "store/sql/resource_queue.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>

#include "store/sql/array_param.hpp"
#include "taskengine/errors.hpp"
#include "taskengine/json.hpp"

namespace taskengine::sql {
namespace {

using scheduler::Hold;
using scheduler::PlaceRange;
using scheduler::QueuePlace;
using scheduler::ResourceState;

// Statements with an id list are cut into chunks of this many parameters.
constexpr std::size_t kIdChunk = 500;
// Resources per state read, at most. A read of fewer is padded (with its
// last name) to a power of two up to kStatesStep, then to a multiple of it:
// a session prepares at most 20 texts of it, and past 16 names at most 15
// are padding (each one more set of probes; a power of two padded 100 to
// 128).
constexpr std::size_t kMaxStates = 256;
constexpr std::size_t kStatesStep = 16;
constexpr std::size_t kStateTexts = 4 + kMaxStates / kStatesStep;

std::size_t padded_states(std::size_t count) {
  if (count <= kStatesStep) return std::bit_ceil(count);
  return (count + kStatesStep - 1) / kStatesStep * kStatesStep;
}

// The index of a padded count among the texts: 1, 2, 4, 8, then 16, 32, ...
std::size_t state_text_index(std::size_t padded) {
  if (padded < kStatesStep) return static_cast<std::size_t>(std::countr_zero(padded));
  return 3 + padded / kStatesStep;
}

// The state of a list of resources in one statement: per resource, its
// strongest active holder and the first waiting holder of each kind, each a
// LIMIT 1 probe of the index (resource, holder, exclusive, queue_rank,
// task_id), in queue order. Nothing reads a queue past its head, whatever
// its length. Columns: resource, active exclusive (NULL: none), then the
// place of the first waiting exclusive and shared holder. PostgreSQL's
// LATERAL joins return a place as its rank and task; SQLite's scalar
// subqueries return one column each, so there a place is one text,
// "rank task" (one probe of the index entry instead of two: 3 probes per
// resource, not 5).
std::string build_state_sql(Dialect dialect, std::size_t resources) {
  std::string values = " FROM (VALUES ";
  for (std::size_t i = 1; i <= resources; ++i)
    values += (i == 1 ? "(CAST($" : ", (CAST($") + std::to_string(i) + " AS TEXT))";
  values += ") AS r";
  const std::string active =
      "FROM taskengine_task_resources a WHERE a.resource = r.column1 AND a.holder = 'active' "
      "ORDER BY a.exclusive DESC LIMIT 1";
  auto first = [](const std::string& select, const char* exclusive) {
    return "SELECT " + select +
           " FROM taskengine_task_resources q WHERE q.resource = r.column1 AND q.holder = "
           "'waiting' AND q.exclusive = " +
           exclusive + " ORDER BY q.queue_rank, q.task_id LIMIT 1";
  };
  if (dialect == Dialect::Postgres)
    return "SELECT r.column1, a.exclusive, e.queue_rank, e.task_id, s.queue_rank, s.task_id" +
           values + " LEFT JOIN LATERAL (SELECT a.exclusive " + active +
           ") a ON TRUE LEFT JOIN LATERAL (" + first("q.queue_rank, q.task_id", "TRUE") +
           ") e ON TRUE LEFT JOIN LATERAL (" + first("q.queue_rank, q.task_id", "FALSE") +
           ") s ON TRUE";
  std::string sql = "SELECT r.column1, (SELECT a.exclusive " + active + ")";
  for (const char* exclusive : {"TRUE", "FALSE"})
    sql += ", (" + first("q.queue_rank || ' ' || q.task_id", exclusive) + ")";
  return sql + values;
}

const std::string& state_sql(Dialect dialect, std::size_t padded) {
  using Texts = std::array<std::string, kStateTexts>;
  auto build = [](Dialect d) {
    Texts out;
    for (std::size_t n = 1; n <= kMaxStates; n = padded_states(n + 1))
      out.at(state_text_index(n)) = build_state_sql(d, n);
    return out;
  };
  static const Texts sqlite = build(Dialect::Sqlite);
  static const Texts postgres = build(Dialect::Postgres);
  return (dialect == Dialect::Postgres ? postgres : sqlite).at(state_text_index(padded));
}

// Whether any queued shared holder can lie in `range`: none does when the
// first one is already past its end. Saves a query on queues without any.
bool may_hold_shared(const ResourceState& state, const PlaceRange& range) {
  return state.first_shared && (!range.to || *state.first_shared < *range.to);
}

// The place of a state read's `n`th holder column (0: exclusive, 1: shared).
std::optional<QueuePlace> place_at(Dialect dialect, const Row& row, std::size_t n) {
  if (dialect == Dialect::Postgres) {
    std::size_t column = 2 + 2 * n;
    if (row.is_null(column)) return std::nullopt;
    return QueuePlace{row.integer(column), row.integer(column + 1)};
  }
  std::size_t column = 2 + n;
  if (row.is_null(column)) return std::nullopt;
  std::string text = row.text(column);
  QueuePlace place;
  const char* end = text.data() + text.size();
  auto rank = std::from_chars(text.data(), end, place.rank);
  bool read = rank.ec == std::errc() && rank.ptr != end && *rank.ptr == ' ';
  if (read) {
    auto task = std::from_chars(rank.ptr + 1, end, place.task);
    read = task.ec == std::errc() && task.ptr == end;
  }
  if (!read) throw StoreError("unreadable queue place '" + text + "' in taskengine_task_resources");
  return place;
}

std::vector<TaskId> ids_of(const std::vector<ResourceQueue::Wants>& tasks) {
  std::vector<TaskId> ids;
  ids.reserve(tasks.size());
  for (const auto& task : tasks) ids.push_back(task.id);
  return ids;
}

}  // namespace

void ResourceQueue::add(const std::vector<Wants>& tasks) {
  // Each row is sent ahead: blocked ones are in no queue (nobody's freeness
  // changes), queued ones go in as one change.
  auto insert = [&](bool queued) {
    for (const auto& task : tasks) {
      if (task.queued != queued) continue;
      std::int64_t rank = QueuePlace::of(task.priority, task.id).rank;
      auto insert_row = [&](const std::string& resource, bool exclusive) {
        session_.send(
            "INSERT INTO taskengine_task_resources "
            "(task_id, resource, exclusive, priority, queue_rank, holder) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            {task.id, resource, std::int64_t{exclusive}, std::int64_t{task.priority}, rank,
             std::string(queued ? "waiting" : "blocked")});
      };
      for (const auto& resource : task.exclusive) insert_row(resource, true);
      for (const auto& resource : task.shared) insert_row(resource, false);
    }
  };
  insert(false);
  std::vector<Row> rows;  // not in any queue yet
  std::vector<TaskId> newcomers;
  for (const auto& task : tasks) {
    if (!task.queued) continue;
    newcomers.push_back(task.id);
    for (const auto& resource : task.exclusive) rows.push_back({resource, true, "blocked"});
    for (const auto& resource : task.shared) rows.push_back({resource, false, "blocked"});
  }
  if (!newcomers.empty())
    change(
        rows, [&] { insert(true); }, newcomers);
}

void ResourceQueue::enqueue(TaskId id) {
  std::vector<Row> rows = rows_of(id);
  if (rows.empty()) {
    for (const auto& row :
         session_.query("UPDATE taskengine_tasks SET eligible = TRUE "
                        "WHERE id = $1 AND state = 'waiting' RETURNING worker_type",
                        {id}))
      became_ready_.insert(row.text(0));
    return;
  }
  session_.send("UPDATE taskengine_tasks SET eligible = FALSE WHERE id = $1", {id});
  change(rows,
         [&] {
           session_.send(
               "UPDATE taskengine_task_resources SET holder = 'waiting' WHERE task_id = $1", {id});
         },
         {id});
}

void ResourceQueue::activate(const std::vector<Wants>& tasks) {
  send_for_tasks("UPDATE taskengine_task_resources SET holder = 'active'", ids_of(tasks));
}

void ResourceQueue::send_for_tasks(const std::string& sql, const std::vector<TaskId>& ids) {
  if (ids.empty()) return;
  // All rows of the tasks (those of their row's lists), by the primary
  // key's task_id prefix: one probe per task, where naming each row by its
  // whole key as ORed pairs cost SQLite a third more per row. PostgreSQL
  // takes the ids as one array (one text to prepare however many there
  // are), behind ARRAY(SELECT unnest(...)): as the result of a subquery the
  // planner does not guess its length, and scans the key's prefix. Given
  // the array itself, it plans each execution with that array's contents,
  // and on a table not analyzed yet estimates 100 ids as half the table:
  // a sequential scan, 12 ms per statement at 200k rows.
  if (session_.dialect() == Dialect::Postgres) {
    ArrayParam array;
    for (TaskId id : ids) array.add_integer(id);
    session_.send(sql + " WHERE task_id = ANY(ARRAY(SELECT unnest($1::bigint[])))", {array.take()});
    return;
  }
  for_id_chunks(ids, kIdChunk, [&](Params chunk) {
    std::string in = padded_in_list(chunk, chunk.size());
    session_.send(sql + " WHERE task_id IN (" + in + ")", chunk);
  });
}

void ResourceQueue::remove(TaskId id) {
  std::vector<Row> rows = rows_of(id);
  if (rows.empty()) return;
  change(rows,
         [&] { session_.send("DELETE FROM taskengine_task_resources WHERE task_id = $1", {id}); },
         {});
}

void ResourceQueue::release(const std::vector<Wants>& tasks) {
  std::vector<Row> rows;
  for (const auto& task : tasks) {
    for (const auto& resource : task.exclusive) rows.push_back({resource, true, "active"});
    for (const auto& resource : task.shared) rows.push_back({resource, false, "active"});
  }
  if (rows.empty()) return;
  change(rows, [&] { send_for_tasks("DELETE FROM taskengine_task_resources", ids_of(tasks)); }, {});
}

std::vector<ResourceQueue::Row> ResourceQueue::rows_of(TaskId id) {
  std::vector<Row> rows;
  for (const auto& row :
       session_.query("SELECT resource, exclusive, holder FROM taskengine_task_resources "
                      "WHERE task_id = $1",
                      {id}))
    rows.push_back({row.text(0), row.boolean(1), row.text(2)});
  return rows;
}

void ResourceQueue::change(const std::vector<Row>& rows, const std::function<void()>& mutate,
                           const std::vector<TaskId>& newcomers) {
  // Each resource's state before the change is read, except where only
  // active rows change: the queue is then the same before and after but for
  // those tasks themselves, and with an active holder the rule looks at
  // nothing they change (an exclusive one closes the resource; a shared one
  // leaves its exclusive queue as it was).
  std::set<std::string> touched;
  std::set<std::string> queued;
  for (const auto& row : rows) {
    touched.insert(row.resource);
    if (row.holder != "active") queued.insert(row.resource);
  }
  std::map<std::string, ResourceState> before = read_states(queued);
  mutate();
  std::map<std::string, ResourceState> after = read_states(touched);  // and others' below
  for (const auto& row : rows) {
    if (queued.count(row.resource)) continue;
    ResourceState& was = before.try_emplace(row.resource, after.at(row.resource)).first->second;
    was.active_any = true;
    was.active_exclusive = was.active_exclusive || row.exclusive;
  }

  std::set<TaskId> demote;
  std::set<TaskId> candidates(newcomers.begin(), newcomers.end());
  std::vector<Pending> shared_demoted;
  std::vector<Pending> shared_candidates;
  for (const auto& resource : touched) {
    const ResourceState& now = after.at(resource);
    scheduler::QueueChange plan = scheduler::plan_change(before.at(resource), now);
    if (plan.shared_no_longer_free && may_hold_shared(now, *plan.shared_no_longer_free))
      shared_demoted.push_back(send_holders_in(resource, *plan.shared_no_longer_free));
    if (plan.exclusive_no_longer_free) demote.insert(plan.exclusive_no_longer_free->task);
    if (plan.shared_now_free && may_hold_shared(now, *plan.shared_now_free))
      shared_candidates.push_back(send_holders_in(resource, *plan.shared_now_free));
    if (plan.exclusive_now_free) candidates.insert(plan.exclusive_now_free->task);
  }
  auto unanswered = [](const Pending& p) { return !p.ready(); };
  if (std::any_of(shared_demoted.begin(), shared_demoted.end(), unanswered) ||
      std::any_of(shared_candidates.begin(), shared_candidates.end(), unanswered))
    session_.flush();
  for (const auto& pending : shared_demoted)
    for (const auto& row : pending.rows()) demote.insert(row.integer(0));
  for (const auto& pending : shared_candidates)
    for (const auto& row : pending.rows()) candidates.insert(row.integer(0));
  for (TaskId id : demote) candidates.erase(id);

  // A demoted task's flag goes down whether it was up or not (a waiting
  // holder in the range may have been held back elsewhere): clearing a
  // clear flag costs less than reading it first. A candidate may start when
  // it is free on all its resources, including ones this change did not
  // touch: their states are read together.
  set_eligible({demote.begin(), demote.end()}, false);
  std::map<TaskId, Candidate> found = candidates_of(candidates);
  std::set<std::string> untouched;
  for (const auto& [id, candidate] : found)
    if (candidate.startable)
      for (const auto& hold : candidate.holds)
        if (!after.count(hold.resource)) untouched.insert(hold.resource);
  after.merge(read_states(untouched));
  auto state_of = [&](const std::string& resource) -> const ResourceState& {
    return after.at(resource);
  };
  std::vector<TaskId> promote;
  for (const auto& [id, candidate] : found) {
    if (!candidate.startable || !scheduler::may_start(candidate.holds, state_of)) continue;
    promote.push_back(id);
    became_ready_.insert(candidate.worker_type);
  }
  set_eligible(promote, true);
}

std::map<std::string, ResourceState> ResourceQueue::read_states(
    const std::set<std::string>& resources) {
  std::map<std::string, ResourceState> states;
  std::vector<std::string> names(resources.begin(), resources.end());
  for (std::size_t start = 0; start < names.size(); start += kMaxStates) {
    std::size_t count = std::min(kMaxStates, names.size() - start);
    std::size_t padded = padded_states(count);
    Params params;
    params.reserve(padded);
    for (std::size_t i = 0; i < padded; ++i)
      params.emplace_back(names[start + std::min(i, count - 1)]);
    for (const auto& row : session_.query(state_sql(session_.dialect(), padded), params)) {
      ResourceState& state = states[row.text(0)];
      if (!row.is_null(1)) {
        state.active_any = true;
        state.active_exclusive = row.boolean(1);
      }
      state.first_exclusive = place_at(session_.dialect(), row, 0);
      state.first_shared = place_at(session_.dialect(), row, 1);
    }
  }
  return states;
}

Pending ResourceQueue::send_holders_in(const std::string& resource, const PlaceRange& range) {
  Params params{resource};
  std::string sql =
      "SELECT task_id FROM taskengine_task_resources WHERE resource = $1 AND holder = 'waiting' "
      "AND exclusive = FALSE";
  if (range.from) {
    params.emplace_back(range.from->rank);
    params.emplace_back(range.from->task);
    sql += " AND (queue_rank, task_id) >= ($2, $3)";
  }
  if (range.to) {
    params.emplace_back(range.to->rank);
    params.emplace_back(range.to->task);
    std::size_t n = params.size();
    sql +=
        " AND (queue_rank, task_id) < ($" + std::to_string(n - 1) + ", $" + std::to_string(n) + ")";
  }
  return session_.send(sql, params);
}

std::map<TaskId, ResourceQueue::Candidate> ResourceQueue::candidates_of(
    const std::set<TaskId>& ids) {
  // From the tasks' own rows, one per task: their resources as dispatched
  // (the same lists their resource rows were made from), and whether they
  // are still waiting for a start.
  std::map<TaskId, Candidate> found;
  for_id_chunks(std::vector<TaskId>(ids.begin(), ids.end()), kIdChunk, [&](Params chunk) {
    std::string in = padded_in_list(chunk, chunk.size());
    for (const auto& row : session_.query(
             "SELECT id, priority, resources, state, eligible, worker_type FROM taskengine_tasks "
             "WHERE id IN (" +
                 in + ")",
             chunk)) {
      TaskId id = row.integer(0);
      QueuePlace place = QueuePlace::of(static_cast<int>(row.integer(1)), id);
      Candidate& candidate = found[id];
      auto text = row.optional_text(2);
      Json resources = text && !text->empty() ? Json::parse(*text) : Json::object();
      for (const auto& name : resources.value("exclusive", std::vector<std::string>{}))
        candidate.holds.push_back({name, true, place});
      for (const auto& name : resources.value("shared", std::vector<std::string>{}))
        candidate.holds.push_back({name, false, place});
      candidate.startable = row.text(3) == "waiting" && !row.boolean(4);
      candidate.worker_type = row.text(5);
    }
  });
  return found;
}

void ResourceQueue::set_eligible(const std::vector<TaskId>& ids, bool eligible) {
  // The task rows alone: their resource rows stay waiting. The statement
  // tests neither the task's state nor its flag: promoted tasks were read
  // waiting and not eligible, demoted ones come from the queue, under the
  // scheduling lock (claims take eligible tasks only). With those tests
  // PostgreSQL, without statistics, reads every waiting entry of the state
  // index instead of the rows named. Sent ahead.
  for_id_chunks(ids, kIdChunk, [&](Params chunk) {
    std::string in = padded_in_list(chunk, chunk.size());
    session_.send(std::string("UPDATE taskengine_tasks SET eligible = ") +
                      (eligible ? "TRUE" : "FALSE") + " WHERE id IN (" + in + ")",
                  chunk);
  });
}

}  // namespace taskengine::sql
