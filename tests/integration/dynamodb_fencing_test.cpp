// The DynamoDB store's fence (detail/dynamodb_fence.hpp) on a real server:
// a request whose position is not newer than the item's changes nothing, a
// delete's tombstone refuses a late create, and without fencing the same
// replays do move the widget backwards (so each case fails without the
// fence). Expected items are written out here from DESIGN.md's semantics.

#include <widget_consumer/destination/dynamodb_table.hpp>
#include <widget_consumer/position.hpp>

#include "support/emulator.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <chrono>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace widget_consumer {
namespace {

using widget_consumer::testing::client_config_for;
using widget_consumer::testing::unique_name;
namespace json = boost::json;

static_assert(position_fencing<dynamodb_table_store>);

widget_request request(request_type type, std::string label, std::string owner = "Sue Smith") {
  widget_request r;
  r.type = type;
  r.request_id = "r-" + label;
  r.widget_id = "w1";
  r.owner = std::move(owner);
  if (type != request_type::remove)
    r.label = std::move(label);
  return r;
}

std::string at(int n) {
  return "s3:requests/" + std::to_string(1000 + n) + ".json";
}

class dynamodb_fencing_test : public ::testing::Test {
 protected:
  dynamodb_fencing_test()
      : config_(client_config_for(widget_consumer::testing::plain_emulator())),
        dynamodb_(config_),
        table_(unique_name("fenced")) {
    dynamodb_.create_table(
        table_,
        {{"KeySchema", json::array{{{"AttributeName", "id"}, {"KeyType", "HASH"}}}},
         {"AttributeDefinitions", json::array{{{"AttributeName", "id"}, {"AttributeType", "S"}}}},
         {"BillingMode", "PAY_PER_REQUEST"}});
    dynamodb_.wait_until_active(table_, std::chrono::seconds(10));
  }

  std::optional<json::object> item() {
    return dynamodb_.get_item(table_, {{"Key", {{"id", {{"S", "w1"}}}}}, {"ConsistentRead", true}});
  }
  std::string stored_position() {
    const auto found = item();
    return dynamodb_stored_position(found ? &*found : nullptr);
  }
  std::optional<std::string> label() {
    const auto found = item();
    if (!found || dynamodb_is_tombstone(*found))
      return std::nullopt;
    const auto widget = widget_from_dynamodb_item(*found);
    return widget.label.value_or("(none)");
  }

