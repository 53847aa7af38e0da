#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "taskengine/task.hpp"

// The resource rule of ARCHITECTURE.md as pure decisions: no I/O. The store
// reads the few facts these functions need (cpp/src/store/sql/resource_queue.*)
// and writes back what they decide.
//
// Each resource has a queue of the unfinished tasks that want it, in
// priority order, then dispatch order. A queued task may start as far as a
// resource R is concerned ("is free on R") when:
//  - it wants R shared: no running task holds R exclusively and no queued
//    task ahead of it wants R exclusively;
//  - it wants R exclusively: no running task holds R at all and it is the
//    head of R's queue.
// A task may start when it is free on every resource it wants. So the free
// part of a queue is a prefix: the shared holders ahead of the first
// exclusive one, or that exclusive one alone when it is the head, and only
// the ends of that prefix move when something changes.
namespace taskengine::scheduler {

// A holder's place in a resource's queue. Lower sorts first: rank is the
// negated priority, then dispatch order (task id).
struct QueuePlace {
  std::int64_t rank = 0;
  TaskId task = 0;

  static QueuePlace of(int priority, TaskId task) { return {-std::int64_t{priority}, task}; }
  friend bool operator<(const QueuePlace& a, const QueuePlace& b) {
    return std::tie(a.rank, a.task) < std::tie(b.rank, b.task);
  }
  friend bool operator==(const QueuePlace& a, const QueuePlace& b) {
    return a.rank == b.rank && a.task == b.task;
  }
};

// The facts about one resource the rule looks at: who holds it now and the
// first queued holder of each kind.
struct ResourceState {
  bool active_any = false;        // a running or canceling task holds it
  bool active_exclusive = false;  // ... exclusively
  std::optional<QueuePlace> first_exclusive;
  std::optional<QueuePlace> first_shared;
};

// One resource a task wants, and its place in that resource's queue.
struct Hold {
  std::string resource;
  bool exclusive = false;
  QueuePlace place;
};

// The exclusive holder that is free on this resource, if any.
std::optional<QueuePlace> free_exclusive(const ResourceState& state);

// Shared holders are free when ahead of the limit. `open` false: none is;
// `end` nullopt: all are.
struct SharedLimit {
  bool open = false;
  std::optional<QueuePlace> end;
};
SharedLimit shared_limit(const ResourceState& state);

bool free_on(const Hold& hold, const ResourceState& state);

// Whether a task with these holds may start, given each resource's state.
bool may_start(const std::vector<Hold>& holds,
               const std::function<const ResourceState&(const std::string&)>& state_of);

// Queue places from `from` (inclusive) to `to` (exclusive); nullopt ends
// are open.
struct PlaceRange {
  std::optional<QueuePlace> from;
  std::optional<QueuePlace> to;
};

// What to re-examine in one resource's queue after its state went from
// `before` to `after`: the holders whose freeness on it changed. Everything
// else keeps its flag, which is why the work grows with what changed.
struct QueueChange {
  std::optional<PlaceRange> shared_now_free;        // waiting shared holders here may start
  std::optional<PlaceRange> shared_no_longer_free;  // ready shared holders here may not
  std::optional<QueuePlace> exclusive_now_free;
  std::optional<QueuePlace> exclusive_no_longer_free;
};
QueueChange plan_change(const ResourceState& before, const ResourceState& after);

}  // namespace taskengine::scheduler
