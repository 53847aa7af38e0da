// ArrayParam: PostgreSQL array literals built element by element. The
// round trip through the server is in store_dispatch_test (names and
// payloads with every special character).
#include "store/sql/array_param.hpp"

#include <gtest/gtest.h>

namespace taskengine::sql {
namespace {

TEST(ArrayParam, QuotesTextAndEscapesQuotesAndBackslashes) {
  ArrayParam array;
  array.add_text("plain");
  array.add_text(R"(say "hi")");
  array.add_text(R"(back\slash)");
  array.add_text("{,} NULL");
  array.add_text("");
  EXPECT_EQ(array.size(), 5u);
  EXPECT_EQ(array.take(), R"({"plain","say \"hi\"","back\\slash","{,} NULL",""})");
}

TEST(ArrayParam, IntegersAndNullsAreBare) {
  ArrayParam array;
  array.add_integer(-9223372036854775807 - 1);
  array.add_null();
  array.add_optional(std::optional<std::int64_t>(42));
  array.add_optional(std::optional<std::int64_t>());
  EXPECT_EQ(array.take(), "{-9223372036854775808,NULL,42,NULL}");
}

TEST(ArrayParam, TakeStartsAnEmptyArray) {
  ArrayParam array;
  EXPECT_EQ(array.take(), "{}");
  array.add_integer(1);
  EXPECT_EQ(array.take(), "{1}");
  EXPECT_EQ(array.size(), 0u);
  array.add_integer(2);
  EXPECT_EQ(array.take(), "{2}");
}

}  // namespace
}  // namespace taskengine::sql
