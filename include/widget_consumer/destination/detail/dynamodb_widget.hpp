#pragma once
// The DynamoDB form of a widget (DESIGN.md): the item, and the PutItem,
// UpdateItem and DeleteItem bodies the DynamoDB store sends. The bodies hold
// everything but TableName, which aws::dynamodb_client adds to every call.
//
// Decisions:
// - An other attribute is a top-level attribute of the item, so it cannot be
//   named id (the table's key) nor like the widget's own properties:
//   reserved_attribute_name, which the store rejects. parse_request() lets
//   "id" through (only this layout needs it) and refuses the others.
// - Every name in an expression is a #placeholder (attribute names such as
//   width-unit or reserved words are not valid bare identifiers).
// - DynamoDB does not keep attribute order, so widget_from_dynamodb_item()
//   returns other attributes sorted by name (bytewise).
// - DynamoDB limits are checked before sending, as item_too_large: the full
//   item for a create, and the attributes an update sets (a lower bound of
//   the new item: an update that only overflows together with the stored
//   attributes fails in DynamoDB with a ValidationException).
// - An update whose expression would pass DynamoDB's 4 KB limit goes in the
//   same one UpdateItem, written in its other form (see dynamodb_update_item).

#include <boost/json.hpp>

#include <algorithm>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <widget_consumer/detail/json_text.hpp>
#include <widget_consumer/request.hpp>
#include <widget_consumer/widget.hpp>

namespace widget_consumer {

// DynamoDB would refuse the request: an item over 400 KB. Not retryable.
class item_too_large : public std::runtime_error {
 public:
  item_too_large(std::string widget_id, std::size_t size, std::size_t limit, std::string what)
      : std::runtime_error("widget " + detail::quoted(widget_id) + ": " + what + " is " +
                           std::to_string(size) + " bytes, over DynamoDB's limit of " +
                           std::to_string(limit)),
        widget_id_(std::move(widget_id)),
        size_(size),
        limit_(limit) {}

  const std::string& widget_id() const noexcept { return widget_id_; }
  std::size_t size() const noexcept { return size_; }
  std::size_t limit() const noexcept { return limit_; }

 private:
  std::string widget_id_;
  std::size_t size_;
  std::size_t limit_;
};

// An other attribute named like an attribute the item holds for the widget
// itself (or like a property of the widget) would overwrite it. Not
// retryable.
class reserved_attribute_name : public std::invalid_argument {
 public:
  reserved_attribute_name(std::string name, std::string_view why)
      : std::invalid_argument("attribute name " + detail::quoted(name) +
                              " cannot be stored in DynamoDB: it is " + std::string(why)),
        name_(std::move(name)) {}

  const std::string& name() const noexcept { return name_; }

