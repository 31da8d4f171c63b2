#include <widget_consumer/destination/postgresql_table.hpp>

#include "support/postgresql_server.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

// The PostgreSQL store's fence (position.hpp) against the real server of the
// CTest fixture: replays, late creates, not_found, kinds, byte order,
// fencing off, the tombstones' clean-up and lanes racing one widget. What is
// compared is what the tables hold, all three of them.

namespace widget_consumer {
namespace {

using testing::postgresql_database;
using rows = std::vector<std::vector<std::string>>;

static_assert(position_fencing<postgresql_table_store>);

std::string at(int n) {
  std::string digits = std::to_string(n);
  return s3_key_position("requests/" + std::string(6 - digits.size(), '0') + digits + ".json");
}

widget_request request(request_type type, std::string id, std::string owner = "Sue Smith") {
  return {.type = type,
          .request_id = "r-" + id,
          .widget_id = std::move(id),
          .owner = std::move(owner),
          .label = std::nullopt,
          .description = std::nullopt,
          .other_attributes = {},
          .unknown_fields = {}};
}

widget_request create(std::string id, std::string label, std::string owner = "Sue Smith") {
  auto r = request(request_type::create, std::move(id), std::move(owner));
  r.label = std::move(label);
  r.description = "A widget that spins";
  r.other_attributes = {{"width", "12"}, {"color", "red"}};
  return r;
}

widget_request update(std::string id, std::string label, std::string owner = "Sue Smith") {
  auto r = request(request_type::update, std::move(id), std::move(owner));
  r.label = std::move(label);
  r.other_attributes = {{"color", ""}, {"size", "L"}};
  return r;
}

widget_request remove(std::string id, std::string owner = "Sue Smith") {
  return request(request_type::remove, std::move(id), std::move(owner));
}

class postgresql_fencing_test : public ::testing::Test {
 protected:
  postgresql_store_options options(bool fencing = true, bool create_schema = true) const {
    return {.connection = database_.url(),
            .user = database_.server().user,
            .password = database_.server().password,
            .pool_size = 4,
            .create_schema = create_schema,
            .fencing = {.enabled = fencing, .tombstone_retention = std::chrono::seconds(60)},
            .tombstone_clean_up_interval = std::chrono::hours(1)};
  }

  postgresql_table_store& store() {
    if (!store_) {
      store_.emplace(options());
      store_->check_ready();
    }
    return *store_;
  }

  // Every row of the three tables, in a fixed order (deleted_at as set or
  // not: its value is the clock's).
  rows tables() {
    auto session = database_.session();
    rows all = session.query("SELECT 'widgets', * FROM widgets ORDER BY id COLLATE \"C\"");
    for (auto& row : session.query("SELECT 'widget_attributes', * FROM widget_attributes "
                                   "ORDER BY widget_id COLLATE \"C\", name COLLATE \"C\""))
      all.push_back(std::move(row));
    if (has_positions_table())
      for (auto& row : session.query("SELECT 'widget_positions', widget_id, position, "
                                     "deleted_at IS NOT NULL FROM widget_positions "
                                     "ORDER BY widget_id COLLATE \"C\""))
        all.push_back(std::move(row));
    return all;
  }

  bool has_positions_table() {
    return database_.session().scalar("SELECT to_regclass('widget_positions') IS NOT NULL") == "t";
  }

  // {position, "t" for a tombstone}, or empty when the widget has no row.
  std::vector<std::string> position_row(const std::string& id) {
    const auto found = database_.session().query(
        "SELECT position, deleted_at IS NOT NULL FROM widget_positions WHERE widget_id = '" + id +
        "'");
    return found.empty() ? std::vector<std::string>{} : found.at(0);
  }

