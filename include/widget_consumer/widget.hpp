#pragma once
// A widget, and what requests do to it: make_widget() and apply_update().
// No storage format here: the stores' forms are in destination/detail/
// (widget_document.hpp for the S3 and directory stores, dynamodb_widget.hpp
// for the DynamoDB store).
//
// Decisions:
// - make_widget(): a create stores its data exactly as given (DESIGN.md): ""
//   is a value and is stored as "" (only an update reads "" as "remove");
//   null, like a missing property, is no value.
// - apply_update(): changes only what the request mentions (missing or null:
//   left alone, "": removed); widget_id and owner never change. Attributes
//   keep their position when set again; new ones are appended.

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include <widget_consumer/request.hpp>

namespace widget_consumer {

/// A stored attribute of a widget (otherAttributes), name and value.
struct widget_attribute {
  std::string name;   ///< the attribute's name
  std::string value;  ///< as last set

  /// Field-by-field equality.
  friend bool operator==(const widget_attribute&, const widget_attribute&) = default;
};

/// A widget as a store holds it: what create makes and update changes (make_widget, apply_update).
struct widget {
  std::string widget_id;                           ///< the widget's id (widgetId)
  std::string owner;                               ///< letters and spaces
  std::optional<std::string> label;                ///< nullopt = not set
  std::optional<std::string> description;          ///< nullopt = not set
  std::vector<widget_attribute> other_attributes;  ///< stable order: existing, then new

  /// Field-by-field equality.
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

/// The widget a create stores: everything but type and request id.
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

/// Checking that the widget exists and belongs to update.owner is the store's
/// job; this only computes the new state.
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

}  // namespace widget_consumer
