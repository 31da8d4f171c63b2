#include "widget_consumer/widget.hpp"
#include "widget_consumer/destination/detail/dynamodb_widget.hpp"

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

namespace {

using namespace widget_consumer;
namespace json = boost::json;

widget_request request(std::string_view body) {
  auto result = parse_request(body);
  if (const auto* error = std::get_if<validation_error>(&result)) {
    ADD_FAILURE() << error->message() << " for " << body;
    return {};
  }
  return std::get<widget_request>(std::move(result));
}

std::string create_body(std::string_view extra) {
  return R"({"type":"create","requestId":"r","widgetId":"w1","owner":"Mary Jo")" +
         std::string(extra) + "}";
}
std::string update_body(std::string_view extra) {
  return R"({"type":"update","requestId":"r","widgetId":"w1","owner":"Mary Jo")" +
         std::string(extra) + "}";
}

widget sample() {
  return widget{"w1", "Mary Jo", "label", "description", {{"color", "red"}, {"size", "3"}}};
}

TEST(make_widget, stores_everything_but_type_and_request_id) {
  const auto made = make_widget(request(create_body(
      R"(,"label":"L","description":"D","otherAttributes":[{"name":"b","value":"2"},{"name":"a","value":"1"}])")));
  EXPECT_EQ(made, (widget{"w1", "Mary Jo", "L", "D", {{"b", "2"}, {"a", "1"}}}));
}

// DESIGN.md: a create stores the request's data exactly as given; "" is data
// (only an update reads it as "remove"), null is no value.
TEST(make_widget, empty_strings_are_stored_and_null_is_absent) {
  const auto made = make_widget(request(create_body(
      R"(,"label":"","description":null,"otherAttributes":[{"name":"a","value":""},{"name":"b","value":null},{"name":"c","value":"x"}])")));
  EXPECT_EQ(made, (widget{"w1", "Mary Jo", "", std::nullopt, {{"a", ""}, {"c", "x"}}}));
}

struct update_case {
  std::string name;
  std::string changes;  // spliced into an update of sample()
  widget expected;

  friend void PrintTo(const update_case& c, std::ostream* out) { *out << c.name; }
};

class apply_update_case : public testing::TestWithParam<update_case> {};

TEST_P(apply_update_case, changes_only_what_the_request_mentions) {
  widget target = sample();
  apply_update(target, request(update_body(GetParam().changes)));
  EXPECT_EQ(target, GetParam().expected);
}

INSTANTIATE_TEST_SUITE_P(
    updates, apply_update_case,
    testing::Values(
        update_case{"nothing", "", sample()},
        update_case{"nulls", R"(,"label":null,"description":null,"otherAttributes":null)",
                    sample()},
        update_case{"set_label",
                    R"(,"label":"new")",
                    {"w1", "Mary Jo", "new", "description", {{"color", "red"}, {"size", "3"}}}},
        update_case{
            "remove_label_and_description",
            R"(,"label":"","description":"")",
            {"w1", "Mary Jo", std::nullopt, std::nullopt, {{"color", "red"}, {"size", "3"}}}},
        update_case{"change_attribute_in_place",
                    R"(,"otherAttributes":[{"name":"color","value":"blue"}])",
                    {"w1", "Mary Jo", "label", "description", {{"color", "blue"}, {"size", "3"}}}},
        update_case{
            "append_new_attribute",
            R"(,"otherAttributes":[{"name":"a","value":"1"},{"name":"color","value":"x"}])",
            {"w1", "Mary Jo", "label", "description", {{"color", "x"}, {"size", "3"}, {"a", "1"}}}},
        update_case{"remove_attribute_keeps_order",
                    R"(,"otherAttributes":[{"name":"color","value":""},{"name":"z","value":"9"}])",
                    {"w1", "Mary Jo", "label", "description", {{"size", "3"}, {"z", "9"}}}},
        update_case{"null_value_leaves_alone",
                    R"(,"otherAttributes":[{"name":"color","value":null}])", sample()},
        update_case{"remove_missing_attribute_is_a_no_op",
                    R"(,"otherAttributes":[{"name":"nope","value":""}])", sample()}),
    [](const testing::TestParamInfo<update_case>& param_info) { return param_info.param.name; });

TEST(apply_update, never_changes_widget_id_or_owner) {
  widget target = sample();
  auto update = request(update_body(R"(,"label":"x")"));
  update.widget_id = "other";
  update.owner = "Someone Else";
  apply_update(target, update);
  EXPECT_EQ(target.widget_id, "w1");
  EXPECT_EQ(target.owner, "Mary Jo");
}

TEST(apply_update, a_removed_attribute_set_again_goes_to_the_end) {
  widget target = sample();
  apply_update(target, request(update_body(R"(,"otherAttributes":[{"name":"color","value":""}])")));
  apply_update(target,
               request(update_body(R"(,"otherAttributes":[{"name":"color","value":"g"}])")));
  EXPECT_EQ(target.other_attributes,
            (std::vector<widget_attribute>{{"size", "3"}, {"color", "g"}}));
}

TEST(s3_key, lowercases_the_owner_and_replaces_spaces) {
  EXPECT_EQ(s3_key("Mary Jo", "w1"), "widgets/mary-jo/w1");
  EXPECT_EQ(s3_key("Mary  Jo ", "w1"), "widgets/mary--jo-/w1");
  EXPECT_EQ(s3_key("ANN", "8123f304-f23f-440b-a6d3-80e979fa4cd6"),
            "widgets/ann/8123f304-f23f-440b-a6d3-80e979fa4cd6");
  EXPECT_EQ(s3_key("Ann", "w1", {"", true}), "ann/w1");
  EXPECT_EQ(s3_key("Ann", "w1", {"data/widgets/", false}), "data/widgets/w1");
  EXPECT_EQ(s3_key("Ann", "w1", {"", false}), "w1");
}

TEST(to_json, writes_every_key_with_null_for_unset) {
  EXPECT_EQ(to_json(sample()),
            R"({"widgetId":"w1","owner":"Mary Jo","label":"label","description":"description",)"
            R"("otherAttributes":[{"name":"color","value":"red"},{"name":"size","value":"3"}]})");
  EXPECT_EQ(
      to_json(widget{"w", "Ann", std::nullopt, std::nullopt, {}}),
      R"({"widgetId":"w","owner":"Ann","label":null,"description":null,"otherAttributes":[]})");
}

TEST(to_json, round_trips_utf8_escapes_and_empty_strings) {
  const widget odd{"w/1 \"x\"",
                   "Ann",
                   std::string("caf\xc3\xa9 \\ \n \x01 \xf0\x9f\x98\x80"),
                   std::string(""),
                   {{"gr\xc3\xb6\xc3\x9f"
                     "e",
                     std::string("\0x", 2)},
                    {"width-unit", "cm"}}};
  EXPECT_EQ(widget_from_json(to_json(odd)), odd);
  EXPECT_EQ(widget_from_json(to_json(sample())), sample());
}

TEST(widget_from_json, accepts_missing_optional_keys_and_ignores_unknown_ones) {
  EXPECT_EQ(widget_from_json(R"({"widgetId":"w","owner":"Ann","extra":[1]})"),
            (widget{"w", "Ann", std::nullopt, std::nullopt, {}}));
}

struct bad_document {
  std::string name;
  std::string document;
  std::string message;

