#include "scheduler/resource_rule.hpp"

namespace taskengine::scheduler {
namespace {

// The shared holders free under `limit` and not under `other`: the places
// ahead of limit.end that are not ahead of other.end.
std::optional<PlaceRange> gained(const SharedLimit& limit, const SharedLimit& other) {
  if (!limit.open) return std::nullopt;
  if (!other.open) return PlaceRange{std::nullopt, limit.end};
  // Both open: [other.end, limit.end), where a missing end is +infinity.
  if (!other.end) return std::nullopt;
  if (limit.end && !(*other.end < *limit.end)) return std::nullopt;
  return PlaceRange{other.end, limit.end};
}

}  // namespace

std::optional<QueuePlace> free_exclusive(const ResourceState& state) {
  if (state.active_any || !state.first_exclusive) return std::nullopt;
  if (state.first_shared && *state.first_shared < *state.first_exclusive) return std::nullopt;
  return state.first_exclusive;
}

SharedLimit shared_limit(const ResourceState& state) {
  if (state.active_exclusive) return {false, std::nullopt};
  return {true, state.first_exclusive};
}

bool free_on(const Hold& hold, const ResourceState& state) {
  if (hold.exclusive) {
    auto head = free_exclusive(state);
    return head && *head == hold.place;
  }
  SharedLimit limit = shared_limit(state);
  return limit.open && (!limit.end || hold.place < *limit.end);
}

bool may_start(const std::vector<Hold>& holds,
               const std::function<const ResourceState&(const std::string&)>& state_of) {
  for (const auto& hold : holds)
    if (!free_on(hold, state_of(hold.resource))) return false;
  return true;
}

QueueChange plan_change(const ResourceState& before, const ResourceState& after) {
  QueueChange change;
  SharedLimit was = shared_limit(before);
  SharedLimit now = shared_limit(after);
  change.shared_now_free = gained(now, was);
  change.shared_no_longer_free = gained(was, now);
  auto head_before = free_exclusive(before);
  auto head_after = free_exclusive(after);
  if (head_after && head_after != head_before) change.exclusive_now_free = head_after;
  if (head_before && head_before != head_after) change.exclusive_no_longer_free = head_before;
  return change;
}

}  // namespace taskengine::scheduler
