#pragma once
// A widget as the stores hold it, and what requests do to it.
//
// CONTRACT (fixed): the types below. apply_update(), the S3 key and JSON
// document, and the DynamoDB item and UpdateItem/DeleteItem are filled in by
// the request work (issue 4).
//
// Decisions:
// - make_widget(): a create stores its data exactly as given (DESIGN.md): ""
//   is a value and is stored as "" (only an update reads "" as "remove");
//   null, like a missing property, is no value.
// - apply_update(): changes only what the request mentions (missing or null:
//   left alone, "": removed); widget_id and owner never change. Attributes
//   keep their position when set again; new ones are appended.
// - The S3 document always has all five keys; an unset label or description
//   is null. widget_from_json() also accepts them missing.
// - DynamoDB: every name in an expression is a #placeholder (attribute names
//   such as width-unit or reserved words are not valid bare identifiers).
//   DynamoDB does not keep attribute order, so widget_from_dynamodb_item()
//   returns other attributes sorted by name (bytewise).
// - DynamoDB limits are checked before sending, as item_too_large: the full
//   item for a create, the attributes an update sets (a lower bound of the
//   new item: an update that only overflows together with the stored
//   attributes fails in DynamoDB with a ValidationException), and the 4 KB
//   expression limit.

#include <boost/json.hpp>

#include <algorithm>
#include <cstddef>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "detail/json_text.hpp"

#include "request.hpp"

namespace widget_consumer {

struct widget_attribute {
  std::string name;
  std::string value;

  friend bool operator==(const widget_attribute&, const widget_attribute&) = default;
};

struct widget {
  std::string widget_id;
  std::string owner;
  std::optional<std::string> label;                // nullopt = not set
  std::optional<std::string> description;          // nullopt = not set
  std::vector<widget_attribute> other_attributes;  // stable order: existing, then new