 private:
  std::string name_;
};

inline constexpr std::size_t dynamodb_item_limit = 400 * 1024;
inline constexpr std::size_t dynamodb_expression_limit = 4 * 1024;

namespace detail {

inline boost::json::object dynamodb_string(std::string_view value) {
  return boost::json::object{{"S", value}};
}

// DynamoDB's rule for string attributes: name bytes + value bytes (UTF-8).
inline std::size_t dynamodb_attribute_size(std::string_view name, std::string_view value) {
  return name.size() + value.size();
}

inline std::size_t dynamodb_item_size(const boost::json::object& item) {
  std::size_t size = 0;
  for (const auto& field : item) {
    size += dynamodb_attribute_size(field.key(), field.value().at("S").get_string());
  }
  return size;
}

inline void check_item_size(const std::string& widget_id, std::size_t size, const char* what) {
  if (size > dynamodb_item_limit)
    throw item_too_large(widget_id, size, dynamodb_item_limit, what);
}

inline void check_attribute_name(std::string_view name) {
  if (name == "id")
    throw reserved_attribute_name(std::string(name), "the table's key, the widget's id");
  if (is_reserved_attribute_name(name))
    throw reserved_attribute_name(std::string(name), "the widget's own property");
  // The fence's attributes (detail/dynamodb_fence.hpp), with or without
  // fencing, so that a table reads the same either way.
  if (name.starts_with("_wc_"))
    throw reserved_attribute_name(std::string(name),
                                  "in the _wc_ names the store keeps its fence in");
}

inline boost::json::object dynamodb_key(std::string_view widget_id) {
  return boost::json::object{{"id", dynamodb_string(widget_id)}};
}

// The widget must exist and belong to the request's owner, so that a missing
// widget or a foreign one fails with ConditionalCheckFailedException.
inline void add_owner_condition(boost::json::object& body, std::string_view owner) {
  body["ConditionExpression"] = "attribute_exists(#id) AND #owner = :owner";
  body["ExpressionAttributeNames"] = boost::json::object{{"#id", "id"}, {"#owner", "owner"}};
  body["ExpressionAttributeValues"] = boost::json::object{{":owner", dynamodb_string(owner)}};
}

}  // namespace detail

// The item the table holds for w.
inline boost::json::object dynamodb_item(const widget& w) {
  boost::json::object item;
  item["id"] = detail::dynamodb_string(w.widget_id);
  item["owner"] = detail::dynamodb_string(w.owner);
  if (w.label)
    item["label"] = detail::dynamodb_string(*w.label);
  if (w.description)
    item["description"] = detail::dynamodb_string(*w.description);
  for (const auto& attribute : w.other_attributes) {
    detail::check_attribute_name(attribute.name);
    item[attribute.name] = detail::dynamodb_string(attribute.value);
  }
  detail::check_item_size(w.widget_id, detail::dynamodb_item_size(item), "the item");
  return item;
}

// Create: the full item, replacing any earlier one.
inline boost::json::object dynamodb_put_item(const widget& w) {
  return boost::json::object{{"Item", dynamodb_item(w)}};
}

namespace detail {

// The legacy form of the same UpdateItem: AttributeUpdates (PUT or DELETE per
// attribute) under Expected (owner EQ the request's; false when there is no
// item, so a missing widget fails the condition too). No expression, so only
// the 400 KB item bounds it.
inline boost::json::object dynamodb_update_item_without_expression(
    const widget_request& update, const std::vector<std::pair<std::string, std::string>>& changes) {
  boost::json::object updates;
  for (const auto& [name, value] : changes) {
    updates[name] = value.empty()
                        ? boost::json::object{{"Action", "DELETE"}}
                        : boost::json::object{{"Action", "PUT"}, {"Value", dynamodb_string(value)}};
  }
  boost::json::array owner_value{dynamodb_string(update.owner)};
  return boost::json::object{
      {"Key", dynamodb_key(update.widget_id)},
      {"Expected", boost::json::object{{"owner", boost::json::object{{"ComparisonOperator", "EQ"},
                                                                     {"AttributeValueList",
                                                                      std::move(owner_value)}}}}},
      {"AttributeUpdates", std::move(updates)}};
}

}  // namespace detail

// Update: one conditional UpdateItem. A request that changes nothing still
// sets owner to itself, so a missing widget is still reported.
//
// DynamoDB refuses an UpdateExpression over 4 KB (about 300 attributes),
// while a create of the same attributes is bounded by the 400 KB item only.
// Such an update is sent as the same single UpdateItem in its legacy form
// (detail::dynamodb_update_item_without_expression), which has no expression.
// Not split into several UpdateItems: each part could carry the owner
// condition, but a crash, a throttle or a size refusal between parts would
// leave half an update stored (and a rejected request half applied for
// good), and readers would see half updates. Not GetItem + PutItem of the
// whole new item: without an expression-sized condition on every attribute
// (itself capped at 4 KB) or a version attribute (which the item layout does
// not have), two consumers on a standard queue could lose one another's
// changes, which UpdateItem cannot. The legacy form keeps all that one call
// gives: atomic, conditional on the owner, idempotent (fixed puts and
// deletes). Updates that fit keep the expression form DESIGN.md names; the
// two forms cannot be mixed in one request.
namespace detail {

// What an update changes: name and value ("" = remove). The last mention of
// a name wins, as in apply_update(); DynamoDB rejects two actions on one path.
inline std::vector<std::pair<std::string, std::string>> dynamodb_changes_of(
    const widget_request& update) {
  std::vector<std::pair<std::string, std::string>> changes;
  auto change = [&](const std::string& name, const std::optional<std::string>& value) {
    if (!value)
      return;
    auto at = std::find_if(changes.begin(), changes.end(),
                           [&](const auto& c) { return c.first == name; });
    if (at != changes.end()) {
      at->second = *value;
    } else {
      changes.emplace_back(name, *value);
    }
  };
  change("label", update.label);
  change("description", update.description);
  for (const auto& attribute : update.other_attributes) {
    check_attribute_name(attribute.name);
    change(attribute.name, attribute.value);
  }
  return changes;
}

}  // namespace detail

inline boost::json::object dynamodb_update_item(const widget_request& update) {
  boost::json::object body{{"Key", detail::dynamodb_key(update.widget_id)}};
  detail::add_owner_condition(body, update.owner);
  auto& names = body["ExpressionAttributeNames"].get_object();
  auto& values = body["ExpressionAttributeValues"].get_object();
  const auto changes = detail::dynamodb_changes_of(update);

  std::string set_clause;
  std::string remove_clause;
  std::size_t set_size = detail::dynamodb_attribute_size("id", update.widget_id) +
                         detail::dynamodb_attribute_size("owner", update.owner);
  std::size_t attribute_index = 0;
  for (const auto& [name, value] : changes) {
    const bool fixed = name == "label" || name == "description";
    const std::string suffix = fixed ? name : std::to_string(attribute_index++);
    const std::string placeholder = "#" + suffix;
    names[placeholder] = name;
    if (value.empty()) {
      remove_clause += (remove_clause.empty() ? "REMOVE " : ", ") + placeholder;
    } else {
      const std::string value_placeholder = ":" + (fixed ? name : "v" + suffix);
      set_clause += (set_clause.empty() ? "SET " : ", ") + placeholder + " = " + value_placeholder;
      values[value_placeholder] = detail::dynamodb_string(value);
      set_size += detail::dynamodb_attribute_size(name, value);
    }
  }
  if (set_clause.empty() && remove_clause.empty())
    set_clause = "SET #owner = :owner";
  std::string expression = set_clause;
  if (!remove_clause.empty())
    expression += (expression.empty() ? "" : " ") + remove_clause;

  detail::check_item_size(update.widget_id, set_size, "the updated attributes");
  if (expression.size() > dynamodb_expression_limit)
    return detail::dynamodb_update_item_without_expression(update, changes);
  body["UpdateExpression"] = std::move(expression);
  return body;
}

// Delete: one conditional DeleteItem; ALL_OLD tells what was removed.
inline boost::json::object dynamodb_delete_item(const widget_request& remove) {
  boost::json::object body{{"Key", detail::dynamodb_key(remove.widget_id)}};
  detail::add_owner_condition(body, remove.owner);
  body["ReturnValues"] = "ALL_OLD";
  return body;
}

// An item as GetItem/DeleteItem return it ({"id":{"S":"..."}, ...}).
// Throws std::runtime_error("DynamoDB item: <attribute>: <problem>").
inline widget widget_from_dynamodb_item(const boost::json::object& item) {
  auto string_of = [](std::string_view name, const boost::json::value& value) {
    const auto* typed = value.if_object();
    const auto* text = typed && typed->size() == 1 ? typed->if_contains("S") : nullptr;
    if (text == nullptr || !text->is_string()) {
      throw std::runtime_error("DynamoDB item: " + detail::quoted(name) +
                               ": expected a string attribute ({\"S\": ...})");
    }
    return std::string(text->get_string());
  };
  widget result;
  bool has_id = false;
  bool has_owner = false;
  for (const auto& field : item) {
    const std::string_view name = field.key();
    if (name.starts_with("_wc_"))
      continue;  // the fence's (detail/dynamodb_fence.hpp), not the widget's
    std::string value = string_of(name, field.value());
    if (name == "id") {
      result.widget_id = std::move(value);
      has_id = true;
    } else if (name == "owner") {
      result.owner = std::move(value);
      has_owner = true;
    } else if (name == "label") {
      result.label = std::move(value);
    } else if (name == "description") {
      result.description = std::move(value);
    } else {
      result.other_attributes.push_back({std::string(name), std::move(value)});
    }
  }
  if (!has_id)
    throw std::runtime_error("DynamoDB item: \"id\": missing");
  if (!has_owner)
    throw std::runtime_error("DynamoDB item: \"owner\": missing");
  std::sort(result.other_attributes.begin(), result.other_attributes.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  return result;
}

}  // namespace widget_consumer
