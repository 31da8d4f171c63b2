#include "widget_consumer/request.hpp"

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "widget_consumer/detail/utf8.hpp"

namespace {

using namespace widget_consumer;

// The validation message, or "ok" when the body parses.
std::string outcome(std::string_view body, const parse_options& options = {}) {
  const auto result = parse_request(body, options);
  if (const auto* error = std::get_if<validation_error>(&result))
    return error->message();
  return "ok";
}

widget_request parsed(std::string_view body) {
  auto result = parse_request(body);
  if (const auto* error = std::get_if<validation_error>(&result)) {
    ADD_FAILURE() << "unexpected: " << error->message() << " for " << body;
    return {};
  }
  return std::get<widget_request>(std::move(result));
}

// A valid request with `extra` spliced in after the required fields.
std::string request_with(std::string_view extra) {
  return R"({"type":"update","requestId":"r1","widgetId":"w1","owner":"Mary Jo")" +
         std::string(extra) + "}";
}

struct rejection {
  std::string name;
  std::string body;
  std::string message;

  friend void PrintTo(const rejection& r, std::ostream* out) { *out << r.name; }
};

class rejected : public testing::TestWithParam<rejection> {};

TEST_P(rejected, names_the_field_and_the_problem) {
  EXPECT_EQ(outcome(GetParam().body), GetParam().message);
}

const std::string type_list =
    " is not create, update, delete, WidgetCreateRequest, WidgetUpdateRequest or "
    "WidgetDeleteRequest";

INSTANTIATE_TEST_SUITE_P(
    requests, rejected,
    testing::Values(
        rejection{"empty_body", "", "body: empty"},
        rejection{"invalid_json", R"({"type":"create",x})", "body: invalid JSON at offset 17"},
        rejection{"truncated_json", R"({"type":"create")", "body: invalid JSON at offset 16"},
        rejection{"trailing_garbage", R"({"type":"create"} x)", "body: invalid JSON at offset 18"},
        rejection{"whitespace_only", "  \n", "body: invalid JSON at offset 3"},
        rejection{"lone_surrogate_escape", R"({"label":"\ud800"})",
                  "body: invalid JSON at offset 16"},
        rejection{"invalid_utf8_byte", "{\"label\":\"\xff\"}", "body: not UTF-8"},
        rejection{"overlong_utf8", "{\"label\":\"\xc0\xaf\"}", "body: not UTF-8"},
        rejection{"surrogate_utf8", "{\"label\":\"\xed\xa0\x80\"}", "body: not UTF-8"},
        rejection{"truncated_utf8", "{\"label\":\"\xe2\x82\"}", "body: not UTF-8"},
        rejection{"above_max_code_point", "{\"label\":\"\xf4\x90\x80\x80\"}", "body: not UTF-8"},
        rejection{"array", "[]", "body: expected a JSON object, got array"},
        rejection{"string", R"("create")", "body: expected a JSON object, got string"},
        rejection{"only_widget_id", R"({"widgetId":"bad"})", "type: missing"},
        rejection{"bad_type", R"({"type":"bad"})", "type: \"bad\"" + type_list},
        rejection{"type_case_matters", R"({"type":"Create"})", "type: \"Create\"" + type_list},
        rejection{"type_number", R"({"type":1})", "type: expected a string, got number"},
        rejection{"type_null", R"({"type":null})", "type: expected a string, got null"},
        rejection{"request_id_missing", R"({"type":"create"})", "requestId: missing"},
        rejection{"request_id_empty", R"({"type":"create","requestId":""})", "requestId: empty"},
        rejection{"request_id_number", R"({"type":"create","requestId":7})",
                  "requestId: expected a string, got number"},
        rejection{"widget_id_missing", R"({"type":"create","requestId":"r"})", "widgetId: missing"},
        rejection{"widget_id_empty", R"({"type":"create","requestId":"r","widgetId":""})",
                  "widgetId: empty"},
        rejection{"owner_missing", R"({"type":"create","requestId":"r","widgetId":"w"})",
                  "owner: missing"},
        rejection{"owner_digits",
                  R"({"type":"create","requestId":"r","widgetId":"w","owner":"R2D2"})",
                  "owner: \"R2D2\" does not match [A-Za-z ]+"},
        rejection{"owner_dash",
                  R"({"type":"create","requestId":"r","widgetId":"w","owner":"Mary-Jo"})",
                  "owner: \"Mary-Jo\" does not match [A-Za-z ]+"},
        rejection{"owner_accent",
                  R"({"type":"create","requestId":"r","widgetId":"w","owner":"Ren\u00e9"})",
                  "owner: \"René\" does not match [A-Za-z ]+"},
        rejection{"owner_empty", R"({"type":"create","requestId":"r","widgetId":"w","owner":""})",
                  "owner: empty"},
        rejection{"owner_quoting_escapes",
                  R"({"type":"create","requestId":"r","widgetId":"w","owner":"a\"\n"})",
                  R"(owner: "a\"\n" does not match [A-Za-z ]+)"},
        rejection{"label_number", request_with(R"(,"label":5)"),
                  "label: expected a string or null, got number"},
        rejection{"description_object", request_with(R"(,"description":{})"),
                  "description: expected a string or null, got object"},
        rejection{"attributes_object", request_with(R"(,"otherAttributes":{})"),
                  "otherAttributes: expected an array, got object"},
        rejection{"attribute_not_object", request_with(R"(,"otherAttributes":[1])"),
                  "otherAttributes[0]: expected an object, got number"},
        rejection{"attribute_name_missing", request_with(R"(,"otherAttributes":[{"value":"v"}])"),
                  "otherAttributes[0].name: missing"},
        rejection{"attribute_name_empty",
                  request_with(R"(,"otherAttributes":[{"name":"","value":"v"}])"),
                  "otherAttributes[0].name: empty"},
        rejection{"attribute_name_null",
                  request_with(R"(,"otherAttributes":[{"name":null,"value":"v"}])"),
                  "otherAttributes[0].name: expected a string, got null"},
        rejection{
            "attribute_value_missing",
            request_with(
                R"(,"otherAttributes":[{"name":"a","value":"1"},{"name":"b","value":"2"},{"name":"c"}])"),
            "otherAttributes[2].value: missing"},
        rejection{"attribute_value_number",
                  request_with(R"(,"otherAttributes":[{"name":"a","value":1}])"),
                  "otherAttributes[0].value: expected a string or null, got number"},
        rejection{
            "attribute_duplicate",
            request_with(
                R"(,"otherAttributes":[{"name":"size","value":"1"},{"name":"color","value":"red"},{"name":"x","value":null},{"name":"color","value":"blue"}])"),
            "otherAttributes[3].name: duplicate \"color\" (first at [1])"},
        rejection{
            "attribute_duplicate_even_if_null",
            request_with(
                R"(,"otherAttributes":[{"name":"color","value":null},{"name":"color","value":""}])"),
            "otherAttributes[1].name: duplicate \"color\" (first at [0])"},
        rejection{
            "attribute_reserved_widget_id",
            request_with(R"(,"otherAttributes":[{"name":"widgetId","value":"x"}])"),
            "otherAttributes[0].name: \"widgetId\" is reserved for the widget's own property"},
        rejection{"attribute_reserved_owner",
                  request_with(R"(,"otherAttributes":[{"name":"owner","value":"x"}])"),
                  "otherAttributes[0].name: \"owner\" is reserved for the widget's own property"},
        rejection{"attribute_reserved_label",
                  request_with(R"(,"otherAttributes":[{"name":"label","value":"x"}])"),
                  "otherAttributes[0].name: \"label\" is reserved for the widget's own property"},
        rejection{"attribute_reserved_description",
                  request_with(R"(,"otherAttributes":[{"name":"description","value":"x"}])"),
                  "otherAttributes[0].name: \"description\" is reserved for the widget's own "
                  "property"},
        rejection{"first_bad_field_wins", R"({"type":"create","owner":"R2D2","requestId":""})",
                  "requestId: empty"}),
    [](const testing::TestParamInfo<rejection>& param_info) { return param_info.param.name; });

