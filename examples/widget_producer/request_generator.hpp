#pragma once
// Generates widget requests the way the course's producer does: about 55%
// creates, 37% updates and 8% deletes, updates and deletes always naming a
// widget that exists at that point in the sequence, owners and attribute names
// like the course's. Seeded, so a run can be reproduced, and it keeps the state
// the requests lead to, so a consumer's result can be checked against it.

#include <widget_consumer/request.hpp>
#include <widget_consumer/widget.hpp>

#include <boost/json.hpp>

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace widget_producer {

struct generated_request {
  std::string body;       // the JSON as it goes on the wire
  std::string widget_id;  // empty for some invalid requests
  bool valid = true;      // false for the ones mixed in on purpose
  std::string_view type = "create";
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
    auto body = boost::json::serialize(request);
    apply(body);
    return {std::move(body), widget_id, true, type};
  }

  // Keeps the expected state by applying the request through the library's
  // own semantics, the same code the stores use.
  void apply(const std::string& body) {
    auto parsed = widget_consumer::parse_request(body);
    const auto& request = std::get<widget_consumer::widget_request>(parsed);
    switch (request.type) {
      case widget_consumer::request_type::create:
        live_.insert_or_assign(request.widget_id, widget_consumer::make_widget(request));
        break;
      case widget_consumer::request_type::update:
        widget_consumer::apply_update(live_.at(request.widget_id), request);
        break;
      case widget_consumer::request_type::remove:
        live_.erase(request.widget_id);
        break;
    }
  }

  generated_request create() {
    const auto widget_id = uuid();
    auto request = envelope("create", widget_id, owners[index(owners.size())]);
    request["label"] = letters(3, 10);
    request["description"] = letters(20, 120);
    boost::json::array others;
    for (auto& [name, value] : attributes())
      others.push_back({{"name", name}, {"value", value}});
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

  // The kinds of bad input the course's edge cases name; none changes the
  // expected state.
  generated_request invalid_request() {
    switch (index(6)) {
      case 0:
        return {"", "", false, "invalid"};
      case 1:
        return {R"({"widgetId":"bad"})", "bad", false, "invalid"};
      case 2: {
        auto request = envelope("bad", uuid(), "Sue Smith");
        return {boost::json::serialize(request), "", false, "invalid"};
      }
      case 3: {
        auto request = envelope("create", uuid(), "R2D2");
        return {boost::json::serialize(request), "", false, "invalid"};
      }
      case 4:
        return {R"({"type":"create","requestId":"r","widgetId":)", "", false, "invalid"};
      default: {
        auto request = envelope("create", uuid(), "Jane Doe");
        request["otherAttributes"] = boost::json::array{{{"name", "color"}}};
        return {boost::json::serialize(request), "", false, "invalid"};
      }
    }
  }

  std::mt19937_64 random_;
  double invalid_ratio_;
  std::map<std::string, widget_consumer::widget> live_;
};

}  // namespace widget_producer
