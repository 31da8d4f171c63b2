#include "widget_consumer/aws/dynamodb.hpp"

#include "support/emulator.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <set>
#include <string>

// Every test runs against both local servers: "plain" accepts any signature,
// "iam" verifies each SigV4 signature against the IAM user's key.

namespace widget_consumer::aws {
namespace {

using widget_consumer::testing::client_config_for;
using widget_consumer::testing::emulator;
using widget_consumer::testing::unique_name;
namespace json = boost::json;

std::string server_name(const ::testing::TestParamInfo<bool>& param) {
  return param.param ? "iam" : "plain";
}

json::object key(std::string_view id) {
  return {{"id", {{"S", id}}}};
}

class dynamodb_client_test : public ::testing::TestWithParam<bool> {
 protected:
  dynamodb_client_test()
      : dynamodb_(client_config_for(GetParam() ? widget_consumer::testing::iam_emulator()
                                               : widget_consumer::testing::plain_emulator())) {}

  std::string make_table() {
    auto name = unique_name("table");
    dynamodb_.create_table(
        name,
        {{"KeySchema", json::array{{{"AttributeName", "id"}, {"KeyType", "HASH"}}}},
         {"AttributeDefinitions", json::array{{{"AttributeName", "id"}, {"AttributeType", "S"}}}},
         {"BillingMode", "PAY_PER_REQUEST"}});
    dynamodb_.wait_until_active(name, std::chrono::seconds(10));
    return name;
  }

  void put(const std::string& table, std::string_view id, std::string_view owner) {
    auto item = key(id);
    item["owner"] = {{"S", owner}};
    ASSERT_FALSE(dynamodb_.put_item(table, {{"Item", item}}).condition_failed());
  }

  dynamodb_client dynamodb_;
};

TEST_P(dynamodb_client_test, created_tables_become_active_and_missing_ones_are_absent) {
  const auto table = make_table();
  const auto description = dynamodb_.describe_table(table);
  ASSERT_TRUE(description.has_value());
  EXPECT_EQ(description->at("TableStatus").as_string(), "ACTIVE");
  EXPECT_EQ(description->at("TableName").as_string(), table);

  const auto missing = unique_name("missing");
  EXPECT_FALSE(dynamodb_.describe_table(missing).has_value());
  EXPECT_THROW(dynamodb_.wait_until_active(missing, std::chrono::milliseconds(300)),
               std::runtime_error);
}

TEST_P(dynamodb_client_test, put_then_get_round_trips_the_item) {
  const auto table = make_table();
  json::object item = key("widget 1/ü€");
  item["owner"] = {{"S", "Zoë Ünïcødé"}};
  item["label"] = {{"S", "a \"quoted\" \\ label\n"}};
  ASSERT_FALSE(dynamodb_.put_item(table, {{"Item", item}}).condition_failed());

  const auto found =
      dynamodb_.get_item(table, {{"Key", key("widget 1/ü€")}, {"ConsistentRead", true}});
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(*found, item);
  EXPECT_FALSE(dynamodb_.get_item(table, {{"Key", key("nothing")}}).has_value());
}

TEST_P(dynamodb_client_test, a_failed_condition_is_reported_not_thrown) {
  const auto table = make_table();
  const json::object update{
      {"Key", key("w1")},
      {"UpdateExpression", "SET #label = :label"},
      {"ConditionExpression", "attribute_exists(id) AND #owner = :owner"},
      {"ExpressionAttributeNames", {{"#label", "label"}, {"#owner", "owner"}}},
      {"ExpressionAttributeValues", {{":label", {{"S", "new"}}}, {":owner", {{"S", "Ann"}}}}},
      {"ReturnValues", "ALL_NEW"}};

  auto result = dynamodb_.update_item(table, update);
  EXPECT_TRUE(result.condition_failed());
  EXPECT_EQ(result.status, write_status::condition_failed);

  put(table, "w1", "Bob");  // another owner: the condition still fails
  EXPECT_TRUE(dynamodb_.update_item(table, update).condition_failed());

  put(table, "w1", "Ann");
  result = dynamodb_.update_item(table, update);
  ASSERT_EQ(result.status, write_status::written);
  EXPECT_EQ(result.response.at("Attributes").at("label").at("S").as_string(), "new");
}

TEST_P(dynamodb_client_test, delete_tells_whether_the_item_existed) {
  const auto table = make_table();
  put(table, "w1", "Ann");
  const json::object remove{{"Key", key("w1")}, {"ReturnValues", "ALL_OLD"}};

  auto result = dynamodb_.delete_item(table, remove);
  ASSERT_EQ(result.status, write_status::written);
  EXPECT_EQ(result.response.at("Attributes").at("owner").at("S").as_string(), "Ann");

  result = dynamodb_.delete_item(table, remove);
  ASSERT_EQ(result.status, write_status::written);
  EXPECT_FALSE(result.response.contains("Attributes"));

  json::object conditional = remove;
  conditional["ConditionExpression"] = "attribute_exists(id)";
  EXPECT_TRUE(dynamodb_.delete_item(table, conditional).condition_failed());
}

TEST_P(dynamodb_client_test, other_failures_throw_service_errors) {
  const auto table = make_table();
  try {
    // A key attribute of the wrong type is a validation error, not a condition.
    dynamodb_.put_item(table, {{"Item", {{"id", {{"N", "1"}}}}}});
    FAIL() << "expected service_error";
  } catch (const service_error& error) {
    EXPECT_EQ(error.status(), 400);
    EXPECT_TRUE(error.code().ends_with("ValidationException")) << error.code();
    EXPECT_NE(std::string(error.what()).find("DynamoDB PutItem " + table), std::string::npos)
        << error.what();
  }
  EXPECT_THROW(dynamodb_.put_item(unique_name("missing"), {{"Item", key("x")}}), service_error);
}

TEST_P(dynamodb_client_test, scan_pages_through_every_item) {
  const auto table = make_table();
  std::set<std::string> expected;
  for (int i = 0; i < 23; ++i) {
    const auto id = "w" + std::to_string(i);
    put(table, id, "Ann");
    expected.insert(id);
  }

  json::object request{{"Limit", 7}};
  std::set<std::string> seen;
  int pages = 0;
  for (;;) {
    auto page = dynamodb_.scan(table, request);
    ++pages;
    EXPECT_LE(page.items.size(), 7u);
    for (const auto& item : page.items)
      seen.insert(std::string(item.at("id").at("S").as_string()));
    if (!page.has_more())
      break;
    request["ExclusiveStartKey"] = page.last_evaluated_key;
    ASSERT_LT(pages, 10);
  }
  EXPECT_GE(pages, 4);
  EXPECT_EQ(seen, expected);

  const auto all = dynamodb_.scan_all(table, {{"Limit", 5}});
  std::set<std::string> all_ids;
  for (const auto& item : all)
    all_ids.insert(std::string(item.at("id").at("S").as_string()));
  EXPECT_EQ(all.size(), expected.size());
  EXPECT_EQ(all_ids, expected);
}

INSTANTIATE_TEST_SUITE_P(servers, dynamodb_client_test, ::testing::Values(false, true),
                         server_name);

}  // namespace
}  // namespace widget_consumer::aws
