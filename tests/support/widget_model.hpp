#pragma once

// The reference model of DESIGN.md's request semantics, and a random source
// of request bodies to drive it, shared by the property tests of every store.
// The model is written from the spec, not with make_widget()/apply_update():
// a model built from the code under test would share its mistakes (it once
// hid that a create dropped empty strings).

#include <widget_consumer/request.hpp>
#include <widget_consumer/store_error.hpp>
#include <widget_consumer/widget.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace widget_consumer::testing {

struct widget_model {
  std::map<std::string, widget> widgets;

  // create: all the request's data as given; "" is data, null is no value; a
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
  // else sets it (an attribute set anew keeps its place; a new one goes last);
  // id and owner never change.
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

// What random_request_bodies draws from: few ids and owners, so that one
// widget gets many requests; awkward names and values, so that quoting and
// escaping in every store are exercised.
struct request_vocabulary {
  std::vector<std::string> ids;
  std::vector<std::string> owners;  // owners[i] owns ids[i]
  std::vector<std::string> types;   // repeated entries weigh the draw
  std::vector<std::string> attribute_names;
  std::vector<std::string> values;
  bool creates_by_other_owners = true;  // may a create name another owner?
};

struct random_request_bodies {
  std::mt19937 random;
  request_vocabulary words;

  std::size_t below(std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(random);
  }
  bool chance(double p) { return std::bernoulli_distribution(p)(random); }

  // missing (nothing added), null, "", or a value
  void maybe_string(boost::json::object& body, std::string_view key) {
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
        body[key] = words.values[below(words.values.size())];
    }
  }

  std::string next_body() {
    const std::size_t which = below(words.ids.size());
    const std::string type = words.types[below(words.types.size())];
    // Mostly the widget's own owner; sometimes another, and anyone may shout.
    std::string owner = words.owners[which];
    if ((type != "create" || words.creates_by_other_owners) && chance(0.1))
      owner = words.owners[below(words.owners.size())];
    if (chance(0.05))
      std::transform(owner.begin(), owner.end(), owner.begin(),
                     [](char c) { return static_cast<char>(std::toupper(c)); });
    boost::json::object body{
        {"type", type}, {"requestId", "r"}, {"widgetId", words.ids[which]}, {"owner", owner}};
    maybe_string(body, "label");
    maybe_string(body, "description");
    std::vector<std::string> chosen = words.attribute_names;
    std::shuffle(chosen.begin(), chosen.end(), random);
    boost::json::array attributes;
    for (std::size_t i = 0, n = below(std::min<std::size_t>(5, chosen.size() + 1)); i < n; ++i) {
      boost::json::object attribute{{"name", chosen[i]}};
      maybe_string(attribute, "value");
      if (!attribute.contains("value"))
        attribute["value"] = "v" + std::to_string(below(3));
      attributes.push_back(std::move(attribute));
    }
    if (!attributes.empty() || chance(0.5))
      body["otherAttributes"] = std::move(attributes);
    return boost::json::serialize(body);
  }
};

}  // namespace widget_consumer::testing
