#include "widget_consumer/destination/detail/dynamodb_widget.hpp"

#include "support/widget_samples.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace {

using namespace widget_consumer;
using namespace widget_samples;
namespace json = boost::json;

TEST(dynamodb_put_item, writes_the_full_item) {
  EXPECT_EQ(json::serialize(dynamodb_put_item(sample())),
            R"({"Item":{"id":{"S":"w1"},"owner":{"S":"Mary Jo"},)"
            R"("label":{"S":"label"},"description":{"S":"description"},)"
            R"("color":{"S":"red"},"size":{"S":"3"}}})");
  EXPECT_EQ(json::serialize(dynamodb_put_item(widget{"w", "Ann", {}, {}, {}})),
            R"({"Item":{"id":{"S":"w"},"owner":{"S":"Ann"}}})");
}

constexpr std::string_view owner_condition =
    R"("ConditionExpression":"attribute_exists(#id) AND #owner = :owner",)";

TEST(dynamodb_update_item, uses_placeholders_for_every_name) {
  const auto update = request(update_body(
      R"(,"label":"L","description":"","otherAttributes":[{"name":"width-unit","value":"cm"},)"
      R"({"name":"skip","value":null},{"name":"size","value":""}])"));
  EXPECT_EQ(json::serialize(dynamodb_update_item(update)),
            R"({"Key":{"id":{"S":"w1"}},)" + std::string(owner_condition) +
                R"("ExpressionAttributeNames":{"#id":"id","#owner":"owner","#label":"label",)"
                R"("#description":"description","#0":"width-unit","#1":"size"},)"
                R"("ExpressionAttributeValues":{":owner":{"S":"Mary Jo"},":label":{"S":"L"},)"
                R"(":v0":{"S":"cm"}},)"
                R"("UpdateExpression":"SET #label = :label, #0 = :v0 REMOVE #description, #1"})");
}

TEST(dynamodb_update_item, only_removals_give_a_remove_clause) {
  const auto body = dynamodb_update_item(request(update_body(R"(,"label":"")")));
  EXPECT_EQ(body.at("UpdateExpression"), "REMOVE #label");
}

TEST(dynamodb_update_item, an_empty_update_still_checks_the_widget) {
  const auto body = dynamodb_update_item(
      request(update_body(R"(,"label":null,"otherAttributes":[{"name":"a","value":null}])")));
  EXPECT_EQ(json::serialize(body),
            R"({"Key":{"id":{"S":"w1"}},)" + std::string(owner_condition) +
                R"("ExpressionAttributeNames":{"#id":"id","#owner":"owner"},)"
                R"("ExpressionAttributeValues":{":owner":{"S":"Mary Jo"}},)"
                R"("UpdateExpression":"SET #owner = :owner"})");
}

TEST(dynamodb_update_item, a_name_mentioned_twice_by_hand_keeps_the_last_change) {
  auto update = request(update_body(""));
  update.other_attributes = {{"a", "1"}, {"a", ""}};
  EXPECT_EQ(dynamodb_update_item(update).at("UpdateExpression"), "REMOVE #0");
}

TEST(dynamodb_update_item, a_reserved_name_built_by_hand_is_refused) {
  auto update = request(update_body(""));
  update.other_attributes = {{"owner", "x"}};
  EXPECT_THROW((void)dynamodb_update_item(update), reserved_attribute_name);
}

// The table is keyed by id: an attribute of that name would overwrite the
// key. parse_request() accepts the name, so only this layout refuses it.
TEST(dynamodb_item, an_attribute_named_id_is_refused_with_the_reason) {
  const auto create = request(create_body(R"(,"otherAttributes":[{"name":"id","value":"x"}])"));
  try {
    (void)dynamodb_put_item(make_widget(create));
    ADD_FAILURE() << "no exception";
  } catch (const reserved_attribute_name& error) {
    EXPECT_EQ(error.name(), "id");
    EXPECT_EQ(std::string(error.what()),
              "attribute name \"id\" cannot be stored in DynamoDB: it is the table's key, the "
              "widget's id");
  }
  const auto update = request(update_body(R"(,"otherAttributes":[{"name":"id","value":"x"}])"));
  EXPECT_THROW((void)dynamodb_update_item(update), reserved_attribute_name);
}

TEST(dynamodb_delete_item, is_conditional_and_returns_the_old_item) {
  const auto remove = request(R"({"type":"delete","requestId":"r","widgetId":"w1","owner":"Ann"})");
  EXPECT_EQ(json::serialize(dynamodb_delete_item(remove)),
            R"({"Key":{"id":{"S":"w1"}},)" + std::string(owner_condition) +
                R"("ExpressionAttributeNames":{"#id":"id","#owner":"owner"},)"
                R"("ExpressionAttributeValues":{":owner":{"S":"Ann"}},"ReturnValues":"ALL_OLD"})");
}

TEST(dynamodb_item_size, counts_name_and_value_utf8_bytes) {
  // Exactly at the limit passes, one byte more fails.
  widget w{"w", "Ann", std::nullopt, std::nullopt, {}};
  const std::size_t fixed = 2 + 1 + 5 + 3 + 1;  // id w owner Ann, attribute name "x"
  w.other_attributes = {{"x", std::string(dynamodb_item_limit - fixed, 'v')}};
  EXPECT_NO_THROW((void)dynamodb_put_item(w));
  w.other_attributes[0].value += "v";
  try {
    (void)dynamodb_put_item(w);
    ADD_FAILURE() << "no exception";
  } catch (const item_too_large& error) {
    EXPECT_EQ(error.widget_id(), "w");
    EXPECT_EQ(error.size(), dynamodb_item_limit + 1);
    EXPECT_EQ(std::string(error.what()),
              "widget \"w\": the item is 409601 bytes, over DynamoDB's limit of 409600");
  }
  // Multi-byte characters count as their UTF-8 bytes.
  w.other_attributes = {
      {"x", std::string("\xc3\xa9") + std::string(dynamodb_item_limit - fixed - 1, 'v')}};
  EXPECT_THROW((void)dynamodb_put_item(w), item_too_large);
}

TEST(dynamodb_update_item, refuses_an_update_that_alone_exceeds_the_item_limit) {
  auto update = request(update_body(""));
  update.label = std::string(dynamodb_item_limit, 'x');
  EXPECT_THROW((void)dynamodb_update_item(update), item_too_large);
}

// DynamoDB's 4 KB expression limit must not make an update fail that the
// same attributes in a create (limited by the 400 KB item only) pass.
TEST(dynamodb_update_item, an_update_past_4_kb_of_expression_is_not_refused) {
  auto update = request(update_body(""));
  for (int i = 0; i < 400; ++i) {
    // Not "a" + std::to_string(i): GCC 12 -O3 warns falsely (-Wrestrict, PR 105651).
    std::string name = "a";
    name += std::to_string(i);
    update.other_attributes.push_back({std::move(name), "v"});
  }
  update.label = "";
  const auto body = dynamodb_update_item(update);
  // The same one UpdateItem in its form without an expression.
  EXPECT_FALSE(body.contains("UpdateExpression"));
  EXPECT_EQ(json::serialize(body.at("Expected")),
            R"({"owner":{"ComparisonOperator":"EQ","AttributeValueList":[{"S":"Mary Jo"}]}})");
  const auto& updates = body.at("AttributeUpdates").as_object();
  EXPECT_EQ(updates.size(), 401U);
  EXPECT_EQ(json::serialize(updates.at("label")), R"({"Action":"DELETE"})");
  EXPECT_EQ(json::serialize(updates.at("a399")), R"({"Action":"PUT","Value":{"S":"v"}})");
}

TEST(widget_from_dynamodb_item, reads_the_item_and_sorts_other_attributes) {
  const auto item =
      json::parse(
          R"({"size":{"S":"3"},"id":{"S":"w1"},"color":{"S":"red"},)"
          R"("owner":{"S":"Mary Jo"},"label":{"S":"label"},"description":{"S":"description"}})")
          .as_object();
  EXPECT_EQ(widget_from_dynamodb_item(item), sample());
  EXPECT_EQ(widget_from_dynamodb_item(dynamodb_put_item(sample()).at("Item").as_object()),
            sample());
}

TEST(widget_from_dynamodb_item, names_a_bad_attribute) {
  auto message = [](std::string_view item) {
    try {
      (void)widget_from_dynamodb_item(json::parse(item).as_object());
    } catch (const std::runtime_error& error) {
      return std::string(error.what());
    }
    return std::string("no exception");
  };
  EXPECT_EQ(message(R"({"owner":{"S":"A"}})"), R"(DynamoDB item: "id": missing)");
  EXPECT_EQ(message(R"({"id":{"S":"w"}})"), R"(DynamoDB item: "owner": missing)");
  EXPECT_EQ(message(R"({"id":{"S":"w"},"owner":{"S":"A"},"n":{"N":"1"}})"),
            R"(DynamoDB item: "n": expected a string attribute ({"S": ...}))");
}

}  // namespace
