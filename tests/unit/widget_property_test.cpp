#include "widget_consumer/destination/detail/dynamodb_widget.hpp"
#include "widget_consumer/destination/detail/widget_document.hpp"
#include "widget_consumer/widget.hpp"

#include "support/widget_model.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

// Random request sequences applied three ways must give the same widgets:
// a plain model of DESIGN.md's semantics, the S3 form (documents
// under widget_key(), read back with widget_from_json()), and the DynamoDB form
// (the generated PutItem/UpdateItem/DeleteItem bodies run by a tiny evaluator
// on an in-memory table, read back with widget_from_dynamodb_item()).

namespace {

using namespace widget_consumer;
namespace json = boost::json;

using outcome = apply_outcome;

using model_store = widget_consumer::testing::widget_model;

// ---- the S3 form ----------------------------------------------------------

struct s3_form {
  std::map<std::string, std::string> objects;

  outcome apply(const widget_request& r) {
    const std::string key = widget_key(r.owner, r.widget_id);
    if (r.type == request_type::create) {
      objects[key] = to_json(make_widget(r));
      return outcome::applied;
    }
    auto found = objects.find(key);
    if (found == objects.end())
      return outcome::not_found;
    widget stored = widget_from_json(found->second);
    // "Ann" and "ANN" share a key, so the document's owner decides.
    if (stored.owner != r.owner)
      return outcome::not_found;
    if (r.type == request_type::update) {
      apply_update(stored, r);
      found->second = to_json(stored);
    } else {
      objects.erase(found);
    }
    return outcome::applied;
  }
};

// ---- the DynamoDB form ------------------------------------------------------

// Resolves placeholders and insists that every defined one is used, as
// DynamoDB does.
struct placeholders {
  const json::object* names = nullptr;
  const json::object* values = nullptr;
  std::set<std::string> used;

  std::string name(const std::string& token) {
    used.insert(token);
    return std::string(names->at(token).as_string());
  }
  json::value value(const std::string& token) {
    used.insert(token);
    return values->at(token);
  }
  void expect_all_used() const {
    for (const auto& entry : *names)
      EXPECT_TRUE(used.count(std::string(entry.key()))) << entry.key();
    for (const auto& entry : *values)
      EXPECT_TRUE(used.count(std::string(entry.key()))) << entry.key();
  }
};

struct dynamodb_form {
  std::map<std::string, json::object> table;

  static std::string key_of(const json::object& body) {
    const auto& key = body.at("Key").as_object();
    EXPECT_EQ(key.size(), 1U);
    return std::string(key.at("id").at("S").as_string());
  }

  // Only the one condition shape we generate.
  bool condition_holds(const json::object& body, placeholders& p) const {
    static const std::regex shape(R"(^attribute_exists\((#\w+)\) AND (#\w+) = (:\w+)$)");
    const std::string expression(body.at("ConditionExpression").as_string());
    std::smatch match;
    EXPECT_TRUE(std::regex_match(expression, match, shape)) << expression;
    const std::string exists = p.name(match[1]);
    const std::string compared = p.name(match[2]);
    const json::value expected = p.value(match[3]);
    auto found = table.find(key_of(body));
    if (found == table.end() || !found->second.contains(exists))
      return false;
    const auto* actual = found->second.if_contains(compared);
    return actual != nullptr && *actual == expected;
  }

  // "SET #a = :a, #b = :b REMOVE #c, #d", either clause optional.
  static void run_update_expression(const std::string& expression, json::object& item,
                                    placeholders& p) {
    std::istringstream tokens(expression);
    std::string token;
    std::string mode;
    while (tokens >> token) {
      if (token == "SET" || token == "REMOVE") {
        mode = token;
        continue;
      }
      if (!token.empty() && token.back() == ',')
        token.pop_back();
      ASSERT_FALSE(mode.empty()) << expression;
      const std::string name = p.name(token);
      if (mode == "REMOVE") {
        item.erase(name);
        continue;
      }
      std::string equals;
      std::string value;
      tokens >> equals >> value;
      ASSERT_EQ(equals, "=") << expression;
      if (!value.empty() && value.back() == ',')
        value.pop_back();
      item[name] = p.value(value);
    }
  }