  postgresql_database database_;
  std::optional<postgresql_table_store> store_;
};

void expect_stale(const fenced_outcome& outcome, const std::string& stored) {
  EXPECT_EQ(outcome.outcome, apply_outcome::stale);
  EXPECT_EQ(outcome.stored_position, stored);
}

TEST_F(postgresql_fencing_test,
       a_replay_at_an_older_or_equal_position_is_stale_and_changes_nothing) {
  ASSERT_EQ(store().apply(create("w-1", "first"), at(1)).outcome, apply_outcome::applied);
  ASSERT_EQ(store().apply(update("w-1", "third"), at(3)).outcome, apply_outcome::applied);
  const rows before = tables();
  expect_stale(store().apply(create("w-1", "first"), at(1)), at(3));  // replayed
  expect_stale(store().apply(update("w-1", "third"), at(3)), at(3));  // delivered twice
  expect_stale(store().apply(update("w-1", "second"), at(2)), at(3));
  expect_stale(store().apply(remove("w-1"), at(2)), at(3));
  EXPECT_EQ(tables(), before);
  EXPECT_EQ(store().load("w-1")->label, "third");
  // A delete's replay is stale too, not "not found".
  ASSERT_EQ(store().apply(remove("w-1"), at(4)).outcome, apply_outcome::applied);
  const rows deleted = tables();
  expect_stale(store().apply(remove("w-1"), at(4)), at(4));
  expect_stale(store().apply(update("w-1", "third"), at(3)), at(4));
  EXPECT_EQ(tables(), deleted);
}

TEST_F(postgresql_fencing_test, a_request_that_fails_midway_leaves_neither_widget_nor_position) {
  // The statements go in one round trip (detail/postgresql_pipeline.hpp):
  // a failure among them must still undo the fence's advance with them.
  ASSERT_EQ(store().apply(create("w-1", "first"), at(1)).outcome, apply_outcome::applied);
  const rows before = tables();
  for (auto type : {request_type::create, request_type::update}) {
    auto failing = type == request_type::create ? create("w-1", "second") : update("w-1", "second");
    // Over the index's limit, and not compressible below it.
    const std::string name = testing::incompressible_text(100 * 1024);
    failing.other_attributes = {{name, "v"}};
    try {
      store().apply(failing, at(2));
      ADD_FAILURE() << "a 100 KB attribute name was accepted";
    } catch (const store_error& e) {
      EXPECT_EQ(e.failure(), store_failure::bad_request) << e.what();
    }
    EXPECT_TRUE(tables() == before) << "the failed request changed the tables";
  }
  // The pool goes on with fresh connections.
  EXPECT_EQ(store().apply(update("w-1", "second"), at(2)).outcome, apply_outcome::applied);
  EXPECT_EQ(position_row("w-1"), (std::vector<std::string>{at(2), "f"}));
}

TEST_F(postgresql_fencing_test, a_late_create_after_a_delete_is_refused_and_a_newer_one_applies) {
  store().apply(create("w-1", "first"), at(1));
  ASSERT_EQ(store().apply(remove("w-1"), at(3)).outcome, apply_outcome::applied);
  EXPECT_EQ(position_row("w-1"), (std::vector<std::string>{at(3), "t"}));  // the tombstone
  const rows deleted = tables();
  expect_stale(store().apply(create("w-1", "late"), at(2)), at(3));
  EXPECT_EQ(store().load("w-1"), std::nullopt);
  EXPECT_EQ(tables(), deleted);
  ASSERT_EQ(store().apply(create("w-1", "newer"), at(4)).outcome, apply_outcome::applied);
  EXPECT_EQ(store().load("w-1")->label, "newer");
  EXPECT_EQ(position_row("w-1"), (std::vector<std::string>{at(4), "f"}));
}

TEST_F(postgresql_fencing_test, not_found_does_not_advance_the_position) {
  store().apply(create("w-1", "first"), at(1));
  const rows before = tables();
  EXPECT_EQ(store().apply(update("w-1", "taken", "Bob"), at(5)).outcome, apply_outcome::not_found);
  EXPECT_EQ(store().apply(remove("w-1", "Bob"), at(6)).outcome, apply_outcome::not_found);
  EXPECT_EQ(store().apply(update("w-2", "none"), at(5)).outcome, apply_outcome::not_found);
  EXPECT_EQ(store().apply(remove("w-3"), at(5)).outcome, apply_outcome::not_found);
  EXPECT_EQ(tables(), before);  // no position moved, none was left behind
  // Positions between the stored one and the not-found ones still apply.
  EXPECT_EQ(store().apply(update("w-1", "second"), at(3)).outcome, apply_outcome::applied);
  EXPECT_EQ(store().apply(create("w-2", "second"), at(2)).outcome, apply_outcome::applied);
  EXPECT_EQ(store().load("w-1")->label, "second");
  EXPECT_EQ(position_row("w-1"), (std::vector<std::string>{at(3), "f"}));
  EXPECT_EQ(position_row("w-2"), (std::vector<std::string>{at(2), "f"}));
}

TEST_F(postgresql_fencing_test, a_position_of_another_kind_applies) {
  store().apply(create("w-1", "s3"), s3_key_position("zzz"));
  // "fifo:" sorts before "s3:", but kinds do not compare.
  EXPECT_EQ(store().apply(update("w-1", "fifo"), fifo_position("7")).outcome,
            apply_outcome::applied);
  EXPECT_EQ(store().apply(update("w-1", "dir"), file_position("b.json")).outcome,
            apply_outcome::applied);
  expect_stale(store().apply(update("w-1", "older dir"), file_position("a.json")),
               file_position("b.json"));
  // No ':' at all is a kind of its own, the empty one, and compares within it.
  EXPECT_EQ(store().apply(update("w-1", "bare"), "m").outcome, apply_outcome::applied);
  expect_stale(store().apply(update("w-1", "older bare"), "l"), "m");
  EXPECT_EQ(store().apply(update("w-1", "fifo again"), fifo_position("7")).outcome,
            apply_outcome::applied);
  EXPECT_EQ(store().load("w-1")->label, "fifo again");
}

// Bytes, as moves_forward() compares them, whatever the column's collation:
// under a linguistic one "s3:B" follows "s3:a" and "s3:é" precedes "s3:z".
TEST_F(postgresql_fencing_test, positions_compare_bytewise_whatever_the_collation) {
  auto session = database_.session();
  const bool icu =
      session.scalar("SELECT count(*) FROM pg_collation WHERE collname = 'und-x-icu'") == "1";
  session.query(std::string("CREATE TABLE widget_positions (widget_id text PRIMARY KEY, "
                            "position text ") +
                (icu ? "COLLATE \"und-x-icu\" " : "") + "NOT NULL, deleted_at timestamptz)");
  const std::vector<std::string> positions = {"s3:a", "s3:B", "s3:\xc3\xa9", "s3:z",   "s3:a0",
                                              "s3:a", "s3:~", "s3:\xc3\xa9", "s3:\x7f"};
  std::string stored;
  for (std::size_t i = 0; i < positions.size(); ++i) {
    const auto outcome = store().apply(create("w-1", std::to_string(i)), positions[i]);
    const bool forward = moves_forward(positions[i], stored);
    EXPECT_EQ(outcome.outcome, forward ? apply_outcome::applied : apply_outcome::stale)
        << positions[i] << " over " << stored;
    if (forward)
      stored = positions[i];
  }
  EXPECT_EQ(position_row("w-1"), (std::vector<std::string>{"s3:\xc3\xa9", "f"}));
}

TEST_F(postgresql_fencing_test, fencing_off_keeps_the_course_tables_and_replays_apply) {
  postgresql_table_store unfenced(options(false));
  unfenced.check_ready();
  EXPECT_FALSE(has_positions_table());
  EXPECT_EQ(unfenced.apply(create("w-1", "newer"), at(2)).outcome, apply_outcome::applied);
  EXPECT_EQ(unfenced.apply(create("w-1", "older"), at(1)).outcome, apply_outcome::applied);
  EXPECT_EQ(unfenced.load("w-1")->label, "older");  // moved backwards: what the fence stops
  EXPECT_EQ(unfenced.apply(remove("w-1"), at(3)).outcome, apply_outcome::applied);
  EXPECT_EQ(unfenced.apply(create("w-1", "late"), at(2)).outcome, apply_outcome::applied);
  EXPECT_FALSE(has_positions_table());
  // A database with only the course's tables is ready for it.
  postgresql_table_store(options(false, false)).check_ready();
}

TEST_F(postgresql_fencing_test, check_ready_requires_widget_positions_or_creates_it) {
  const std::string columns_sql =
      "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
      "WHERE table_schema = current_schema() AND table_name <> 'widget_positions' "
      "ORDER BY table_name, column_name";
  postgresql_table_store(options(false)).check_ready();
  const rows course = database_.session().query(columns_sql);
  try {
    postgresql_table_store(options(true, false)).check_ready();
    FAIL() << "no widget_positions, yet ready";
  } catch (const unrecoverable_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("widget_positions.widget_id is missing"), std::string::npos) << what;
    EXPECT_NE(what.find("--no-fencing"), std::string::npos) << what;
    EXPECT_NE(what.find("CREATE TABLE IF NOT EXISTS widget_positions (widget_id text PRIMARY KEY"),
              std::string::npos)
        << what;
  }
  database_.session().query(
      "CREATE TABLE widget_positions (widget_id text PRIMARY KEY, position integer NOT NULL, "
      "deleted_at timestamptz)");
  try {
    postgresql_table_store(options(true, true)).check_ready();
    FAIL() << "an integer position passed";
  } catch (const unrecoverable_error& e) {
    EXPECT_NE(std::string(e.what()).find("widget_positions.position is integer, not text"),
              std::string::npos)
        << e.what();
  }
  database_.session().query("DROP TABLE widget_positions");
  postgresql_table_store(options(true, true)).check_ready();
  postgresql_table_store(options(true, false)).check_ready();
  EXPECT_TRUE(has_positions_table());
  EXPECT_EQ(database_.session().query(columns_sql), course);  // the course's columns, unchanged
}

TEST_F(postgresql_fencing_test, the_clean_up_removes_only_tombstones_older_than_the_retention) {
  for (const std::string id : {"w-old", "w-new", "w-live"})
    store().apply(create(id, "first"), at(1));
  store().apply(remove("w-old"), at(3));
  store().apply(remove("w-new"), at(3));
  auto session = database_.session();
  // Past the 60 s retention: w-old, and w-live's row, which is no tombstone.
  session.query(
      "UPDATE widget_positions SET deleted_at = now() - interval '61 seconds' "
      "WHERE widget_id = 'w-old'");
  session.query("UPDATE widget_positions SET deleted_at = NULL WHERE widget_id = 'w-live'");
  postgresql_table_store(options()).check_ready();
  EXPECT_EQ(position_row("w-old"), std::vector<std::string>{});
  EXPECT_EQ(position_row("w-new"), (std::vector<std::string>{at(3), "t"}));
  EXPECT_EQ(position_row("w-live"), (std::vector<std::string>{at(1), "f"}));
  // What the retention is for: past it, a replayed create comes back.
  EXPECT_EQ(store().apply(create("w-old", "replayed"), at(2)).outcome, apply_outcome::applied);
  expect_stale(store().apply(create("w-new", "replayed"), at(2)), at(3));

  // Between two check_ready()s, the first fenced apply once the interval is
  // out cleans up, whichever widget it is for.
  auto every_time = options();
  every_time.tombstone_clean_up_interval = std::chrono::seconds(0);
  postgresql_table_store cleaning(every_time);
  session.query(
      "UPDATE widget_positions SET deleted_at = now() - interval '61 seconds' "
      "WHERE widget_id = 'w-new'");
  EXPECT_EQ(cleaning.apply(update("w-live", "second"), at(2)).outcome, apply_outcome::applied);
  EXPECT_EQ(position_row("w-new"), std::vector<std::string>{});
  EXPECT_EQ(session.scalar("SELECT count(*) FROM widget_positions"), "2");
}

// Lanes of several consumers racing one widget: each lane's positions rise
// (a random share of 1..160 each, as a partition handed over while its old
// owner still works would give), so their checks keep meeting at the top.
// The row lock of the position orders them: the widget ends as the greatest
// position's request left it, whoever committed last. A compare made
// before the lock (read, then write) lets a lower position overwrite it.
TEST_F(postgresql_fencing_test, lanes_racing_one_widget_end_at_the_greatest_positions_state) {
  constexpr int lanes = 4, each = 40, rounds = 6;
  std::mt19937 random(7);
  store();
  for (int round = 0; round < rounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const std::string id = "w-" + std::to_string(round);
    std::vector<int> numbers(lanes * each);
    for (int i = 0; i < lanes * each; ++i)
      numbers[static_cast<std::size_t>(i)] = i + 1;
    std::shuffle(numbers.begin(), numbers.end(), random);
    for (int lane = 0; lane < lanes; ++lane)
      std::sort(numbers.begin() + lane * each, numbers.begin() + (lane + 1) * each);
    std::atomic<int> applied{0}, stale{0};
    std::vector<std::thread> threads;
    for (int lane = 0; lane < lanes; ++lane)
      threads.emplace_back([&, lane] {
        for (int i = 0; i < each; ++i) {
          const int n = numbers[static_cast<std::size_t>(lane * each + i)];
          auto r = create(id, std::to_string(n));
          r.other_attributes.push_back({"lane", std::to_string(lane)});
          const auto outcome = store().apply(r, at(n)).outcome;
          (outcome == apply_outcome::applied ? applied : stale) += 1;
        }
      });
    for (auto& thread : threads)
      thread.join();
    EXPECT_EQ(applied + stale, lanes * each);
    const auto last = std::find(numbers.begin(), numbers.end(), lanes * each) - numbers.begin();
    EXPECT_EQ(store().load(id), (widget{.widget_id = id,
                                        .owner = "Sue Smith",
                                        .label = std::to_string(lanes * each),
                                        .description = "A widget that spins",
                                        .other_attributes = {{"color", "red"},
                                                             {"lane", std::to_string(last / each)},
                                                             {"width", "12"}}}));
    EXPECT_EQ(position_row(id), (std::vector<std::string>{at(lanes * each), "f"}));
  }
}

}  // namespace
}  // namespace widget_consumer
