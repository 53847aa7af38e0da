#include "taskengine/time.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace taskengine {

Micros now_micros() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

std::string format_iso8601(Micros t) {
  std::time_t seconds = static_cast<std::time_t>(t / 1'000'000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<long long>(t % 1'000'000));
  return buffer;
}

}  // namespace taskengine