  friend void PrintTo(const bad_document& c, std::ostream* out) { *out << c.name; }
};

class widget_from_json_error : public testing::TestWithParam<bad_document> {};

TEST_P(widget_from_json_error, names_the_problem) {
  try {
    (void)widget_from_json(GetParam().document);
    ADD_FAILURE() << "no exception";
  } catch (const std::runtime_error& error) {
    EXPECT_EQ(std::string(error.what()), GetParam().message);
  }
}

INSTANTIATE_TEST_SUITE_P(
    documents, widget_from_json_error,
    testing::Values(
        bad_document{"empty", "", "widget document: body: empty"},
        bad_document{"not_json", "{x", "widget document: body: invalid JSON at offset 1"},
        bad_document{"not_utf8", "\"\xff\"", "widget document: body: not UTF-8"},
        bad_document{"array", "[]", "widget document: body: expected an object, got array"},
        bad_document{"no_id", R"({"owner":"Ann"})", "widget document: widgetId: missing"},
        bad_document{"owner_number", R"({"widgetId":"w","owner":1})",
                     "widget document: owner: expected a string, got number"},
        bad_document{"label_bool", R"({"widgetId":"w","owner":"A","label":true})",
                     "widget document: label: expected a string or null, got boolean"},
        bad_document{"attributes_object", R"({"widgetId":"w","owner":"A","otherAttributes":{}})",
                     "widget document: otherAttributes: expected an array"},
        bad_document{
            "attribute_value_null",
            R"({"widgetId":"w","owner":"A","otherAttributes":[{"name":"a","value":null}]})",
            "widget document: otherAttributes[0].value: expected a string, got null"}),
    [](const testing::TestParamInfo<bad_document>& param_info) { return param_info.param.name; });

// ---- DynamoDB -------------------------------------------------------------

TEST(dynamodb_put_item, writes_the_full_item) {
  EXPECT_EQ(json::serialize(dynamodb_put_item("widgets", sample())),
            R"({"TableName":"widgets","Item":{"id":{"S":"w1"},"owner":{"S":"Mary Jo"},)"
            R"("label":{"S":"label"},"description":{"S":"description"},)"
            R"("color":{"S":"red"},"size":{"S":"3"}}})");
  EXPECT_EQ(json::serialize(dynamodb_put_item("t", widget{"w", "Ann", {}, {}, {}})),
            R"({"TableName":"t","Item":{"id":{"S":"w"},"owner":{"S":"Ann"}}})");
}

constexpr std::string_view owner_condition =
    R"("ConditionExpression":"attribute_exists(#id) AND #owner = :owner",)";

TEST(dynamodb_update_item, uses_placeholders_for_every_name) {
  const auto update = request(update_body(
      R"(,"label":"L","description":"","otherAttributes":[{"name":"width-unit","value":"cm"},)"
      R"({"name":"skip","value":null},{"name":"size","value":""}])"));
  EXPECT_EQ(json::serialize(dynamodb_update_item("t", update)),
            R"({"TableName":"t","Key":{"id":{"S":"w1"}},)" + std::string(owner_condition) +
                R"("ExpressionAttributeNames":{"#id":"id","#owner":"owner","#label":"label",)"
                R"("#description":"description","#0":"width-unit","#1":"size"},)"
                R"("ExpressionAttributeValues":{":owner":{"S":"Mary Jo"},":label":{"S":"L"},)"
                R"(":v0":{"S":"cm"}},)"
                R"("UpdateExpression":"SET #label = :label, #0 = :v0 REMOVE #description, #1"})");
}

TEST(dynamodb_update_item, only_removals_give_a_remove_clause) {
  const auto body = dynamodb_update_item("t", request(update_body(R"(,"label":"")")));
  EXPECT_EQ(body.at("UpdateExpression"), "REMOVE #label");
}

TEST(dynamodb_update_item, an_empty_update_still_checks_the_widget) {
  const auto body = dynamodb_update_item(
      "t", request(update_body(R"(,"label":null,"otherAttributes":[{"name":"a","value":null}])")));
  EXPECT_EQ(json::serialize(body),
            R"({"TableName":"t","Key":{"id":{"S":"w1"}},)" + std::string(owner_condition) +
                R"("ExpressionAttributeNames":{"#id":"id","#owner":"owner"},)"
                R"("ExpressionAttributeValues":{":owner":{"S":"Mary Jo"}},)"
                R"("UpdateExpression":"SET #owner = :owner"})");
}

TEST(dynamodb_update_item, a_name_mentioned_twice_by_hand_keeps_the_last_change) {
  auto update = request(update_body(""));
  update.other_attributes = {{"a", "1"}, {"a", ""}};
  EXPECT_EQ(dynamodb_update_item("t", update).at("UpdateExpression"), "REMOVE #0");
}

TEST(dynamodb_update_item, a_reserved_name_built_by_hand_is_refused) {
  auto update = request(update_body(""));
  update.other_attributes = {{"owner", "x"}};
  EXPECT_THROW((void)dynamodb_update_item("t", update), std::invalid_argument);
}

TEST(dynamodb_delete_item, is_conditional_and_returns_the_old_item) {
  const auto remove = request(R"({"type":"delete","requestId":"r","widgetId":"w1","owner":"Ann"})");
  EXPECT_EQ(json::serialize(dynamodb_delete_item("t", remove)),
            R"({"TableName":"t","Key":{"id":{"S":"w1"}},)" + std::string(owner_condition) +
                R"("ExpressionAttributeNames":{"#id":"id","#owner":"owner"},)"
                R"("ExpressionAttributeValues":{":owner":{"S":"Ann"}},"ReturnValues":"ALL_OLD"})");
}

TEST(dynamodb_item_size, counts_name_and_value_utf8_bytes) {
  // Exactly at the limit passes, one byte more fails.
  widget w{"w", "Ann", std::nullopt, std::nullopt, {}};
  const std::size_t fixed = 2 + 1 + 5 + 3 + 1;  // id w owner Ann, attribute name "x"
  w.other_attributes = {{"x", std::string(dynamodb_item_limit - fixed, 'v')}};
  EXPECT_NO_THROW((void)dynamodb_put_item("t", w));
  w.other_attributes[0].value += "v";
  try {
    (void)dynamodb_put_item("t", w);
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
  EXPECT_THROW((void)dynamodb_put_item("t", w), item_too_large);
}

TEST(dynamodb_update_item, refuses_an_update_that_alone_exceeds_the_item_limit) {
  auto update = request(update_body(""));
  update.label = std::string(dynamodb_item_limit, 'x');
  EXPECT_THROW((void)dynamodb_update_item("t", update), item_too_large);
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
  const auto body = dynamodb_update_item("t", update);
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
  EXPECT_EQ(widget_from_dynamodb_item(dynamodb_put_item("t", sample()).at("Item").as_object()),
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
