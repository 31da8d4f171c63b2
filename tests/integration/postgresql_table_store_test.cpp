#include <widget_consumer/destination/postgresql_table.hpp>

#include "support/postgresql_server.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <vector>

// The PostgreSQL store against the real server of the CTest fixture: the
// semantics of DESIGN.md, hostile text, the start-up check, and failures.

namespace widget_consumer {
namespace {

using testing::postgresql_database;

static_assert(widget_store<postgresql_table_store>);
static_assert(startup_checking<postgresql_table_store>);

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

widget_request create(std::string id, std::string owner = "Sue Smith") {
  auto r = request(request_type::create, std::move(id), std::move(owner));
  r.label = "Spinner";
  r.description = "A widget that spins";
  r.other_attributes = {{"width", "12"}, {"width-unit", "cm"}, {"color", "red"}};
  return r;
}

class postgresql_table_store_test : public ::testing::Test {
 protected:
  postgresql_store_options options(bool create_schema = true) const {
    return {.connection = database_.url(),
            .user = database_.server().user,
            .password = database_.server().password,
            .pool_size = 4,
            .create_schema = create_schema};
  }

  postgresql_table_store& store() {
    if (!store_) {
      store_.emplace(options());
      store_->check_ready();
    }
    return *store_;
  }

  postgresql_database database_;
  std::optional<postgresql_table_store> store_;
};

TEST_F(postgresql_table_store_test, create_stores_the_widget_as_given) {
  auto r = create("w-1");
  r.description = "";  // data in a create
  r.other_attributes.push_back({"empty", ""});
  r.other_attributes.push_back({"skipped", std::nullopt});
  EXPECT_EQ(store().apply(r), apply_outcome::applied);
  const widget expected{
      .widget_id = "w-1",
      .owner = "Sue Smith",
      .label = "Spinner",
      .description = "",
      .other_attributes = {{"color", "red"}, {"empty", ""}, {"width", "12"}, {"width-unit", "cm"}}};
  EXPECT_EQ(store().load("w-1"), expected);
  // Absent and null are NULL, not "".
  auto bare = request(request_type::create, "w-2");
  EXPECT_EQ(store().apply(bare), apply_outcome::applied);
  EXPECT_EQ(database_.session().scalar("SELECT coalesce(label, '<null>') FROM widgets "
                                       "WHERE id = 'w-2'"),
            "<null>");
}

TEST_F(postgresql_table_store_test, a_second_create_replaces_the_widget_whoever_owned_it) {
  store().apply(create("w-1"));
  auto again = request(request_type::create, "w-1", "Bob");
  again.other_attributes = {{"size", "L"}};
  EXPECT_EQ(store().apply(again), apply_outcome::applied);
  EXPECT_EQ(store().load("w-1"), (widget{.widget_id = "w-1",
                                         .owner = "Bob",
                                         .label = std::nullopt,
                                         .description = std::nullopt,
                                         .other_attributes = {{"size", "L"}}}));
  EXPECT_EQ(database_.session().scalar("SELECT count(*) FROM widget_attributes"), "1");
}

TEST_F(postgresql_table_store_test, update_changes_only_what_it_mentions) {
  store().apply(create("w-1"));
  auto u = request(request_type::update, "w-1");
  u.label = "";                  // removes
  u.description = std::nullopt;  // leaves alone
  u.other_attributes = {
      {"width", ""}, {"color", "blue"}, {"size", "L"}, {"width-unit", std::nullopt}};
  EXPECT_EQ(store().apply(u), apply_outcome::applied);
  EXPECT_EQ(store().load("w-1"),
            (widget{.widget_id = "w-1",
                    .owner = "Sue Smith",
                    .label = std::nullopt,
                    .description = "A widget that spins",
                    .other_attributes = {{"color", "blue"}, {"size", "L"}, {"width-unit", "cm"}}}));
}

TEST_F(postgresql_table_store_test, update_and_delete_of_another_owner_or_no_widget_are_not_found) {
  store().apply(create("w-1"));
  auto u = request(request_type::update, "w-1", "SUE SMITH");
  u.label = "taken";
  EXPECT_EQ(store().apply(u), apply_outcome::not_found);
  EXPECT_EQ(store().apply(request(request_type::remove, "w-1", "Sue  Smith")),
            apply_outcome::not_found);
  EXPECT_EQ(store().apply(request(request_type::update, "w-9")), apply_outcome::not_found);
  EXPECT_EQ(store().apply(request(request_type::remove, "w-9")), apply_outcome::not_found);
  EXPECT_EQ(store().load("w-1")->label, "Spinner");
  // The connection a not_found rolled back on is as good as any.
  EXPECT_EQ(store().apply(request(request_type::remove, "w-1")), apply_outcome::applied);
  EXPECT_EQ(store().load("w-1"), std::nullopt);
  EXPECT_EQ(store().apply(request(request_type::remove, "w-1")), apply_outcome::not_found);
  EXPECT_EQ(database_.session().scalar("SELECT count(*) FROM widget_attributes"), "0");
}

TEST_F(postgresql_table_store_test, hostile_names_and_values_round_trip_exactly) {
  const std::string big(64 * 1024, 'x');
  const std::vector<std::string> texts = {
      "'; DROP TABLE widgets; --", "quote ' double \" back \\ slash \\\\",
      "$1 $2 %s %n {} ${x}",       "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80",
      "line\nbreak\ttab\r",        big + "\xc3\xa9"};
  auto r = request(request_type::create, "'; DROP TABLE widgets; --", "Robert Tables");
  r.label = texts[0];
  r.description = texts[5];
  for (std::size_t i = 0; i < texts.size(); ++i)
    r.other_attributes.push_back({"name " + std::to_string(i) + " " + texts[i % 5], texts[i]});
  ASSERT_EQ(store().apply(r), apply_outcome::applied);
  const auto loaded = store().load(r.widget_id);
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->widget_id, r.widget_id);
  ASSERT_EQ(loaded->other_attributes.size(), texts.size());
  EXPECT_EQ(loaded->label, texts[0]);
  EXPECT_EQ(loaded->description, texts[5]);
  for (std::size_t i = 0; i < texts.size(); ++i)
    EXPECT_EQ(loaded->other_attributes.at(i).value, texts[i]) << i;
  auto u = request(request_type::update, r.widget_id, "Robert Tables");
  u.other_attributes = {{"name 0 " + texts[0], ""}, {"name 1 " + texts[1], big}};
  ASSERT_EQ(store().apply(u), apply_outcome::applied);
  EXPECT_EQ(store().load(r.widget_id)->other_attributes.size(), texts.size() - 1);
  EXPECT_EQ(database_.session().scalar("SELECT count(*) FROM widgets"), "1");
}

TEST_F(postgresql_table_store_test, what_postgresql_cannot_store_is_a_bad_request) {
  auto nul = create("w-1");
  nul.label = std::string("a\0b", 3);
  try {
    store().apply(nul);
    FAIL() << "a NUL byte was accepted";
  } catch (const store_error& e) {
    EXPECT_EQ(e.failure(), store_failure::bad_request) << e.what();
  }
  auto long_name = create("w-2");
  // Over the index's limit, and not compressible below it.
  const std::string name = testing::incompressible_text(100 * 1024);
  long_name.other_attributes = {{name, "v"}};
  try {
    store().apply(long_name);
    FAIL() << "a 100 KB attribute name was accepted";
  } catch (const store_error& e) {
    EXPECT_EQ(e.failure(), store_failure::bad_request) << e.what();
  }
  EXPECT_EQ(store().load("w-2"), std::nullopt);  // rolled back, whole
}

TEST_F(postgresql_table_store_test, check_ready_requires_the_schema_or_creates_it) {
  postgresql_table_store checking(options(false));
  try {
    checking.check_ready();
    FAIL() << "no tables, yet ready";
  } catch (const unrecoverable_error& e) {
    EXPECT_NE(std::string(e.what()).find("widgets.id is missing"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--pdb-create-schema"), std::string::npos) << e.what();
  }
  postgresql_table_store creating(options(true));
  creating.check_ready();
  creating.check_ready();  // again: nothing to create
  checking.check_ready();
}

TEST_F(postgresql_table_store_test, check_ready_refuses_tables_of_another_shape) {
  database_.session().query(
      "CREATE TABLE widgets (id integer PRIMARY KEY, owner text, label text, description text)");
  try {
    postgresql_table_store(options(false)).check_ready();
    FAIL() << "an integer id passed";
  } catch (const unrecoverable_error& e) {
    EXPECT_NE(std::string(e.what()).find("widgets.id is integer, not text"), std::string::npos)
        << e.what();
  }
  try {
    postgresql_table_store(options(true)).check_ready();
    FAIL() << "an integer id passed";
  } catch (const unrecoverable_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot create the PostgreSQL widget tables"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(postgresql_table_store_test, a_refused_login_is_unrecoverable_and_never_shows_a_password) {
  const std::string secret = "s3cret-Pa55-word";
  auto wrong = options();
  wrong.password = secret;
  try {
    postgresql_table_store(wrong).check_ready();
    FAIL() << "a wrong password was accepted";
  } catch (const unrecoverable_error& e) {
    EXPECT_NE(std::string(e.what()).find("password authentication failed"), std::string::npos)
        << e.what();
    EXPECT_EQ(std::string(e.what()).find(secret), std::string::npos) << e.what();
  }
  // In the URI too, and in a connection string that libpq cannot parse.
  auto in_uri = options();
  in_uri.password.clear();
  in_uri.connection = "postgresql://" + database_.server().user + ":" + secret + "@" +
                      database_.url().substr(std::string("postgresql://").size());
  EXPECT_THROW(
      try { postgresql_table_store(in_uri).check_ready(); } catch (const std::exception& e) {
        EXPECT_EQ(std::string(e.what()).find(secret), std::string::npos) << e.what();
        throw;
      },
      unrecoverable_error);
  auto unparsable = options();
  unparsable.connection = "host=127.0.0.1 password=" + secret + " bogus_keyword=1";
  try {
    postgresql_table_store(unparsable).check_ready();
    FAIL() << "a bad connection string was accepted";
  } catch (const std::exception& e) {
    EXPECT_EQ(std::string(e.what()).find(secret), std::string::npos) << e.what();
  }
}

TEST_F(postgresql_table_store_test, an_unreachable_server_is_transient) {
  auto nowhere = options();
  nowhere.connection = "postgresql://127.0.0.1:1/widgets";
  try {
    postgresql_table_store(nowhere).apply(create("w-1"));
    FAIL() << "port 1 answered";
  } catch (const store_error& e) {
    EXPECT_TRUE(e.retryable()) << e.what();
  }
}

// A backend terminated while the store waits inside its transaction (for a
// row lock the test holds): the statement fails as a lost connection, and
// the store starts over on a fresh connection, so the update lands once.
TEST_F(postgresql_table_store_test, a_terminated_backend_is_retried_on_a_fresh_connection) {
  store().apply(create("w-1"));
  auto locker = database_.session();
  locker.query("BEGIN");
  locker.query("SELECT * FROM widgets WHERE id = 'w-1' FOR UPDATE");
  auto u = request(request_type::update, "w-1");
  u.other_attributes = {{"color", "green"}};
  std::atomic<bool> done{false};
  apply_outcome outcome = apply_outcome::not_found;
  std::thread lane([&] {
    outcome = store().apply(u);
    done = true;
  });
  auto admin = database_.session();
  const std::string waiting =
      "SELECT pid FROM pg_stat_activity WHERE application_name = 'widget_consumer' "
      "AND wait_event_type = 'Lock' AND datname = current_database()";
  int terminated = 0;
  for (int attempt = 0; attempt < 200 && terminated < 1; ++attempt) {
    for (const auto& row : admin.query(waiting)) {
      admin.query("SELECT pg_terminate_backend(" + row.at(0) + ")");
      ++terminated;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  EXPECT_EQ(terminated, 1);
  // The retry waits for the lock again; let it through.
  for (int attempt = 0; attempt < 200 && admin.query(waiting).empty(); ++attempt)
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  EXPECT_FALSE(done);
  locker.query("COMMIT");
  lane.join();
  EXPECT_EQ(outcome, apply_outcome::applied);
  EXPECT_EQ(store().load("w-1")->other_attributes.at(0),
            (widget_attribute{.name = "color", .value = "green"}));
}

TEST_F(postgresql_table_store_test, every_pooled_connection_dropped_between_requests_heals) {
  for (int i = 0; i < 8; ++i)
    store().apply(create("w-" + std::to_string(i)));
  database_.session().query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
      "WHERE application_name = 'widget_consumer' AND datname = current_database()");
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(store().apply(request(request_type::remove, "w-" + std::to_string(i))),
              apply_outcome::applied);
}

TEST_F(postgresql_table_store_test, lanes_share_at_most_pool_size_connections) {
  store();
  std::vector<std::thread> lanes;
  std::atomic<int> applied{0};
  for (int lane = 0; lane < 12; ++lane)
    lanes.emplace_back([&, lane] {
      for (int i = 0; i < 20; ++i)
        if (store().apply(create("w-" + std::to_string(lane) + "-" + std::to_string(i))) ==
            apply_outcome::applied)
          ++applied;
    });
  for (auto& lane : lanes)
    lane.join();
  EXPECT_EQ(applied, 240);
  EXPECT_EQ(database_.session().scalar("SELECT count(*) FROM widgets"), "240");
  EXPECT_LE(std::stoi(database_.session().scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                "'widget_consumer' AND datname = current_database()")),
            4);
}

}  // namespace
}  // namespace widget_consumer
