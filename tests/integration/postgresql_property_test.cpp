#include <widget_consumer/destination/postgresql_table.hpp>

#include "support/postgresql_server.hpp"
#include "support/widget_model.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

// Random request streams applied to the PostgreSQL store (on the real server)
// and to a model written from DESIGN.md's semantics must give the same
// outcomes and the same widgets after every request; fenced, with
// duplicates and replays mixed in, the same widgets as the stream applied
// once, in order.

namespace widget_consumer {
namespace {

// The store keeps no attribute order: it loads them by name.
widget by_name(widget w) {
  std::sort(w.other_attributes.begin(), w.other_attributes.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  return w;
}

// Quotes, SQL and placeholders in ids, names and values: the store must
// pass them all as data.
testing::request_vocabulary sql_minded_words() {
  return {.ids = {"w0", "w1", "w'2", "8123f304-f23f"},
          .owners = {"Ann", "Mary Jo", "Bob Smith", "Zed"},
          .types = {"create", "update", "update", "delete"},
          .attribute_names = {"color", "width-unit", "a b",
                              "gr\xc3\xb6\xc3\x9f"
                              "e",
                              "SET", "$1", "x'); --"},
          .values = {"L", "x y", "caf\xc3\xa9 \"q\" \\ \n", "'; DROP TABLE widgets; --",
                     "\xe6\x97\xa5"},
          .creates_by_other_owners = true};
}

TEST(postgresql_property, random_request_streams_leave_the_store_equal_to_the_model) {
  testing::postgresql_database database;
  postgresql_table_store store({.connection = database.url(),
                                .user = database.server().user,
                                .password = database.server().password,
                                .pool_size = 2,
                                .create_schema = true});
  store.check_ready();
  auto session = database.session();
  std::size_t applied = 0, not_found = 0;
  for (unsigned seed = 1; seed <= 30; ++seed) {
    session.query("DELETE FROM widgets");
    testing::random_request_bodies gen{.random = std::mt19937(seed), .words = sql_minded_words()};
    testing::widget_model model;
    for (int step = 0; step < 150; ++step) {
      const std::string body = gen.next_body();
      SCOPED_TRACE("seed " + std::to_string(seed) + " step " + std::to_string(step) + ": " + body);
      auto parsed = parse_request(body);
      ASSERT_TRUE(std::holds_alternative<widget_request>(parsed))
          << std::get<validation_error>(parsed).message();
      const auto& r = std::get<widget_request>(parsed);
      const auto expected = model.apply(r);
      ASSERT_EQ(store.apply(r), expected);
      (expected == apply_outcome::applied ? applied : not_found) += 1;
      // The widget touched, and the table's size: together, after every
      // step, the whole store.
      const auto it = model.widgets.find(r.widget_id);
      ASSERT_EQ(store.load(r.widget_id),
                it == model.widgets.end() ? std::nullopt : std::optional(by_name(it->second)));
      ASSERT_EQ(session.scalar("SELECT count(*) FROM widgets"),
                std::to_string(model.widgets.size()));
    }
    for (const auto& [id, expected] : model.widgets)
      ASSERT_EQ(store.load(id), by_name(expected));
  }
  // Both paths exercised, or the property says little.
  EXPECT_GT(applied, 2200U);
  EXPECT_GT(not_found, 550U);
  EXPECT_EQ(session.scalar("SELECT count(*) FROM widget_attributes a WHERE NOT EXISTS "
                           "(SELECT 1 FROM widgets w WHERE w.id = a.widget_id)"),
            "0");
}

// The fence as position.hpp states it, beside the model: a request whose
// position is not after the widget's (one kind here, so plain string order)
// changes nothing; an applied one, a delete included, leaves its position.
struct fenced_model {
  testing::widget_model widgets;
  std::map<std::string, std::string> positions;

  apply_outcome apply(const widget_request& r, const std::string& position) {
    const auto stored = positions.find(r.widget_id);
    if (stored != positions.end() && !(position > stored->second))
      return apply_outcome::stale;
    const auto outcome = widgets.apply(r);
    if (outcome == apply_outcome::applied)
      positions[r.widget_id] = position;
    return outcome;
  }
};

TEST(postgresql_property, replays_and_duplicates_leave_the_fenced_store_as_the_stream_in_order) {
  testing::postgresql_database database;
  postgresql_table_store store({.connection = database.url(),
                                .user = database.server().user,
                                .password = database.server().password,
                                .pool_size = 2,
                                .create_schema = true,
                                .fencing = {},
                                .tombstone_clean_up_interval = std::chrono::minutes(10)});
  store.check_ready();
  auto session = database.session();
  std::size_t stale = 0, replays = 0;
  for (unsigned seed = 1; seed <= 20; ++seed) {
    session.query("DELETE FROM widgets");
    session.query("DELETE FROM widget_positions");
    testing::random_request_bodies gen{.random = std::mt19937(seed), .words = sql_minded_words()};
    std::vector<widget_request> stream;
    testing::widget_model once;  // each request exactly once, in order
    fenced_model model;
    auto position = [](std::size_t i) {
      const std::string digits = std::to_string(i);
      return s3_key_position(std::string(6 - digits.size(), '0') + digits);
    };
    auto deliver = [&](std::size_t i) {
      const auto& r = stream[i];
      const auto expected = model.apply(r, position(i));
      ASSERT_EQ(store.apply(r, position(i)).outcome, expected);
      stale += expected == apply_outcome::stale ? 1 : 0;
      const auto it = model.widgets.widgets.find(r.widget_id);
      ASSERT_EQ(store.load(r.widget_id), it == model.widgets.widgets.end()
                                             ? std::nullopt
                                             : std::optional(by_name(it->second)));
    };
    for (std::size_t step = 0; step < 120; ++step) {
      const std::string body = gen.next_body();
      SCOPED_TRACE("seed " + std::to_string(seed) + " step " + std::to_string(step) + ": " + body);
      auto parsed = parse_request(body);
      ASSERT_TRUE(std::holds_alternative<widget_request>(parsed))
          << std::get<validation_error>(parsed).message();
      stream.push_back(std::get<widget_request>(parsed));
      once.apply(stream.back());
      deliver(step);
      // A duplicate (the same position) or a replay of an older request.
      while (gen.chance(0.4)) {
        const std::size_t again = gen.below(step + 1);
        SCOPED_TRACE("again: step " + std::to_string(again));
        deliver(again);
        ++replays;
      }
    }
    ASSERT_EQ(session.scalar("SELECT count(*) FROM widgets"), std::to_string(once.widgets.size()));
    for (const auto& [id, expected] : once.widgets)
      ASSERT_EQ(store.load(id), by_name(expected));
  }
  // Replays that were refused, not merely found missing.
  RecordProperty("replays", std::to_string(replays));
  RecordProperty("stale", std::to_string(stale));
  EXPECT_GT(replays, 1200U);
  EXPECT_GT(stale, 900U);
}

}  // namespace
}  // namespace widget_consumer
