// The session under the store, on every backend: statements sent ahead run
// in order with the next statement that waits (on PostgreSQL in one
// pipeline), a failure anywhere in a transaction leaves nothing written and
// the session usable, notifications arrive on commit only, and a lost
// connection is a ConnectionError.
#include "store/sql/sql_session.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "store/session_factory.hpp"
#include "support/test_stores.hpp"
#include "taskengine/errors.hpp"

namespace taskengine::sql {
namespace {

using std::chrono::milliseconds;

class SessionTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    store_ = testing::make_test_store(GetParam());
    if (!store_) GTEST_SKIP() << "PostgreSQL is not reachable";
    session_ = open_session(store_->url());
    session_->execute_script("CREATE TABLE probe (k BIGINT PRIMARY KEY, v TEXT NOT NULL)");
  }

  bool postgres() const { return GetParam() == "postgresql"; }

  // Read through a session of its own: only committed rows.
  std::int64_t committed_rows() {
    auto reader = open_session(store_->url());
    return reader->query("SELECT COUNT(*) FROM probe").at(0).integer(0);
  }

  Pending insert(std::int64_t k, const std::string& v = "x") {
    return session_->send("INSERT INTO probe (k, v) VALUES ($1, $2)", {k, v});
  }

  std::unique_ptr<testing::TestStore> store_;
  std::unique_ptr<Session> session_;
};

TEST_P(SessionTest, StatementsSentAheadRunInOrderBeforeTheNextWait) {
  Transaction txn(*session_, true);
  Pending first = insert(1);
  Pending second = session_->send("UPDATE probe SET v = 'y' WHERE k = $1", {std::int64_t{1}});
  Rows rows = session_->query("SELECT k, v FROM probe");
  ASSERT_TRUE(first.ready());
  ASSERT_TRUE(second.ready());
  EXPECT_EQ(first.affected(), 1);
  EXPECT_EQ(second.affected(), 1);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].text(1), "y");
  EXPECT_EQ(committed_rows(), 0);
  txn.commit();
  EXPECT_EQ(committed_rows(), 1);
}

TEST_P(SessionTest, ReturnedRowsOfAStatementSentAheadArriveWithCommit) {
  Transaction txn(*session_, true);
  Pending returned =
      session_->send("INSERT INTO probe (k, v) VALUES ($1, 'x') RETURNING k", {std::int64_t{7}});
  txn.commit();
  ASSERT_EQ(returned.rows().size(), 1u);
  EXPECT_EQ(returned.rows()[0].integer(0), 7);
}

TEST_P(SessionTest, AFailingStatementSentAheadLeavesNothingWritten) {
  EXPECT_THROW(
      {
        Transaction txn(*session_, true);
        insert(1);
        insert(1);  // duplicate key: fails (on PostgreSQL, at COMMIT)
        insert(2);
        txn.commit();
      },
      StoreError);
  EXPECT_EQ(committed_rows(), 0);
  // The session goes on: the next transaction commits.
  Transaction txn(*session_, true);
  insert(3);
  txn.commit();
  EXPECT_EQ(committed_rows(), 1);
}

TEST_P(SessionTest, AFailedQueryRollsBackWhatWasSentBeforeIt) {
  EXPECT_THROW(
      {
        Transaction txn(*session_, true);
        insert(1);
        session_->query("SELECT no_such_column FROM probe");
        txn.commit();
      },
      StoreError);
  EXPECT_EQ(committed_rows(), 0);
  EXPECT_EQ(session_->query("SELECT COUNT(*) FROM probe").at(0).integer(0), 0);
}

TEST_P(SessionTest, AStatementFirstSentBehindAFailureIsPreparedAgain) {
  const std::string fresh = "INSERT INTO probe (k, v) VALUES ($1, 'fresh')";
  EXPECT_THROW(
      {
        Transaction txn(*session_, true);
        insert(1);
        insert(1);
        // Never prepared on PostgreSQL: skipped after the failure before it.
        session_->send(fresh, {std::int64_t{2}});
        txn.commit();
      },
      StoreError);
  Transaction txn(*session_, true);
  session_->send(fresh, {std::int64_t{2}});
  txn.commit();
  EXPECT_EQ(committed_rows(), 1);
}

