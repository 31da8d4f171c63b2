#include "widget_consumer/destination/detail/widget_document.hpp"

#include "support/widget_samples.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>

namespace {

using namespace widget_consumer;
using namespace widget_samples;

TEST(widget_key, lowercases_the_owner_and_replaces_spaces) {
  EXPECT_EQ(widget_key("Mary Jo", "w1"), "widgets/mary-jo/w1");
  EXPECT_EQ(widget_key("Mary  Jo ", "w1"), "widgets/mary--jo-/w1");
  EXPECT_EQ(widget_key("ANN", "8123f304-f23f-440b-a6d3-80e979fa4cd6"),
            "widgets/ann/8123f304-f23f-440b-a6d3-80e979fa4cd6");
  EXPECT_EQ(widget_key("Ann", "w1", {.prefix = "", .owner_in_key = true}), "ann/w1");
  EXPECT_EQ(widget_key("Ann", "w1", {.prefix = "data/widgets/", .owner_in_key = false}),
            "data/widgets/w1");
  EXPECT_EQ(widget_key("Ann", "w1", {.prefix = "", .owner_in_key = false}), "w1");
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

}  // namespace
