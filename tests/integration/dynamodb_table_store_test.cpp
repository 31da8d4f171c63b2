#include <widget_consumer/destination/dynamodb_table.hpp>

#include "support/emulator.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

// Every test runs against both local servers: "plain" accepts any signature,
// "iam" verifies each SigV4 signature against the IAM user's key.

namespace widget_consumer {
namespace {

using widget_consumer::testing::client_config_for;
using widget_consumer::testing::emulator;
using widget_consumer::testing::unique_name;
namespace json = boost::json;

static_assert(widget_store<dynamodb_table_store>);

std::string server_name(const ::testing::TestParamInfo<bool>& param) {
  return param.param ? "iam" : "plain";
}

widget_request request(request_type type, std::string id, std::string owner = "Sue Smith") {
  widget_request r;
  r.type = type;
  r.request_id = "r-" + id;
  r.widget_id = std::move(id);
  r.owner = std::move(owner);
  return r;
}

widget_request create(std::string id, std::string owner = "Sue Smith") {
  auto r = request(request_type::create, std::move(id), std::move(owner));
  r.label = "Spinner";
  r.description = "A widget that spins";
  r.other_attributes = {{"width", "12"}, {"width-unit", "cm"}, {"color", "red"}};
  return r;
}

class dynamodb_table_store_test : public ::testing::TestWithParam<bool> {
 protected:
  dynamodb_table_store_test()
      : config_(client_config_for(GetParam() ? widget_consumer::testing::iam_emulator()
                                             : widget_consumer::testing::plain_emulator())),
        dynamodb_(config_),
        table_(unique_name("widgets")) {
    dynamodb_.create_table(
        table_,
        {{"KeySchema", json::array{{{"AttributeName", "id"}, {"KeyType", "HASH"}}}},
         {"AttributeDefinitions", json::array{{{"AttributeName", "id"}, {"AttributeType", "S"}}}},
         {"BillingMode", "PAY_PER_REQUEST"}});
    dynamodb_.wait_until_active(table_, std::chrono::seconds(10));
  }

  std::optional<widget> stored(const std::string& id) {
    auto item =
        dynamodb_.get_item(table_, {{"Key", {{"id", {{"S", id}}}}}, {"ConsistentRead", true}});
    if (!item)
      return std::nullopt;
    return widget_from_dynamodb_item(*item);
  }

