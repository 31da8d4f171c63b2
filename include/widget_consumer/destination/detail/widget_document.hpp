#pragma once
// A widget as the S3 and directory stores hold it (DESIGN.md): one JSON
// document per widget, at a key built from its owner and id.
//
// Decisions:
// - The key is {prefix}{owner lowercased, each space -> '-'}/{widgetId}: the
//   layout of the course's S3 store, which the directory store keeps on disk
//   (the key is then a path under its folder).
// - The document always has all five keys; an unset label or description
//   is null. widget_from_json() also accepts them missing.

#include <boost/json.hpp>

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <widget_consumer/detail/json_text.hpp>
#include <widget_consumer/widget.hpp>

namespace widget_consumer {

struct widget_key_layout {
  std::string prefix = "widgets/";
  bool owner_in_key = true;  // false: {prefix}{widgetId}
};

// {prefix}{owner lowercased, each space -> '-'}/{widgetId}. The owner is
// [A-Za-z ]+ once parsed; other bytes are kept as they are.
inline std::string widget_key(std::string_view owner, std::string_view widget_id,
                              const widget_key_layout& layout = {}) {
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

// The stored document: an S3 object's body, a file's contents.
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
