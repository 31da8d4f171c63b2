#pragma once
// A widget as the stores hold it, and what requests do to it: the widget,
// make_widget(), apply_update(), and the S3 key and JSON document. The
// DynamoDB item and requests are in destination/detail/dynamodb_widget.hpp.
//
// CONTRACT (fixed): the types below.
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

#include <boost/json.hpp>

#include <algorithm>
#include <cstddef>
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

}  // namespace widget_consumer