  aws::client_config config_;
  aws::dynamodb_client dynamodb_;
  std::string table_;
};

TEST_F(dynamodb_fencing_test, an_older_or_equal_position_changes_nothing) {
  dynamodb_table_store store(config_, table_);
  ASSERT_EQ(store.apply(request(request_type::create, "one"), at(1)).outcome,
            apply_outcome::applied);
  ASSERT_EQ(store.apply(request(request_type::update, "two"), at(2)).outcome,
            apply_outcome::applied);
  for (const auto& [type, position] :
       {std::pair{request_type::create, at(1)}, std::pair{request_type::update, at(2)},
        std::pair{request_type::update, at(1)}, std::pair{request_type::remove, at(1)}}) {
    const auto outcome = store.apply(request(type, "old"), position);
    EXPECT_EQ(outcome.outcome, apply_outcome::stale) << position;
    EXPECT_EQ(outcome.stored_position, at(2));
  }
  EXPECT_EQ(label(), "two");
  EXPECT_EQ(stored_position(), at(2));
}

TEST_F(dynamodb_fencing_test, standard_messages_of_one_millisecond_apply_in_arrival_order) {
  // position.hpp: their message ids say nothing about order, so the later
  // arrival applies whichever id sorts first; the same message again is stale.
  dynamodb_table_store store(config_, table_);
  const std::string first = "std:0001765000000000:b-message";
  const std::string second = "std:0001765000000000:a-message";
  ASSERT_EQ(store.apply(request(request_type::create, "one"), first).outcome,
            apply_outcome::applied);
  ASSERT_EQ(store.apply(request(request_type::update, "two"), second).outcome,
            apply_outcome::applied);
  EXPECT_EQ(store.apply(request(request_type::update, "again"), second).outcome,
            apply_outcome::stale);
  EXPECT_EQ(store.apply(request(request_type::update, "older"), "std:0001764999999999:z").outcome,
            apply_outcome::stale);
  EXPECT_EQ(label(), "two");
  EXPECT_EQ(stored_position(), second);
}

TEST_F(dynamodb_fencing_test, a_delete_leaves_a_tombstone_that_refuses_a_late_create) {
  dynamodb_table_store store(config_, table_, {.tombstone_retention = std::chrono::hours(2)});
  ASSERT_EQ(store.apply(request(request_type::create, "one"), at(1)).outcome,
            apply_outcome::applied);
  ASSERT_EQ(store.apply(request(request_type::remove, ""), at(3)).outcome, apply_outcome::applied);
  // The tombstone: id and the fence's attributes only, expiring in 2 h.
  const auto tombstone = item();
  ASSERT_TRUE(tombstone);
  EXPECT_TRUE(dynamodb_is_tombstone(*tombstone));
  EXPECT_EQ(tombstone->size(), 3u) << json::serialize(*tombstone);
  const auto expires = std::stoll(std::string(tombstone->at("_wc_expires").at("N").as_string()));
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  EXPECT_NEAR(static_cast<double>(expires - now), 7200.0, 60.0);

  // The create that was stalled (position 2) comes in late: refused.
  EXPECT_EQ(store.apply(request(request_type::create, "late"), at(2)).outcome,
            apply_outcome::stale);
  EXPECT_EQ(label(), std::nullopt);
  // An update after the delete finds no widget; a newer create applies.
  EXPECT_EQ(store.apply(request(request_type::update, "x"), at(4)).outcome,
            apply_outcome::not_found);
  EXPECT_EQ(store.apply(request(request_type::create, "again"), at(5)).outcome,
            apply_outcome::applied);
  EXPECT_EQ(label(), "again");
}

TEST_F(dynamodb_fencing_test, not_found_does_not_move_the_position) {
  dynamodb_table_store store(config_, table_);
  ASSERT_EQ(store.apply(request(request_type::create, "one"), at(1)).outcome,
            apply_outcome::applied);
  EXPECT_EQ(store.apply(request(request_type::update, "theirs", "Bob Jones"), at(5)).outcome,
            apply_outcome::not_found);
  EXPECT_EQ(store.apply(request(request_type::remove, "", "Bob Jones"), at(6)).outcome,
            apply_outcome::not_found);
  EXPECT_EQ(store.apply(request(request_type::update, "three"), at(3)).outcome,
            apply_outcome::applied);
  EXPECT_EQ(label(), "three");
}

TEST_F(dynamodb_fencing_test, a_position_of_another_kind_applies) {
  dynamodb_table_store store(config_, table_);
  ASSERT_EQ(store.apply(request(request_type::create, "one"), at(9)).outcome,
            apply_outcome::applied);
  EXPECT_EQ(store.apply(request(request_type::update, "sqs"), fifo_position("12")).outcome,
            apply_outcome::applied);
  EXPECT_EQ(label(), "sqs");
}

TEST_F(dynamodb_fencing_test, an_update_too_large_for_an_expression_is_fenced_too) {
  dynamodb_table_store store(config_, table_);
  ASSERT_EQ(store.apply(request(request_type::create, "one"), at(1)).outcome,
            apply_outcome::applied);
  auto big = request(request_type::update, "big");
  for (int i = 0; i < 400; ++i)
    big.other_attributes.push_back({"attribute-" + std::to_string(i), "v"});
  ASSERT_FALSE(dynamodb_fenced_update_item(big, at(3)));  // the legacy form
  EXPECT_EQ(store.apply(big, at(3)).outcome, apply_outcome::applied);
  EXPECT_EQ(label(), "big");
  big.label = "older";
  EXPECT_EQ(store.apply(big, at(2)).outcome, apply_outcome::stale);
  EXPECT_EQ(label(), "big");
  EXPECT_EQ(stored_position(), at(3));
}

// The difference the fence makes: the same replays, unfenced, undo the
// widget and bring a deleted one back; and the items are the course's.
TEST_F(dynamodb_fencing_test, without_fencing_replays_move_the_widget_backwards) {
  dynamodb_table_store store(config_, table_, {.enabled = false});
  ASSERT_EQ(store.apply(request(request_type::create, "one"), at(1)).outcome,
            apply_outcome::applied);
  ASSERT_EQ(store.apply(request(request_type::update, "two"), at(2)).outcome,
            apply_outcome::applied);
  EXPECT_FALSE(item()->contains("_wc_position"));
  EXPECT_EQ(store.apply(request(request_type::create, "one"), at(1)).outcome,
            apply_outcome::applied);
  EXPECT_EQ(label(), "one");
  ASSERT_EQ(store.apply(request(request_type::remove, ""), at(3)).outcome, apply_outcome::applied);
  EXPECT_FALSE(item());
  EXPECT_EQ(store.apply(request(request_type::create, "late"), at(2)).outcome,
            apply_outcome::applied);
  EXPECT_EQ(label(), "late");
}

// Stale writers race one widget from stores of their own (consumers of their
// own): whatever the interleaving, the widget ends at the newest create.
TEST_F(dynamodb_fencing_test, racing_writers_end_at_the_newest_position) {
  std::vector<int> positions(24);
  for (int i = 0; i < 24; ++i)
    positions[i] = i;
  std::shuffle(positions.begin(), positions.end(), std::mt19937(7));
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w)
    writers.emplace_back([&, w] {
      dynamodb_table_store store(config_, table_);
      for (int i = w; i < 24; i += 4)
        (void)store.apply(request(request_type::create, "v" + std::to_string(positions[i])),
                          at(positions[i]));
    });
  for (auto& writer : writers)
    writer.join();
  EXPECT_EQ(label(), "v23");
  EXPECT_EQ(stored_position(), at(23));
}

}  // namespace
}  // namespace widget_consumer
