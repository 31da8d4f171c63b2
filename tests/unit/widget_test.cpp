#include "widget_consumer/widget.hpp"

#include "support/widget_samples.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace {

using namespace widget_consumer;
using namespace widget_samples;

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

}  // namespace