TEST(parse_request, accepts_every_type_spelling) {
  const std::vector<std::pair<std::string, request_type>> spellings = {
      {"create", request_type::create}, {"WidgetCreateRequest", request_type::create},
      {"update", request_type::update}, {"WidgetUpdateRequest", request_type::update},
      {"delete", request_type::remove}, {"WidgetDeleteRequest", request_type::remove}};
  for (const auto& [spelling, type] : spellings) {
    const auto request =
        parsed(R"({"type":")" + spelling + R"(","requestId":"r","widgetId":"w","owner":"Ann"})");
    EXPECT_EQ(request.type, type) << spelling;
  }
}

TEST(parse_request, reads_every_field) {
  const auto request = parsed(
      R"({"type":"WidgetCreateRequest","requestId":"e80417d3","widgetId":"8123f304",)"
      R"("owner":"Mary Matthews","label":"JWJYY","description":"THBRNVNQPYAWNHGRGUKIOWCKXIVNDLWOIQTADHVEVMUAJWDONEPUEAXDITDSHJTDLCMHHSESFXSDZJCBLGIKKPUYAWKQAQI",)"
      R"("otherAttributes":[{"name":"width-unit","value":"cm"},{"name":"length","value":"670"}]})");
  widget_request expected;
  expected.type = request_type::create;
  expected.request_id = "e80417d3";
  expected.widget_id = "8123f304";
  expected.owner = "Mary Matthews";
  expected.label = "JWJYY";
  expected.description =
      "THBRNVNQPYAWNHGRGUKIOWCKXIVNDLWOIQTADHVEVMUAJWDONEPUEAXDITDSHJTDLCMHHSESFXSDZJCBLGIKKPUYAWKQ"
      "AQI";
  expected.other_attributes = {{"width-unit", "cm"}, {"length", "670"}};
  EXPECT_EQ(request, expected);
}

