#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace taskengine {

// Wake-up topics: a worker listens to its type's topic (new startable work)
// and its own (cancel requests for its tasks), so a wake-up reaches only the
// workers that can act on it.
inline std::string type_topic(const std::string& worker_type) { return "t-" + worker_type; }

// Worker names are free text; the topic carries a stable hash (FNV-1a, the
// same in every process and on every host) so it fits a channel or file name.
inline std::string worker_topic(const std::string& worker_name) {
  std::uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : worker_name) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
  return std::string("w-") + hex;
}

}  // namespace taskengine