TEST_P(SessionTest, AFailureInCodeBetweenSendAndWaitRollsBack) {
  try {
    Transaction txn(*session_, true);
    insert(1);
    throw InvalidArgument("the caller gave up");
  } catch (const InvalidArgument&) {
  }
  EXPECT_EQ(committed_rows(), 0);
  EXPECT_EQ(session_->query("SELECT COUNT(*) FROM probe").at(0).integer(0), 0);
}

TEST_P(SessionTest, OutsideATransactionSendCommitsAtOnce) {
  Pending done = insert(1);
  EXPECT_TRUE(done.ready());
  EXPECT_EQ(committed_rows(), 1);
}

TEST_P(SessionTest, ScriptsMayHoldSeveralStatementsInsideATransaction) {
  {
    Transaction txn(*session_, true);
    insert(1);
    session_->execute_script(
        "INSERT INTO probe (k, v) VALUES (2, 'a'); INSERT INTO probe (k, v) VALUES (3, 'b')");
    insert(4);
    txn.commit();
  }
  EXPECT_EQ(committed_rows(), 4);
  EXPECT_THROW(
      {
        Transaction txn(*session_, true);
        insert(5);
        session_->execute_script("INSERT INTO probe (k, v) VALUES (6, 'a'); SELECT nothing");
        txn.commit();
      },
      StoreError);
  EXPECT_EQ(committed_rows(), 4);
  insert(7);  // the session goes on, sending ahead again
  EXPECT_EQ(committed_rows(), 5);
}

TEST_P(SessionTest, ManyLargeStatementsInOneTransaction) {
  // Far more than the socket buffers hold, in both directions.
  const std::string large(64 * 1024, 'p');
  Transaction txn(*session_, true);
  std::vector<Pending> sent;
  for (std::int64_t k = 0; k < 300; ++k)
    sent.push_back(
        session_->send("INSERT INTO probe (k, v) VALUES ($1, $2) RETURNING v", {k, large}));
  txn.commit();
  for (const auto& pending : sent) EXPECT_EQ(pending.rows().at(0).text(0).size(), large.size());
  EXPECT_EQ(committed_rows(), 300);
}

TEST_P(SessionTest, NotificationsArriveOnCommitOnly) {
  auto listener = session_->listen({"probe"});
  {
    Transaction txn(*session_, true);
    session_->notify("probe");
    insert(1);
    session_->flush();
    EXPECT_FALSE(listener->wait(milliseconds(100)));
    txn.commit();
  }
  EXPECT_TRUE(listener->wait(milliseconds(5000)));
  {
    Transaction txn(*session_, true);
    session_->notify("probe");
    insert(2);
  }  // rolled back
  EXPECT_FALSE(listener->wait(milliseconds(200)));
}

TEST_P(SessionTest, ALostConnectionIsAConnectionError) {
  if (!postgres()) GTEST_SKIP() << "an SQLite file has no connection to lose";
  auto admin = open_session(store_->url());
  auto kill_session = [&] {
    std::int64_t pid = session_->query("SELECT pg_backend_pid()").at(0).integer(0);
    admin->execute("SELECT pg_terminate_backend($1)", {pid});
  };
  kill_session();
  EXPECT_THROW(session_->query("SELECT 1"), ConnectionError);
  // The next call connects again, with its statements prepared afresh.
  insert(1);
  EXPECT_EQ(committed_rows(), 1);

  EXPECT_THROW(
      {
        Transaction txn(*session_, true);
        insert(2);
        kill_session();  // a query: the insert before it ran, uncommitted
        insert(3);
        txn.commit();
      },
      ConnectionError);
  EXPECT_EQ(committed_rows(), 1);
  Transaction txn(*session_, true);  // a new transaction, on a new connection
  insert(4);
  txn.commit();
  EXPECT_EQ(committed_rows(), 2);
}

INSTANTIATE_TEST_SUITE_P(Backends, SessionTest, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace taskengine::sql