TEST(parse_request, null_and_missing_leave_alone_empty_string_is_kept) {
  const auto request = parsed(request_with(
      R"(,"label":null,"description":"","otherAttributes":[{"name":"a","value":null},{"name":"b","value":""}])"));
  EXPECT_EQ(request.label, std::nullopt);
  EXPECT_EQ(request.description, std::optional<std::string>(""));
  ASSERT_EQ(request.other_attributes.size(), 2U);
  EXPECT_EQ(request.other_attributes[0].value, std::nullopt);
  EXPECT_EQ(request.other_attributes[1].value, std::optional<std::string>(""));
  EXPECT_TRUE(parsed(request_with("")).other_attributes.empty());
  EXPECT_TRUE(parsed(request_with(R"(,"otherAttributes":null)")).other_attributes.empty());
  EXPECT_TRUE(parsed(request_with(R"(,"otherAttributes":[])")).other_attributes.empty());
}

TEST(parse_request, reports_unknown_fields_and_keeps_them_out) {
  const auto request = parsed(request_with(
      R"(,"color":"red","":1,"otherAttributes":[{"name":"a","value":"1","unit":"cm"}],"zzz":null)"));
  EXPECT_EQ(request.unknown_fields,
            (std::vector<std::string>{"color", "", "zzz", "otherAttributes[0].unit"}));
  ASSERT_EQ(request.other_attributes.size(), 1U);
  EXPECT_EQ(request.other_attributes[0], (request_attribute{"a", "1"}));
}

TEST(parse_request, preserves_utf8_and_escapes_byte_for_byte) {
  const auto request = parsed(request_with(
      R"(,"label":"caf\u00e9 \"q\" \\ \/ \t\n \ud83d\ude00","description":"naïve 😀 日本",)"
      R"("otherAttributes":[{"name":"größe","value":"\u0000x"}])"));
  EXPECT_EQ(request.label,
            std::optional<std::string>("caf\xc3\xa9 \"q\" \\ / \t\n \xf0\x9f\x98\x80"));
  EXPECT_EQ(request.description, std::optional<std::string>("na\xc3\xafve \xf0\x9f\x98\x80 日本"));
  EXPECT_EQ(request.other_attributes[0].name,
            "gr\xc3\xb6\xc3\x9f"
            "e");
  EXPECT_EQ(request.other_attributes[0].value, std::optional<std::string>(std::string("\0x", 2)));
}

