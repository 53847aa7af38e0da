#include "taskengine/store_url.hpp"

#include <gtest/gtest.h>

#include "taskengine/errors.hpp"
#include "taskengine/store.hpp"

namespace taskengine {
namespace {

TEST(StoreUrl, ParsesBothBackends) {
  auto abs = StoreUrl::parse("sqlite:///var/lib/te.db");
  EXPECT_EQ(abs.backend, StoreUrl::Backend::Sqlite);
  EXPECT_EQ(abs.sqlite_path, "/var/lib/te.db");
  EXPECT_EQ(StoreUrl::parse("sqlite:///./te.db").sqlite_path, "./te.db");
  auto pg = StoreUrl::parse("postgresql://postgres@127.0.0.1:5432/db");
  EXPECT_EQ(pg.backend, StoreUrl::Backend::Postgres);
  EXPECT_EQ(StoreUrl::parse("postgres://u@h/db").backend, StoreUrl::Backend::Postgres);
}

TEST(StoreUrl, RejectsWhatItCannotOpen) {
  EXPECT_THROW(StoreUrl::parse(""), InvalidUrl);
  EXPECT_THROW(StoreUrl::parse("mysql://root@localhost/db"), InvalidUrl);
  EXPECT_THROW(StoreUrl::parse("sqlite://relative.db"), InvalidUrl);
  EXPECT_THROW(StoreUrl::parse("sqlite:///"), InvalidUrl);
  EXPECT_THROW(StoreUrl::parse("/just/a/path.db"), InvalidUrl);
}

TEST(StoreUrl, UnreachableDatabaseIsAConnectionError) {
  EXPECT_THROW(open_store("postgresql://postgres@127.0.0.1:1/none?connect_timeout=2"),
               ConnectionError);
  EXPECT_THROW(open_store("sqlite:///nonexistent-dir-xyz/sub/te.db"), ConnectionError);
}

}  // namespace
}  // namespace taskengine
