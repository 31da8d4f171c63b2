#pragma once
// Generates widget requests the way the course's producer does: about 55%
// creates, 37% updates and 8% deletes, updates and deletes always naming a
// widget that exists at that point in the sequence, owners and attribute names
// like the course's. Seeded, so a run can be reproduced, and it keeps the state
// the requests lead to, so a consumer's result can be checked against it.
// Shared by the tests (the expected state) and examples/widget_producer (the
// requests), so that what the tests check is what the producer writes.

#include <widget_consumer/widget.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace widget_producer {

struct generated_request {
  std::string body;                  // the JSON as it goes on the wire
  std::string widget_id = {};        // empty for some invalid requests
  bool valid = true;                 // false for the ones mixed in on purpose
  std::string_view type = "create";  // "invalid" for those
};

class request_generator {
 public:
  // invalid_ratio: the share of requests made invalid on purpose (0 to 1).
  explicit request_generator(std::uint64_t seed, double invalid_ratio = 0.0)
      : random_(seed), invalid_ratio_(invalid_ratio) {}

  generated_request next() {
    if (invalid_ratio_ > 0 && chance(invalid_ratio_))
      return invalid_request();
    const double roll = uniform();
    if (live_.empty() || roll < 0.55)
      return create();
    if (roll < 0.92)
      return update();
    return remove();
  }

  // The widgets the requests so far leave behind, by widget id.
  const std::map<std::string, widget_consumer::widget>& expected_widgets() const { return live_; }

 private:
  static constexpr std::array owners{"Mary Matthews", "Sue Smith",       "John Jones",
                                     "Henry Hops",    "Jane Doe",        "Bob Builder",
                                     "Ann Anderson",  "Mary Anne Miller"};
  static constexpr std::array units{"cm", "in", "mm", "ft"};

  double uniform() { return std::uniform_real_distribution<double>(0, 1)(random_); }
  bool chance(double p) { return uniform() < p; }
  std::size_t index(std::size_t size) {
    return std::uniform_int_distribution<std::size_t>(0, size - 1)(random_);
  }

  std::string letters(std::size_t min, std::size_t max) {
    std::string text(min + index(max - min + 1), ' ');
    for (auto& c : text)
      c = static_cast<char>('A' + index(26));
    return text;
  }

  std::string number(int max) { return std::to_string(1 + index(static_cast<std::size_t>(max))); }

  std::string uuid() {
    static constexpr char hex[] = "0123456789abcdef";
    std::string id = "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx";
    for (auto& c : id) {
      if (c == 'x')
        c = hex[index(16)];
      if (c == 'y')
        c = hex[8 + index(4)];
    }
    return id;
  }

  // Attribute name/value pairs in the producer's shape: a few measures with
  // their units, a rating, a price, and sometimes a long note.
  std::vector<std::pair<std::string, std::string>> attributes() {
    std::vector<std::pair<std::string, std::string>> result;
    for (std::string_view measure : {"width", "length", "height", "size"}) {
      if (!chance(0.6))
        continue;
      result.emplace_back(measure, number(999));
      result.emplace_back(std::string(measure) + "-unit", units[index(units.size())]);
    }
    if (chance(0.5))
      result.emplace_back("rating", std::to_string(uniform() * 5).substr(0, 8));
    if (chance(0.5))
      result.emplace_back("price", number(9999) + ".99");
    if (chance(0.3))
      result.emplace_back("quantity", number(500));
    if (chance(0.3))
      result.emplace_back("vendor", letters(5, 12));
    if (chance(0.3))
      result.emplace_back("note", letters(40, 300));
    return result;
  }

  boost::json::object envelope(std::string_view type, const std::string& widget_id,
                               const std::string& owner) {
    return {{"type", type}, {"requestId", uuid()}, {"widgetId", widget_id}, {"owner", owner}};
  }

  generated_request finish(boost::json::object request, std::string_view type,
                           const std::string& widget_id) {
    apply(request);
    return {.body = boost::json::serialize(request), .widget_id = widget_id, .type = type};
  }