  aws::client_config config_;
  aws::dynamodb_client dynamodb_;
  std::string table_;
};

TEST_P(dynamodb_table_store_test, create_stores_every_property_as_a_top_level_string) {
  dynamodb_table_store store(config_, table_);
  EXPECT_EQ(store.apply(create("w1")), apply_outcome::applied);

  auto item = dynamodb_.get_item(table_, {{"Key", {{"id", {{"S", "w1"}}}}}});
  ASSERT_TRUE(item);
  EXPECT_EQ(item->at("width-unit").at("S").as_string(), "cm");
  EXPECT_EQ(item->at("owner").at("S").as_string(), "Sue Smith");
  EXPECT_FALSE(item->contains("requestId"));
  EXPECT_FALSE(item->contains("type"));
  auto expected = make_widget(create("w1"));
  std::ranges::sort(expected.other_attributes, {}, &widget_attribute::name);
  EXPECT_EQ(stored("w1"), expected);
}

// DynamoDB accepts "" for attributes outside the key; a create's "" is data.
TEST_P(dynamodb_table_store_test, a_create_keeps_empty_strings_as_data) {
  dynamodb_table_store store(config_, table_);
  auto empty = request(request_type::create, "w1");
  empty.label = "";
  empty.other_attributes = {{"color", ""}, {"size", std::nullopt}};
  ASSERT_EQ(store.apply(empty), apply_outcome::applied);
  auto item = dynamodb_.get_item(table_, {{"Key", {{"id", {{"S", "w1"}}}}}});
  ASSERT_TRUE(item);
  // json::object's == ignores the order of the keys, as DynamoDB does.
  EXPECT_EQ(*item, json::parse(R"({"id":{"S":"w1"},"owner":{"S":"Sue Smith"},"label":{"S":""},)"
                               R"("color":{"S":""}})")
                       .as_object());
}

TEST_P(dynamodb_table_store_test, a_second_create_replaces_the_widget) {
  dynamodb_table_store store(config_, table_);
  EXPECT_EQ(store.apply(create("w1")), apply_outcome::applied);
  auto again = request(request_type::create, "w1", "John Jones");
  again.label = "Other";
  EXPECT_EQ(store.apply(again), apply_outcome::applied);
  EXPECT_EQ(stored("w1"), make_widget(again));  // no description, no attributes left
}

TEST_P(dynamodb_table_store_test, update_changes_only_what_it_mentions) {
  dynamodb_table_store store(config_, table_);
  ASSERT_EQ(store.apply(create("w1")), apply_outcome::applied);
  auto update = request(request_type::update, "w1");
  update.label = "Renamed";
  update.description = "";  // removed
  update.other_attributes = {{"width-unit", "in"}, {"color", ""}, {"height", "3"}};
  EXPECT_EQ(store.apply(update), apply_outcome::applied);

  auto expected = make_widget(create("w1"));
  apply_update(expected, update);
  std::ranges::sort(expected.other_attributes, {}, &widget_attribute::name);
  EXPECT_EQ(stored("w1"), expected);
}

TEST_P(dynamodb_table_store_test, update_of_a_missing_or_foreign_widget_is_not_found) {
  dynamodb_table_store store(config_, table_);
  auto update = request(request_type::update, "missing");
  update.label = "x";
  EXPECT_EQ(store.apply(update), apply_outcome::not_found);
  EXPECT_FALSE(stored("missing"));  // no item made up by the update

  ASSERT_EQ(store.apply(create("w1")), apply_outcome::applied);
  auto foreign = request(request_type::update, "w1", "Henry Hops");
  foreign.label = "Stolen";
  EXPECT_EQ(store.apply(foreign), apply_outcome::not_found);
  EXPECT_EQ(stored("w1")->label, "Spinner");
}

TEST_P(dynamodb_table_store_test, delete_removes_it_once_then_is_not_found) {
  dynamodb_table_store store(config_, table_);
  ASSERT_EQ(store.apply(create("w1")), apply_outcome::applied);
  EXPECT_EQ(store.apply(request(request_type::remove, "w1", "Henry Hops")),
            apply_outcome::not_found);
  EXPECT_TRUE(stored("w1"));  // someone else's: kept
  EXPECT_EQ(store.apply(request(request_type::remove, "w1")), apply_outcome::applied);
  EXPECT_FALSE(stored("w1"));
  EXPECT_EQ(store.apply(request(request_type::remove, "w1")), apply_outcome::not_found);
}

TEST_P(dynamodb_table_store_test, an_item_over_the_size_limit_is_a_bad_request) {
  dynamodb_table_store store(config_, table_);
  auto big = create("big");
  big.description = std::string(dynamodb_item_limit, 'x');
  try {
    store.apply(big);
    FAIL() << "no store_error";
  } catch (const store_error& e) {
    EXPECT_EQ(e.failure(), store_failure::bad_request);
    EXPECT_NE(std::string(e.what()).find("limit of 409600"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(stored("big"));
}

// The table is keyed by id, so an other attribute of that name would
// overwrite the key: parse_request() accepts the name (the S3 and directory
// stores keep it), this store sets the request aside with the reason.
TEST_P(dynamodb_table_store_test, an_attribute_named_id_is_a_bad_request) {
  dynamodb_table_store store(config_, table_);
  auto parsed =
      parse_request(R"({"type":"create","requestId":"r","widgetId":"w1","owner":"Sue Smith",)"
                    R"("otherAttributes":[{"name":"id","value":"w2"}]})");
  ASSERT_TRUE(std::holds_alternative<widget_request>(parsed));
  auto with_id = std::get<widget_request>(parsed);
  try {
    store.apply(with_id);
    FAIL() << "no store_error";
  } catch (const store_error& e) {
    EXPECT_EQ(e.failure(), store_failure::bad_request);
    EXPECT_EQ(std::string(e.what()),
              "attribute name \"id\" cannot be stored in DynamoDB: it is the table's key, the "
              "widget's id");
  }
  EXPECT_FALSE(stored("w1"));
  EXPECT_FALSE(stored("w2"));

  ASSERT_EQ(store.apply(create("w1")), apply_outcome::applied);
  with_id.type = request_type::update;
  try {
    store.apply(with_id);
    FAIL() << "no store_error";
  } catch (const store_error& e) {
    EXPECT_EQ(e.failure(), store_failure::bad_request);
  }
  EXPECT_EQ(stored("w1")->other_attributes.size(), 3U);
}

// Only DynamoDB knows the stored item: an update that overflows together
// with it is refused there, and can never succeed either.
TEST_P(dynamodb_table_store_test, an_update_that_overflows_the_stored_item_is_a_bad_request) {
  dynamodb_table_store store(config_, table_);
  auto large = create("w1");
  large.description = std::string(300 * 1024, 'd');
  ASSERT_EQ(store.apply(large), apply_outcome::applied);
  auto update = request(request_type::update, "w1");
  update.label = std::string(200 * 1024, 'l');
  try {
    store.apply(update);
    FAIL() << "no store_error";
  } catch (const store_error& e) {
    EXPECT_EQ(e.failure(), store_failure::bad_request) << e.what();
  }
  EXPECT_EQ(stored("w1")->label, "Spinner");
}

// DynamoDB caps an UpdateExpression at 4 KB, far below its 400 KB item: an
// update is bounded by the item it leaves, as a create is, and stays
// conditional on the owner.
TEST_P(dynamodb_table_store_test, an_update_whose_expression_would_pass_4_kb_is_applied) {
  dynamodb_table_store store(config_, table_);
  ASSERT_EQ(store.apply(create("w1")), apply_outcome::applied);
  auto update = request(request_type::update, "w1");
  update.label = "Renamed";
  update.description = "";
  update.other_attributes = {{"color", ""}, {"width", std::nullopt}, {"width-unit", "in"}};
  widget expected{
      "w1", "Sue Smith", "Renamed", std::nullopt, {{"width", "12"}, {"width-unit", "in"}}};
  for (int i = 0; i < 600; ++i) {
    // Not "a" + std::to_string(i): GCC 12 -O3 warns falsely (-Wrestrict, PR 105651).
    std::string name = "attribute-";
    name += std::to_string(i);
    update.other_attributes.push_back({name, "value"});
    expected.other_attributes.push_back({name, "value"});
  }
  EXPECT_EQ(store.apply(update), apply_outcome::applied);
  std::ranges::sort(expected.other_attributes, {}, &widget_attribute::name);
  EXPECT_EQ(stored("w1"), expected);

  auto foreign = update;
  foreign.owner = "Henry Hops";
  foreign.label = "Stolen";
  EXPECT_EQ(store.apply(foreign), apply_outcome::not_found);
  EXPECT_EQ(stored("w1")->label, "Renamed");
  auto missing = update;
  missing.widget_id = "missing";
  EXPECT_EQ(store.apply(missing), apply_outcome::not_found);
  EXPECT_FALSE(stored("missing"));
}

// A ValidationException (here: an empty key, which only a request built by
// hand can have) can never succeed: the request is set aside with DynamoDB's
// reason, not held back with its widget's later requests for good.
TEST_P(dynamodb_table_store_test, a_request_dynamodb_finds_invalid_is_a_bad_request) {
  dynamodb_table_store store(config_, table_);
  try {
    store.apply(create(""));
    FAIL() << "no store_error";
  } catch (const store_error& e) {
    EXPECT_EQ(e.failure(), store_failure::bad_request) << e.what();
    EXPECT_NE(std::string(e.what()).find("ValidationException"), std::string::npos) << e.what();
  }
}

// ...but a table keyed otherwise refuses every request alike: that is the
// table's fault, and rejecting would set the whole stream aside.
TEST_P(dynamodb_table_store_test, a_table_with_another_key_is_a_permanent_failure) {
  const auto other = unique_name("other-key");
  dynamodb_.create_table(
      other,
      {{"KeySchema", json::array{{{"AttributeName", "pk"}, {"KeyType", "HASH"}}}},
       {"AttributeDefinitions", json::array{{{"AttributeName", "pk"}, {"AttributeType", "S"}}}},
       {"BillingMode", "PAY_PER_REQUEST"}});
  dynamodb_.wait_until_active(other, std::chrono::seconds(10));
  dynamodb_table_store store(config_, other);
  for (const auto& r : {create("w1"), request(request_type::remove, "w1")}) {
    try {
      store.apply(r);
      FAIL() << "no store_error";
    } catch (const store_error& e) {
      EXPECT_EQ(e.failure(), store_failure::permanent) << e.what();
      EXPECT_NE(std::string(e.what()).find("ValidationException"), std::string::npos) << e.what();
    }
  }
}

TEST_P(dynamodb_table_store_test, a_missing_table_is_a_permanent_failure) {
  dynamodb_table_store store(config_, unique_name("no-such-table"));
  try {
    store.apply(create("w1"));
    FAIL() << "no store_error";
  } catch (const store_error& e) {
    EXPECT_EQ(e.failure(), store_failure::permanent) << e.what();
  }
}

TEST_P(dynamodb_table_store_test, no_answer_is_a_transient_failure) {
  auto config = config_;
  config.endpoint = "http://127.0.0.1:1";  // nothing listens there
  config.max_attempts = 1;
  dynamodb_table_store store(config, table_);
  try {
    store.apply(create("w1"));
    FAIL() << "no store_error";
  } catch (const store_error& e) {
    EXPECT_EQ(e.failure(), store_failure::transient) << e.what();
    EXPECT_TRUE(e.retryable());
  }
}

TEST_P(dynamodb_table_store_test, lanes_may_apply_concurrently) {
  dynamodb_table_store store(config_, table_);
  std::atomic<int> applied{0};
  std::vector<std::thread> lanes;
  for (int lane = 0; lane < 8; ++lane)
    lanes.emplace_back([&, lane] {
      for (int i = 0; i < 10; ++i) {
        const auto id = "w" + std::to_string(lane) + "-" + std::to_string(i);
        if (store.apply(create(id)) == apply_outcome::applied &&
            store.apply(request(request_type::remove, id)) == apply_outcome::applied &&
            store.apply(create(id)) == apply_outcome::applied)
          ++applied;
      }
    });
  for (auto& lane : lanes)
    lane.join();
  EXPECT_EQ(applied, 80);
  EXPECT_EQ(dynamodb_.scan_all(table_).size(), 80u);
}

INSTANTIATE_TEST_SUITE_P(servers, dynamodb_table_store_test, ::testing::Bool(), server_name);

}  // namespace
}  // namespace widget_consumer