// "id" is a property of no widget: only the DynamoDB store, whose key it
// names, refuses it (dynamodb_widget_test.cpp).
TEST(parse_request, an_attribute_named_id_is_ordinary) {
  EXPECT_EQ(
      parsed(request_with(R"(,"otherAttributes":[{"name":"id","value":"x"}])")).other_attributes,
      (std::vector<request_attribute>{{.name = "id", .value = "x"}}));
}

TEST(parse_request, duplicate_json_keys_last_wins) {
  EXPECT_EQ(parsed(request_with(R"(,"label":"a","label":"b")")).label,
            std::optional<std::string>("b"));
}

TEST(parse_request, rejects_oversized_body_before_parsing) {
  const std::string body = request_with(R"(,"label":")" + std::string(100, 'x') + "\"");
  parse_options options;
  options.max_body_bytes = body.size();
  EXPECT_EQ(outcome(body, options), "ok");
  options.max_body_bytes = body.size() - 1;
  EXPECT_EQ(outcome(body, options), "body: " + std::to_string(body.size()) +
                                        " bytes exceeds the limit of " +
                                        std::to_string(body.size() - 1));
  // Not even UTF-8 or JSON is looked at.
  EXPECT_EQ(outcome(std::string(parse_options{}.max_body_bytes + 1, '\xff')),
            "body: 1048577 bytes exceeds the limit of 1048576");
}

TEST(parse_request, deep_nesting_is_an_error_not_a_crash) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_EQ(outcome(deep).rfind("body: invalid JSON at offset ", 0), 0U);
}

TEST(parse_request, long_values_are_cut_in_messages) {
  const std::string owner = std::string(200, 'a') + "1";
  const std::string message =
      outcome(R"({"type":"create","requestId":"r","widgetId":"w","owner":")" + owner + "\"}");
  EXPECT_EQ(message, "owner: \"" + std::string(64, 'a') + "\"... does not match [A-Za-z ]+");
}

TEST(to_string, names_the_wire_spelling) {
  EXPECT_EQ(to_string(request_type::create), "create");
  EXPECT_EQ(to_string(request_type::update), "update");
  EXPECT_EQ(to_string(request_type::remove), "delete");
}

TEST(utf8, finds_the_first_invalid_sequence) {
  using detail::find_invalid_utf8;
  constexpr auto npos = std::string_view::npos;
  EXPECT_EQ(find_invalid_utf8(""), npos);
  EXPECT_EQ(find_invalid_utf8("abc \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf"), npos);
  EXPECT_EQ(find_invalid_utf8("ab\x80"), 2U);            // lone continuation byte
  EXPECT_EQ(find_invalid_utf8("a\xc1\xbf"), 1U);         // overlong 2-byte
  EXPECT_EQ(find_invalid_utf8("\xe0\x9f\xbf"), 0U);      // overlong 3-byte
  EXPECT_EQ(find_invalid_utf8("\xf0\x8f\xbf\xbf"), 0U);  // overlong 4-byte
  EXPECT_EQ(find_invalid_utf8("x\xed\xbf\xbf"), 1U);     // low surrogate
  EXPECT_EQ(find_invalid_utf8("\xf5\x80\x80\x80"), 0U);
  EXPECT_EQ(find_invalid_utf8("ok\xf0\x9f\x98"), 2U);  // cut at the end
  EXPECT_EQ(find_invalid_utf8("\xe2\x28\xa1"), 0U);    // bad third byte
  EXPECT_EQ(detail::utf8_prefix("\xc3\xa9\xc3\xa9", 3), "\xc3\xa9");
}

}  // namespace
