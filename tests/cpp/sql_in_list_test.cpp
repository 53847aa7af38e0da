// padded_in_list: IN lists padded to a power of two, so the statement caches
// (the session's, and PostgreSQL's prepared statements) stay small.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "store/sql/sql_session.hpp"
#include "taskengine/errors.hpp"

namespace taskengine::sql {
namespace {

TEST(PaddedInList, PadsTheTrailingListWithItsLastValue) {
  Params params{std::string("head"), std::int64_t{7}, std::int64_t{8}, std::int64_t{9}};
  EXPECT_EQ(padded_in_list(params, 3), "$2, $3, $4, $5");
  ASSERT_EQ(params.size(), 5u);
  EXPECT_EQ(std::get<std::int64_t>(params[4]), 9);
  EXPECT_EQ(std::get<std::string>(params[0]), "head");
}

TEST(PaddedInList, APowerOfTwoIsLeftAsItIs) {
  Params one{std::int64_t{1}};
  EXPECT_EQ(padded_in_list(one, 1), "$1");
  EXPECT_EQ(one.size(), 1u);
  Params four{std::int64_t{1}, std::int64_t{2}, std::int64_t{3}, std::int64_t{4}};
  EXPECT_EQ(padded_in_list(four, 4), "$1, $2, $3, $4");
  EXPECT_EQ(four.size(), 4u);
}

TEST(PaddedInList, EveryLengthUpToAThousandGivesOneOfElevenTexts) {
  std::set<std::string> texts;
  for (std::size_t n = 1; n <= 1000; ++n) {
    Params params(n, Value(std::int64_t{1}));
    texts.insert(padded_in_list(params, n));
  }
  EXPECT_EQ(texts.size(), 11u);  // 1, 2, 4, ..., 1024
}

TEST(PaddedInList, RefusesAListThatIsNotThere) {
  Params params{std::int64_t{1}};
  EXPECT_THROW(padded_in_list(params, 0), InvalidArgument);
  EXPECT_THROW(padded_in_list(params, 2), InvalidArgument);
}

}  // namespace
}  // namespace taskengine::sql
