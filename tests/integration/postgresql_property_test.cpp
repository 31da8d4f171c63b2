#include <widget_consumer/destination/postgresql_table.hpp>

#include "support/postgresql_server.hpp"
#include "support/widget_model.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

// Random request streams applied to the PostgreSQL store (on the real server)
// and to a model written from DESIGN.md's semantics must give the same
// outcomes and the same widgets after every request.

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

}  // namespace
}  // namespace widget_consumer
