#include <widget_consumer/destination/postgresql_table.hpp>

#include "support/postgresql_server.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <map>
#include <random>
#include <string>
#include <vector>

// Random request streams applied to the PostgreSQL store (on the real server)
// and to a model written from DESIGN.md's semantics must give the same
// outcomes and the same widgets after every request. The model is not built
// with make_widget()/apply_update(): it would share their mistakes.

namespace widget_consumer {
namespace {

namespace json = boost::json;

struct model_store {
  std::map<std::string, widget> widgets;

  // create: the request's data as given; "" is data, null is no value; a
  // second create replaces the widget, whoever owned it.
  static widget created(const widget_request& r) {
    widget w{.widget_id = r.widget_id,
             .owner = r.owner,
             .label = r.label,
             .description = r.description,
             .other_attributes = {}};
    for (const auto& attribute : r.other_attributes)
      if (attribute.value)
        w.other_attributes.push_back({attribute.name, *attribute.value});
    return w;
  }

  // update: missing or null leaves a property alone, "" removes it, anything
  // else sets it; id and owner never change.
  static void updated(widget& w, const widget_request& r) {
    for (auto [property, change] :
         {std::pair{&w.label, &r.label}, std::pair{&w.description, &r.description}})
      if (*change)
        *property = (*change)->empty() ? std::nullopt : *change;
    for (const auto& attribute : r.other_attributes) {
      if (!attribute.value)
        continue;
      auto& list = w.other_attributes;
      const auto at = std::find_if(list.begin(), list.end(),
                                   [&](const auto& a) { return a.name == attribute.name; });
      if (attribute.value->empty()) {
        if (at != list.end())
          list.erase(at);
      } else if (at != list.end()) {
        at->value = *attribute.value;
      } else {
        list.push_back({attribute.name, *attribute.value});
      }
    }
  }

  // update/delete of a missing widget, or of one whose owner differs
  // (compared exactly): not found, nothing changes.
  apply_outcome apply(const widget_request& r) {
    if (r.type == request_type::create) {
      widgets[r.widget_id] = created(r);
      return apply_outcome::applied;
    }
    const auto found = widgets.find(r.widget_id);
    if (found == widgets.end() || found->second.owner != r.owner)
      return apply_outcome::not_found;
    if (r.type == request_type::update)
      updated(found->second, r);
    else
      widgets.erase(found);
    return apply_outcome::applied;
  }
};

// The store keeps no attribute order: it loads them by name.
widget by_name(widget w) {
  std::sort(w.other_attributes.begin(), w.other_attributes.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  return w;
}

struct generator {
  std::mt19937 random;

  std::size_t below(std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(random);
  }
  bool chance(double p) { return std::bernoulli_distribution(p)(random); }

  // missing, null, "" or a value
  void maybe_string(json::object& body, std::string_view key) {
    static const std::vector<std::string> values = {"L", "x y", "caf\xc3\xa9 \"q\" \\ \n",
                                                    "'; DROP TABLE widgets; --", "\xe6\x97\xa5"};
    switch (below(4)) {
      case 0:
        return;
      case 1:
        body[key] = nullptr;
        return;
      case 2:
        body[key] = "";
        return;
      default:
        body[key] = values[below(values.size())];
    }
  }

  std::string next_body() {
    static const std::vector<std::string> ids = {"w0", "w1", "w'2", "8123f304-f23f"};
    static const std::vector<std::string> owners = {"Ann", "Mary Jo", "Bob Smith", "Zed"};
    static const std::vector<std::string> types = {"create", "update", "update", "delete"};
    static const std::vector<std::string> names = {"color",
                                                   "width-unit",
                                                   "a b",
                                                   "gr\xc3\xb6\xc3\x9f"
                                                   "e",
                                                   "SET",
                                                   "$1",
                                                   "x'); --"};
    const std::size_t which = below(ids.size());
    const std::string type = types[below(types.size())];
    // Mostly the widget's own owner; sometimes another, or shouting.
    std::string owner = owners[which];
    if (chance(0.1))
      owner = owners[below(owners.size())];
    if (chance(0.05))
      std::transform(owner.begin(), owner.end(), owner.begin(),
                     [](char c) { return static_cast<char>(std::toupper(c)); });
    json::object body{
        {"type", type}, {"requestId", "r"}, {"widgetId", ids[which]}, {"owner", owner}};
    maybe_string(body, "label");
    maybe_string(body, "description");
    std::vector<std::string> chosen = names;
    std::shuffle(chosen.begin(), chosen.end(), random);
    json::array attributes;
    for (std::size_t i = 0, n = below(5); i < n; ++i) {
      json::object attribute{{"name", chosen[i]}};
      maybe_string(attribute, "value");
      if (!attribute.contains("value"))
        attribute["value"] = "v" + std::to_string(below(3));
      attributes.push_back(std::move(attribute));
    }
    if (!attributes.empty() || chance(0.5))
      body["otherAttributes"] = std::move(attributes);
    return json::serialize(body);
  }
};

TEST(postgresql_property, random_request_streams_leave_the_store_equal_to_the_model) {
  testing::postgresql_database database;
  postgresql_table_store store({.connection = database.url(),
                                .user = database.server().user,
                                .password = database.server().password,
                                .pool_size = 2,
                                .create_schema = true});
  store.check_ready();
  auto session = database.session();
  std::size_t applied = 0, not_found = 0;
  for (unsigned seed = 1; seed <= 30; ++seed) {
    session.query("DELETE FROM widgets");
    generator gen{std::mt19937(seed)};
    model_store model;
    for (int step = 0; step < 150; ++step) {
      const std::string body = gen.next_body();
      SCOPED_TRACE("seed " + std::to_string(seed) + " step " + std::to_string(step) + ": " + body);
      auto parsed = parse_request(body);
      ASSERT_TRUE(std::holds_alternative<widget_request>(parsed))
          << std::get<validation_error>(parsed).message();
      const auto& r = std::get<widget_request>(parsed);
      const auto expected = model.apply(r);
      ASSERT_EQ(store.apply(r), expected);
      (expected == apply_outcome::applied ? applied : not_found) += 1;
      // The widget touched, and the table's size: together, after every
      // step, the whole store.
      const auto it = model.widgets.find(r.widget_id);
      ASSERT_EQ(store.load(r.widget_id),
                it == model.widgets.end() ? std::nullopt : std::optional(by_name(it->second)));
      ASSERT_EQ(session.scalar("SELECT count(*) FROM widgets"),
                std::to_string(model.widgets.size()));
    }
    for (const auto& [id, expected] : model.widgets)
      ASSERT_EQ(store.load(id), by_name(expected));
  }
  // Both paths exercised, or the property says little.
  EXPECT_GT(applied, 2200U);
  EXPECT_GT(not_found, 550U);
  EXPECT_EQ(session.scalar("SELECT count(*) FROM widget_attributes a WHERE NOT EXISTS "
                           "(SELECT 1 FROM widgets w WHERE w.id = a.widget_id)"),
            "0");
}

}  // namespace
}  // namespace widget_consumer
