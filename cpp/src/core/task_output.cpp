#include "taskengine/task_output.hpp"

#include "taskengine/errors.hpp"

namespace taskengine {
namespace {

// Reads one field with a message that names it, so a bad record from a
// task or from Python says what is wrong.
template <typename T>
T required(const Json& j, const char* key, const char* what) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null())
    throw InvalidArgument(std::string(what) + " needs '" + key + "'");
  try {
    return it->get<T>();
  } catch (const Json::exception&) {
    throw InvalidArgument(std::string(what) + ": '" + key +
                          "' has the wrong type: " + it->dump().substr(0, 100));
  }
}

template <typename T>
T optional(const Json& j, const char* key, T fallback, const char* what) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const Json::exception&) {
    throw InvalidArgument(std::string(what) + ": '" + key +
                          "' has the wrong type: " + it->dump().substr(0, 100));
  }
}

// Cuts at a UTF-8 character boundary so the stored text stays valid.
std::string cut_utf8(const std::string& text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  std::size_t end = max_bytes;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return text.substr(0, end) + " [... cut at " + std::to_string(max_bytes) + " bytes]";
}

}  // namespace

Json LogRecord::to_json() const {
  return {
      {"id", id},       {"task_id", task_id}, {"created_at", created_at}, {"stored_at", stored_at},
      {"level", level}, {"logger", logger},   {"message", message},       {"extra", extra}};
}

LogRecord LogRecord::from_json(const Json& j) {
  if (!j.is_object()) throw InvalidArgument("a log record must be an object");
  LogRecord r;
  r.created_at = optional<Micros>(j, "created_at", 0, "a log record");
  r.level = optional<int>(j, "level", 20, "a log record");
  r.logger = optional<std::string>(j, "logger", "", "a log record");
  r.message = cut_utf8(required<std::string>(j, "message", "a log record"), kMaxLogMessageBytes);
  r.extra = j.value("extra", Json());
  if (!r.extra.is_null() && !r.extra.is_object())
    throw InvalidArgument("a log record's 'extra' must be an object or null");
  return r;
}

Json Progress::to_json() const {
  return {{"group_name", group_name},
          {"current", current},
          {"total", total},
          {"status_line", status_line},
          {"updated_at", updated_at}};
}

Progress Progress::from_json(const Json& j) {
  if (!j.is_object()) throw InvalidArgument("a progress report must be an object");
  Progress p;
  p.group_name = optional<std::string>(j, "group_name", "", "a progress report");
  p.current = required<std::int64_t>(j, "current", "a progress report");
  p.total = required<std::int64_t>(j, "total", "a progress report");
  p.status_line = optional<std::string>(j, "status_line", "", "a progress report");
  return p;
}

Json ArtifactInfo::to_json() const {
  return {{"id", id},     {"task_id", task_id}, {"name", name},
          {"size", size}, {"sha256", sha256},   {"created_at", created_at}};
}

void TaskOutput::validate() const {
  for (const auto& record : records) {
    if (record.level < 0) throw InvalidArgument("a log record's level must not be negative");
    if (record.created_at < 0) throw InvalidArgument("a log record's time must not be negative");
  }
  for (const auto& p : progress) {
    if (p.current < 0 || p.total < 0)
      throw InvalidArgument("progress must not be negative (current " + std::to_string(p.current) +
                            ", total " + std::to_string(p.total) + ")");
    if (p.group_name.size() > 1024) throw InvalidArgument("a progress group name is too long");
  }
  for (const auto& a : artifacts) {
    if (a.info.name.empty()) throw InvalidArgument("an artifact needs a name");
    if (a.info.name.size() > 1024) throw InvalidArgument("an artifact name is too long");
    if (static_cast<std::int64_t>(a.content.size()) > kMaxArtifactBytes)
      throw ArtifactTooLarge("artifact '" + a.info.name + "' is " +
                             std::to_string(a.content.size()) + " bytes; the limit is " +
                             std::to_string(kMaxArtifactBytes) + " bytes");
  }
}

}  // namespace taskengine