  friend bool operator==(const widget&, const widget&) = default;
};

namespace detail {

// nullopt: leave alone; "": remove; else set.
inline void apply_property(std::optional<std::string>& target,
                           const std::optional<std::string>& change) {
  if (!change)
    return;
  if (change->empty()) {
    target.reset();
  } else {
    target = *change;
  }
}

}  // namespace detail

// The widget a create stores: everything but type and request id.
inline widget make_widget(const widget_request& create) {
  widget result;
  result.widget_id = create.widget_id;
  result.owner = create.owner;
  result.label = create.label;
  result.description = create.description;
  for (const auto& attribute : create.other_attributes) {
    if (!attribute.value)
      continue;
    // A create that names an attribute twice (only possible when built by
    // hand; parse_request rejects it) keeps the last value, like an update.
    auto existing = std::find_if(result.other_attributes.begin(), result.other_attributes.end(),
                                 [&](const auto& a) { return a.name == attribute.name; });
    if (existing != result.other_attributes.end()) {
      existing->value = *attribute.value;
    } else {
      result.other_attributes.push_back({attribute.name, *attribute.value});
    }
  }
  return result;
}

// Checking that the widget exists and belongs to update.owner is the store's
// job; this only computes the new state.
inline void apply_update(widget& target, const widget_request& update) {
  detail::apply_property(target.label, update.label);
  detail::apply_property(target.description, update.description);
  for (const auto& attribute : update.other_attributes) {
    if (!attribute.value)
      continue;
    auto& list = target.other_attributes;
    auto existing = std::find_if(list.begin(), list.end(),
                                 [&](const auto& a) { return a.name == attribute.name; });
    if (attribute.value->empty()) {
      if (existing != list.end())
        list.erase(existing);  // erase keeps the others' order
    } else if (existing != list.end()) {
      existing->value = *attribute.value;
    } else {
      list.push_back({attribute.name, *attribute.value});
    }
  }
}

// ---- S3 ----------------------------------------------------------------

struct s3_layout {
  std::string prefix = "widgets/";
  bool owner_in_key = true;  // false: {prefix}{widgetId}
};

// {prefix}{owner lowercased, each space -> '-'}/{widgetId}. The owner is
// [A-Za-z ]+ once parsed; other bytes are kept as they are.
inline std::string s3_key(std::string_view owner, std::string_view widget_id,
                          const s3_layout& layout = {}) {
  std::string key = layout.prefix;
  if (layout.owner_in_key) {
    key.reserve(key.size() + owner.size() + 1 + widget_id.size());
    for (const char c : owner) {
      if (c == ' ') {
        key += '-';
      } else if (c >= 'A' && c <= 'Z') {
        key += static_cast<char>(c - 'A' + 'a');
      } else {
        key += c;
      }
    }
    key += '/';
  }
  key += widget_id;
  return key;
}

inline boost::json::object to_json_object(const widget& w) {
  boost::json::object document;
  document["widgetId"] = w.widget_id;
  document["owner"] = w.owner;
  document["label"] = w.label ? boost::json::value(*w.label) : boost::json::value(nullptr);
  document["description"] =
      w.description ? boost::json::value(*w.description) : boost::json::value(nullptr);
  boost::json::array attributes;
  attributes.reserve(w.other_attributes.size());
  for (const auto& attribute : w.other_attributes) {
    attributes.push_back(boost::json::object{{"name", attribute.name}, {"value", attribute.value}});
  }
  document["otherAttributes"] = std::move(attributes);
  return document;
}

// The S3 object body.
inline std::string to_json(const widget& w) {
  return boost::json::serialize(to_json_object(w));
}

namespace detail {

[[noreturn]] inline void bad_document(const std::string& field, const std::string& problem) {
  throw std::runtime_error("widget document: " + field + ": " + problem);
}

inline std::string document_string(const boost::json::object& object, std::string_view key,
                                   const std::string& path) {
  const auto* value = object.if_contains(key);
  if (value == nullptr)
    bad_document(path, "missing");
  if (!value->is_string())
    bad_document(path, "expected a string, got " + std::string(kind_name(value->kind())));
  return std::string(value->get_string());
}

inline std::optional<std::string> document_optional(const boost::json::object& object,
                                                    std::string_view key) {
  const auto* value = object.if_contains(key);
  if (value == nullptr || value->is_null())
    return std::nullopt;
  if (!value->is_string()) {
    bad_document(std::string(key),
                 "expected a string or null, got " + std::string(kind_name(value->kind())));
  }
  return std::string(value->get_string());
}

}  // namespace detail

// Reads what to_json() wrote (unknown keys are ignored). Throws
// std::runtime_error("widget document: <field>: <problem>").
inline widget widget_from_json(std::string_view document) {
  auto parsed = detail::parse_json_text(document);
  if (auto* problem = std::get_if<std::string>(&parsed))
    detail::bad_document("body", *problem);
  const auto& value = std::get<boost::json::value>(parsed);
  if (!value.is_object()) {
    detail::bad_document("body",
                         "expected an object, got " + std::string(detail::kind_name(value.kind())));
  }
  const auto& object = value.get_object();
  widget result;
  result.widget_id = detail::document_string(object, "widgetId", "widgetId");
  result.owner = detail::document_string(object, "owner", "owner");
  result.label = detail::document_optional(object, "label");
  result.description = detail::document_optional(object, "description");
  if (const auto* list = object.if_contains("otherAttributes"); list && !list->is_null()) {
    if (!list->is_array())
      detail::bad_document("otherAttributes", "expected an array");
    const auto& entries = list->get_array();
    for (std::size_t index = 0; index < entries.size(); ++index) {
      const std::string path = "otherAttributes[" + std::to_string(index) + "]";
      if (!entries[index].is_object())
        detail::bad_document(path, "expected an object");
      const auto& entry = entries[index].get_object();
      result.other_attributes.push_back({detail::document_string(entry, "name", path + ".name"),
                                         detail::document_string(entry, "value", path + ".value")});
    }
  }
  return result;
}

// ---- DynamoDB ----------------------------------------------------------

// DynamoDB would refuse the request: an item over 400 KB, or an update with
// more attributes than fit in one 4 KB expression. Not retryable.
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
  if (std::find(reserved_attribute_names.begin(), reserved_attribute_names.end(), name) !=
      reserved_attribute_names.end()) {
    throw std::invalid_argument("attribute name " + detail::quoted(name) + " is reserved");
  }
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
inline boost::json::object dynamodb_put_item(std::string_view table, const widget& w) {
  return boost::json::object{{"TableName", table}, {"Item", dynamodb_item(w)}};
}

// Update: one conditional UpdateItem. A request that changes nothing still
// sets owner to itself, so a missing widget is still reported.
inline boost::json::object dynamodb_update_item(std::string_view table,
                                                const widget_request& update) {
  boost::json::object body{{"TableName", table}, {"Key", detail::dynamodb_key(update.widget_id)}};
  detail::add_owner_condition(body, update.owner);
  auto& names = body["ExpressionAttributeNames"].get_object();
  auto& values = body["ExpressionAttributeValues"].get_object();

  // The last mention of a name wins, as in apply_update(); DynamoDB rejects
  // two actions on one path.
  std::vector<std::pair<std::string, std::string>> changes;  // name, value ("" = remove)
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
    detail::check_attribute_name(attribute.name);
    change(attribute.name, attribute.value);
  }

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
  if (expression.size() > dynamodb_expression_limit) {
    throw item_too_large(update.widget_id, expression.size(), dynamodb_expression_limit,
                         "the UpdateExpression");
  }
  body["UpdateExpression"] = std::move(expression);
  return body;
}

// Delete: one conditional DeleteItem; ALL_OLD tells what was removed.
inline boost::json::object dynamodb_delete_item(std::string_view table,
                                                const widget_request& remove) {
  boost::json::object body{{"TableName", table}, {"Key", detail::dynamodb_key(remove.widget_id)}};
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