  // Keeps the expected state by applying DESIGN.md's semantics to the request
  // as sent, in code of its own: the end-to-end checks compare the stores
  // with this, so it must not share a mistake with make_widget() or
  // apply_update().
  void apply(const boost::json::object& request) {
    const std::string type(request.at("type").as_string());
    const std::string widget_id(request.at("widgetId").as_string());
    auto text = [](const boost::json::value* value) -> std::optional<std::string> {
      if (value == nullptr || value->is_null())
        return std::nullopt;  // missing or null: no value
      return std::string(value->as_string());
    };
    auto attributes = [&](auto&& each) {
      if (const auto* list = request.if_contains("otherAttributes"))
        for (const auto& entry : list->as_array())
          each(std::string(entry.at("name").as_string()),
               text(entry.as_object().if_contains("value")));
    };
    if (type == "create") {
      // Everything but type and requestId, exactly as given: "" is a value.
      widget_consumer::widget w{.widget_id = widget_id,
                                .owner = std::string(request.at("owner").as_string()),
                                .label = text(request.if_contains("label")),
                                .description = text(request.if_contains("description")),
                                .other_attributes = {}};
      attributes([&](std::string name, std::optional<std::string> value) {
        if (value)
          w.other_attributes.push_back({std::move(name), std::move(*value)});
      });
      live_.insert_or_assign(widget_id, std::move(w));
    } else if (type == "update") {
      // Only what the request mentions: null leaves alone, "" removes.
      auto& w = live_.at(widget_id);
      for (auto [property, key] :
           {std::pair{&w.label, "label"}, std::pair{&w.description, "description"}}) {
        if (auto value = text(request.if_contains(key)))
          *property = value->empty() ? std::nullopt : std::move(value);
      }
      attributes([&](const std::string& name, std::optional<std::string> value) {
        if (!value)
          return;
        auto& list = w.other_attributes;
        auto at =
            std::find_if(list.begin(), list.end(), [&](const auto& a) { return a.name == name; });
        if (value->empty()) {
          if (at != list.end())
            list.erase(at);
        } else if (at != list.end()) {
          at->value = std::move(*value);
        } else {
          list.push_back({name, std::move(*value)});
        }
      });
    } else {
      live_.erase(widget_id);
    }
  }

  generated_request create() {
    const auto widget_id = uuid();
    auto request = envelope("create", widget_id, owners[index(owners.size())]);
    // Some creates carry "" (data, stored as "") or null (no value), as
    // real request streams do.
    request["label"] = chance(0.08) ? "" : letters(3, 10);
    request["description"] = chance(0.08)   ? boost::json::value("")
                             : chance(0.05) ? boost::json::value(nullptr)
                                            : boost::json::value(letters(20, 120));
    boost::json::array others;
    for (auto& [name, value] : attributes())
      others.push_back({{"name", name}, {"value", chance(0.03) ? std::string() : value}});
    request["otherAttributes"] = std::move(others);
    return finish(std::move(request), "create", widget_id);
  }

  const widget_consumer::widget& some_live_widget() {
    auto it = live_.begin();
    std::advance(it, static_cast<std::ptrdiff_t>(index(live_.size())));
    return it->second;
  }

  // An update mentions some properties: new values, some removals ("") and
  // some explicit nulls (left alone).
  generated_request update() {
    const auto& target = some_live_widget();
    const auto widget_id = target.widget_id;
    auto request = envelope("update", widget_id, target.owner);
    if (chance(0.5))
      request["label"] = chance(0.15) ? "" : letters(3, 10);
    if (chance(0.4))
      request["description"] =
          chance(0.2) ? boost::json::value(nullptr) : boost::json::value(letters(20, 120));
    boost::json::array others;
    for (const auto& existing : target.other_attributes)
      if (chance(0.2))
        others.push_back({{"name", existing.name}, {"value", ""}});
    for (auto& [name, value] : attributes())
      if (chance(0.4))
        others.push_back({{"name", name}, {"value", value}});
    // Names must stay unique within one request.
    std::map<std::string, boost::json::value> unique;
    for (auto& entry : others)
      unique.emplace(entry.as_object().at("name").as_string(), entry);
    boost::json::array deduplicated;
    for (auto& [name, entry] : unique)
      deduplicated.push_back(entry);
    if (!deduplicated.empty())
      request["otherAttributes"] = std::move(deduplicated);
    return finish(std::move(request), "update", widget_id);
  }

  generated_request remove() {
    const auto& target = some_live_widget();
    const auto widget_id = target.widget_id;
    return finish(envelope("delete", widget_id, target.owner), "delete", widget_id);
  }

  static generated_request invalid(std::string body, std::string widget_id = {}) {
    return {.body = std::move(body),
            .widget_id = std::move(widget_id),
            .valid = false,
            .type = "invalid"};
  }

  // The kinds of bad input the course's edge cases name; none changes the
  // expected state.
  generated_request invalid_request() {
    switch (index(6)) {
      case 0:
        return invalid("");
      case 1:
        return invalid(R"({"widgetId":"bad"})", "bad");
      case 2:
        return invalid(boost::json::serialize(envelope("bad", uuid(), "Sue Smith")));
      case 3:
        return invalid(boost::json::serialize(envelope("create", uuid(), "R2D2")));
      case 4:
        return invalid(R"({"type":"create","requestId":"r","widgetId":)");
      default: {
        auto request = envelope("create", uuid(), "Jane Doe");
        request["otherAttributes"] = boost::json::array{{{"name", "color"}}};
        return invalid(boost::json::serialize(request));
      }
    }
  }

  std::mt19937_64 random_;
  double invalid_ratio_;
  std::map<std::string, widget_consumer::widget> live_;
};

}  // namespace widget_producer
