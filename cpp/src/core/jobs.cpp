#include "taskengine/jobs.hpp"

#include <algorithm>
#include <functional>
#include <set>

#include "taskengine/errors.hpp"

namespace taskengine {
namespace {

constexpr const char* kRetvalKey = "$retval";
const std::set<std::string> kJobKeys{"id",    "function", "args",        "kwargs",
                                     "title", "notes",    "dependencies"};

[[noreturn]] void fail(const std::string& job, const std::string& field, const std::string& what) {
  std::string where = job.empty() ? "a job" : "job '" + job + "'";
  throw JobConfigError(where + ", field '" + field + "': " + what);
}

bool is_job_reference(const Json& value) {
  return value.is_object() && value.size() == 1 && value.contains(kRetvalKey) &&
         value[kRetvalKey].is_string();
}

void collect(const Json& value, std::vector<std::string>& out) {
  if (is_job_reference(value)) {
    auto id = value[kRetvalKey].get<std::string>();
    if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  } else if (value.is_structured()) {
    for (const auto& item : value) collect(item, out);
  }
}

std::string text_field(const Json& j, const std::string& job, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  if (!it->is_string()) fail(job, key, "must be a string, not " + it->dump());
  return it->get<std::string>();
}

}  // namespace

std::vector<std::string> job_retval_references(const Json& value) {
  std::vector<std::string> out;
  collect(value, out);
  return out;
}

Json JobDefinition::to_json() const {
  return {{"id", id},
          {"function", function},
          {"args", args},
          {"kwargs", kwargs},
          {"title", title},
          {"notes", notes},
          {"dependencies", dependencies}};
}

JobDefinition JobDefinition::from_json(const Json& j) {
  if (!j.is_object()) throw JobConfigError("a job must be an object, not " + j.dump());
  JobDefinition job;
  auto id = j.find("id");
  if (id == j.end() || !id->is_string()) fail("", "id", "every job needs an 'id' string");
  job.id = id->get<std::string>();
  for (const auto& [key, value] : j.items())
    if (!kJobKeys.count(key)) fail(job.id, key, "unknown key");
  job.function = text_field(j, job.id, "function");
  if (auto a = j.find("args"); a != j.end() && !a->is_null()) job.args = *a;
  if (auto k = j.find("kwargs"); k != j.end() && !k->is_null()) job.kwargs = *k;
  job.title = text_field(j, job.id, "title");
  job.notes = text_field(j, job.id, "notes");
  if (auto d = j.find("dependencies"); d != j.end() && !d->is_null()) {
    if (!d->is_array()) fail(job.id, "dependencies", "must be a list of job ids");
    for (const auto& dep : *d) {
      if (!dep.is_string()) fail(job.id, "dependencies", "must list job ids, not " + dep.dump());
      job.dependencies.push_back(dep.get<std::string>());
    }
  }
  return job;
}

void JobDefinition::validate() const {
  if (id.empty()) fail(id, "id", "must not be empty");
  auto colon = function.find(':');
  if (function.empty()) fail(id, "function", "is missing");
  if (colon == std::string::npos || colon == 0 || colon + 1 == function.size())
    fail(id, "function", "must be \"module:function\", not \"" + function + "\"");
  if (!args.is_array()) fail(id, "args", "must be a list");
  if (!kwargs.is_object()) fail(id, "kwargs", "must be a mapping");
  std::set<std::string> seen;
  for (const auto& dep : dependencies) {
    if (dep == id) fail(id, "dependencies", "a job cannot depend on itself");
    if (!seen.insert(dep).second) fail(id, "dependencies", "lists '" + dep + "' twice");
  }
  for (const char* field : {"args", "kwargs"})
    for (const auto& ref : job_retval_references(std::string(field) == "args" ? args : kwargs))
      if (!seen.count(ref))
        fail(id, field,
             "!retval " + ref + " names a job that is not among this job's dependencies");
}

Json Job::to_json() const {
  Json j = definition.to_json();
  j["updated_at"] = updated_at;
  return j;
}

void validate_job_set(const std::vector<JobDefinition>& jobs) {
  std::map<std::string, const JobDefinition*> by_id;
  for (const auto& job : jobs) {
    job.validate();
    if (!by_id.emplace(job.id, &job).second) fail(job.id, "id", "is defined twice");
  }
  for (const auto& job : jobs)
    for (const auto& dep : job.dependencies)
      if (!by_id.count(dep)) fail(job.id, "dependencies", "names unknown job '" + dep + "'");
  // Depth-first search; a job met again while still on the path closes a cycle.
  enum class Mark { Unseen, OnPath, Done };
  std::map<std::string, Mark> marks;
  std::vector<std::string> path;
  std::function<void(const JobDefinition&)> visit = [&](const JobDefinition& job) {
    marks[job.id] = Mark::OnPath;
    path.push_back(job.id);
    for (const auto& dep : job.dependencies) {
      Mark mark = marks.count(dep) ? marks[dep] : Mark::Unseen;
      if (mark == Mark::OnPath) {
        std::string cycle;
        for (auto it = std::find(path.begin(), path.end(), dep); it != path.end(); ++it)
          cycle += *it + " -> ";
        fail(job.id, "dependencies", "dependency cycle " + cycle + dep);
      }
      if (mark == Mark::Unseen) visit(*by_id.at(dep));
    }
    path.pop_back();
    marks[job.id] = Mark::Done;
  };
  for (const auto& job : jobs)
    if (!marks.count(job.id)) visit(job);
}

Json JobsLoaded::to_json() const {
  return {
      {"created", created}, {"updated", updated}, {"unchanged", unchanged}, {"removed", removed}};
}

BuildConfig BuildConfig::from_json(const Json& j) {
  BuildConfig config;
  if (j.is_null()) return config;
  if (!j.is_object()) throw InvalidArgument("a build config must be a mapping, not " + j.dump());
  for (const auto& [key, value] : j.items())
    if (key != "dependency_builds")
      throw InvalidArgument("unknown build config key '" + key + "' (expected dependency_builds)");
  auto deps = j.find("dependency_builds");
  if (deps == j.end() || deps->is_null()) return config;
  if (!deps->is_object())
    throw InvalidArgument("'dependency_builds' must map job ids to build ids or null");
  for (const auto& [job, build] : deps->items()) {
    if (build.is_null()) {
      config.dependency_builds[job] = std::nullopt;
    } else if (build.is_number_integer() && build.get<TaskId>() > 0) {
      config.dependency_builds[job] = build.get<TaskId>();
    } else {
      throw InvalidArgument("'dependency_builds' for job '" + job +
                            "' must be a build id or null, not " + build.dump());
    }
  }
  return config;
}

Json Build::to_json() const {
  Json j = task.to_json();
  j["job_id"] = job_id;
  j["config"] = config;
  return j;
}

}  // namespace taskengine
