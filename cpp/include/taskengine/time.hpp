#pragma once

#include <cstdint>
#include <string>

namespace taskengine {

// Timestamps are microseconds since the Unix epoch, UTC, everywhere in the
// core and in the store: one integer, cheap to compare, the same on both
// backends.
using Micros = std::int64_t;

Micros now_micros();
// ISO 8601 with a "Z" suffix, for logs and the CLI.
std::string format_iso8601(Micros t);

}  // namespace taskengine