  outcome apply(const widget_request& r) {
    if (r.type == request_type::create) {
      const auto body = dynamodb_put_item(make_widget(r));
      const auto& item = body.at("Item").as_object();
      table[std::string(item.at("id").at("S").as_string())] = item;
      return outcome::applied;
    }
    const auto body =
        r.type == request_type::update ? dynamodb_update_item(r) : dynamodb_delete_item(r);
    placeholders p{&body.at("ExpressionAttributeNames").as_object(),
                   &body.at("ExpressionAttributeValues").as_object(),
                   {}};
    if (!condition_holds(body, p))
      return outcome::not_found;
    if (r.type == request_type::update) {
      run_update_expression(std::string(body.at("UpdateExpression").as_string()),
                            table.at(key_of(body)), p);
    } else {
      EXPECT_EQ(body.at("ReturnValues"), "ALL_OLD");
      table.erase(key_of(body));
    }
    p.expect_all_used();
    return outcome::applied;
  }
};

// DynamoDB keeps no attribute order.
widget sorted(widget w) {
  std::sort(w.other_attributes.begin(), w.other_attributes.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  return w;
}

void expect_same(const model_store& model, const s3_form& s3, const dynamodb_form& dynamodb) {
  ASSERT_EQ(s3.objects.size(), model.widgets.size());
  ASSERT_EQ(dynamodb.table.size(), model.widgets.size());
  for (const auto& [id, expected] : model.widgets) {
    const auto object = s3.objects.find(widget_key(expected.owner, id));
    ASSERT_NE(object, s3.objects.end()) << id;
    EXPECT_EQ(widget_from_json(object->second), expected);
    EXPECT_EQ(widget_from_dynamodb_item(dynamodb.table.at(id)), sorted(expected));
  }
}

// ---- the generator ----------------------------------------------------------

// Names that look like DynamoDB's expression syntax, and ids and owners that
// S3 keys must escape. Each widget has one owner, except that updates and
// deletes sometimes come from another one (creates do not: see
// a_create_by_another_owner_differs_between_the_stores).
widget_consumer::testing::request_vocabulary key_and_expression_words() {
  return {.ids = {"w0", "w1", "w2", "8123f304-f23f"},
          .owners = {"Ann", "Mary Jo", "Bob Smith", "Zed"},
          .types = {"create", "WidgetUpdateRequest", "update", "update", "delete"},
          .attribute_names = {"color", "width-unit", "size", "a b",
                              "gr\xc3\xb6\xc3\x9f"
                              "e",
                              "SET", "#x"},
          .values = {"L", "x y", "caf\xc3\xa9 \"q\" \\ \n", "日本"},
          .creates_by_other_owners = false};
}

TEST(widget_forms, random_sequences_give_the_same_widgets) {
  std::size_t applied = 0;
  std::size_t not_found = 0;
  for (unsigned seed = 1; seed <= 60; ++seed) {
    widget_consumer::testing::random_request_bodies gen{.random = std::mt19937(seed),
                                                        .words = key_and_expression_words()};
    model_store model;
    s3_form s3;
    dynamodb_form dynamodb;
    for (int step = 0; step < 150; ++step) {
      const std::string body = gen.next_body();
      SCOPED_TRACE("seed " + std::to_string(seed) + " step " + std::to_string(step) + ": " + body);
      auto parsed = parse_request(body);
      ASSERT_TRUE(std::holds_alternative<widget_request>(parsed))
          << std::get<validation_error>(parsed).message();
      const auto& r = std::get<widget_request>(parsed);
      const outcome expected = model.apply(r);
      EXPECT_EQ(s3.apply(r), expected);
      EXPECT_EQ(dynamodb.apply(r), expected);
      (expected == outcome::applied ? applied : not_found) += 1;
      expect_same(model, s3, dynamodb);
      if (::testing::Test::HasFailure())
        return;
    }
  }
  // The generator must exercise both paths, or the property says little.
  EXPECT_GT(applied, 3000U);
  EXPECT_GT(not_found, 1000U);
}

TEST(widget_forms, an_update_of_a_deleted_widget_changes_nothing) {
  const auto parse = [](std::string_view body) {
    return std::get<widget_request>(parse_request(body));
  };
  const auto create = parse(R"({"type":"create","requestId":"1","widgetId":"w","owner":"Ann",)"
                            R"("label":"L","otherAttributes":[{"name":"a","value":"1"}]})");
  const auto remove = parse(R"({"type":"delete","requestId":"2","widgetId":"w","owner":"Ann"})");
  const auto update = parse(R"({"type":"update","requestId":"3","widgetId":"w","owner":"Ann",)"
                            R"("label":"new"})");
  model_store model;
  s3_form s3;
  dynamodb_form dynamodb;
  for (const auto* r : {&create, &remove}) {
    EXPECT_EQ(model.apply(*r), outcome::applied);
    EXPECT_EQ(s3.apply(*r), outcome::applied);
    EXPECT_EQ(dynamodb.apply(*r), outcome::applied);
  }
  for (const auto* r : {&update, &remove}) {
    EXPECT_EQ(model.apply(*r), outcome::not_found);
    EXPECT_EQ(s3.apply(*r), outcome::not_found);
    EXPECT_EQ(dynamodb.apply(*r), outcome::not_found);
  }
  expect_same(model, s3, dynamodb);
  EXPECT_TRUE(model.widgets.empty());
}

// Not a property but a fact the stores must decide on: with the owner in the
// S3 key, a create by another owner makes a second object, while DynamoDB
// (keyed by id alone) replaces the first owner's widget.
TEST(widget_forms, a_create_by_another_owner_differs_between_the_stores) {
  const auto parse = [](std::string_view body) {
    return std::get<widget_request>(parse_request(body));
  };
  s3_form s3;
  dynamodb_form dynamodb;
  for (const std::string owner : {"Ann", "Bob"}) {
    const auto create =
        parse(R"({"type":"create","requestId":"1","widgetId":"w","owner":")" + owner + "\"}");
    s3.apply(create);
    dynamodb.apply(create);
  }
  EXPECT_EQ(s3.objects.size(), 2U);
  EXPECT_EQ(dynamodb.table.size(), 1U);
}

}  // namespace
