#pragma once

#include <string>
#include <vector>

namespace taskengine::schema {

// One migration: the SQL that takes the schema from version-1 to version.
// Migrations only ever get appended; an installed schema is upgraded by
// running the ones above its recorded version, each in its own transaction.
struct Migration {
  int version;
  std::string description;
  std::vector<std::string> statements;
};

const std::vector<Migration>& sqlite_migrations();
const std::vector<Migration>& postgres_migrations();

// Tables the engine owns, children before parents (the order uninstall()
// drops them in).
const std::vector<std::string>& owned_tables();

int latest_version();

}  // namespace taskengine::schema
