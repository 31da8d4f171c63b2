#pragma once
// A widget request as the producer writes it, and parse_request(), which
// turns raw bytes into one or into a validation_error that names the field.
//
// Decisions the schema leaves open:
// - Unknown fields (top level, or inside an otherAttributes entry) are not
//   errors: they are kept out of the widget and listed in unknown_fields as
//   JSON paths, so the consumer can log them.
// - otherAttributes: null is the same as missing. Each entry needs a non-empty
//   string name and a value that is a string or null (a missing value is an
//   error, so a typo such as "vlaue" does not pass as "leave alone").
// - An attribute name equal to widgetId, owner, label or description is
//   invalid: it would stand for the widget's own property. "id" is an
//   ordinary name here; the DynamoDB store, whose table is keyed by id,
//   refuses it (destination/detail/dynamodb_widget.hpp).
// - The same attribute name twice in one request is invalid
//   ("otherAttributes[3].name: duplicate \"color\" (first at [1])"): a silent
//   last-wins would drop one of the producer's values without telling anyone.
// - Duplicate keys in a JSON object are resolved by Boost.JSON: the last wins.
// - Errors are reported for the first bad field in the order type, requestId,
//   widgetId, owner, label, description, otherAttributes (by index).

#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <widget_consumer/detail/json_text.hpp>

namespace widget_consumer {

/// The three things a request can ask for.
enum class request_type { create, update, remove };  // "delete" on the wire

/// One entry of otherAttributes. value: nullopt = null in the request (not
/// stored by a create, left alone by an update); "" = stored as "" by a create,
/// removes the attribute in an update; else the value.
struct request_attribute {
  std::string name;                  ///< the attribute's name
  std::optional<std::string> value;  ///< its value; see above

  /// Field-by-field equality.
  friend bool operator==(const request_attribute&, const request_attribute&) = default;
};

/// A parsed, valid widget request: what the store applies.
struct widget_request {
  request_type type = request_type::create;  ///< create, update or delete
  std::string request_id;                    ///< the producer's id, for logs
  std::string widget_id;                     ///< the widget it is about
  std::string owner;                         ///< letters and spaces; part of the widget's key
  /// nullopt = missing or null (absent after a create, left alone by an
  /// update); "" = stored as "" by a create, removed by an update.
  std::optional<std::string> label;
  std::optional<std::string> description;           ///< as label
  std::vector<request_attribute> other_attributes;  ///< in request order
  /// JSON paths of fields the schema does not know ("color",
  /// "otherAttributes[0].unit"), in document order; for debug logs only.
  std::vector<std::string> unknown_fields;

  /// Field-by-field equality.
  friend bool operator==(const widget_request&, const widget_request&) = default;
};

/// Why a request is invalid: the field (a JSON path such as
/// "otherAttributes[2].value", or "body") and the problem.
struct validation_error {
  std::string field;    ///< a JSON path, or "body"
  std::string problem;  ///< what is wrong with it

  /// "owner: \"R2D2\" does not match [A-Za-z ]+"
  std::string message() const { return field + ": " + problem; }

  /// Field-by-field equality.
  friend bool operator==(const validation_error&, const validation_error&) = default;
};

/// What parse_request returns: the request, or why it is invalid.
using parse_result = std::variant<widget_request, validation_error>;

/// What parse_request accepts beyond the schema.
struct parse_options {
  std::size_t max_body_bytes = 1024 * 1024;  ///< rejected before parsing
};

/// "create", "update" or "delete" (the wire's names).
inline std::string_view to_string(request_type type) noexcept {
  switch (type) {
    case request_type::create:
      return "create";
    case request_type::update:
      return "update";
    case request_type::remove:
      return "delete";
  }
  return "unknown";
}

/// Attribute names that would collide with the widget's own properties.
inline constexpr std::array<std::string_view, 4> reserved_attribute_names = {
    "widgetId", "owner", "label", "description"};

/// True for a name reserved_attribute_names holds.
inline bool is_reserved_attribute_name(std::string_view name) noexcept {
  return std::find(reserved_attribute_names.begin(), reserved_attribute_names.end(), name) !=
         reserved_attribute_names.end();
}

/// True for an owner of letters and spaces only, as the schema requires.
inline bool is_valid_owner(std::string_view owner) noexcept {
  return !owner.empty() && std::all_of(owner.begin(), owner.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == ' ';
  });
}

namespace detail {

// The field currently being validated fails; the caller turns this into the
// parse_result. An exception keeps the field checks linear and readable and
// never leaves parse_request().
struct request_invalid {
  validation_error error;
};

[[noreturn]] inline void fail(std::string field, std::string problem) {
  throw request_invalid{{std::move(field), std::move(problem)}};
}

inline std::string expected(std::string_view what, const boost::json::value& got) {
  return "expected " + std::string(what) + ", got " + std::string(kind_name(got.kind()));
}

inline std::string required_string(const boost::json::object& object, std::string_view key,
                                   const std::string& path) {
  const auto* value = object.if_contains(key);
  if (value == nullptr)
    fail(path, "missing");
  if (!value->is_string())
    fail(path, expected("a string", *value));
  const auto& text = value->get_string();
  if (text.empty())
    fail(path, "empty");
  return std::string(text.data(), text.size());
}

// Missing and null both give nullopt.
inline std::optional<std::string> optional_string(const boost::json::object& object,
                                                  std::string_view key, const std::string& path) {
  const auto* value = object.if_contains(key);
  if (value == nullptr || value->is_null())
    return std::nullopt;
  if (!value->is_string())
    fail(path, expected("a string or null", *value));
  const auto& text = value->get_string();
  return std::string(text.data(), text.size());
}

inline request_type parse_type(const boost::json::object& object) {
  const std::string text = required_string(object, "type", "type");
  if (text == "create" || text == "WidgetCreateRequest")
    return request_type::create;
  if (text == "update" || text == "WidgetUpdateRequest")
    return request_type::update;
  if (text == "delete" || text == "WidgetDeleteRequest")
    return request_type::remove;
  fail("type", detail::quoted(text) +
                   " is not create, update, delete, WidgetCreateRequest, WidgetUpdateRequest or "
                   "WidgetDeleteRequest");
}

inline void parse_attributes(const boost::json::value& list, widget_request& request) {
  if (list.is_null())
    return;
  if (!list.is_array())
    fail("otherAttributes", expected("an array", list));
  const auto& entries = list.get_array();
  std::vector<std::pair<std::string_view, std::size_t>> seen;  // name -> first index, sorted
  seen.reserve(entries.size());
  request.other_attributes.reserve(entries.size());
  for (std::size_t index = 0; index < entries.size(); ++index) {
    const std::string path = "otherAttributes[" + std::to_string(index) + "]";
    const auto& entry = entries[index];
    if (!entry.is_object())
      fail(path, expected("an object", entry));
    const auto& object = entry.get_object();
    const std::string name_path = path + ".name";
    std::string name = required_string(object, "name", name_path);
    if (is_reserved_attribute_name(name))
      fail(name_path, detail::quoted(name) + " is reserved for the widget's own property");
    // Keys of the JSON object outlive this loop, so views into them are safe.
    std::string_view key = std::string_view(object.find("name")->value().get_string());
    auto at = std::lower_bound(seen.begin(), seen.end(), key,
                               [](const auto& item, std::string_view k) { return item.first < k; });
    if (at != seen.end() && at->first == key) {
      fail(name_path, "duplicate " + detail::quoted(name) + " (first at [" +
                          std::to_string(at->second) + "])");
    }
    seen.insert(at, {key, index});
    if (!object.contains("value"))
      fail(path + ".value", "missing");
    auto value = optional_string(object, "value", path + ".value");
    for (const auto& field : object) {
      if (field.key() != "name" && field.key() != "value") {
        request.unknown_fields.push_back(path + "." + std::string(field.key()));
      }
    }
    request.other_attributes.push_back({std::move(name), std::move(value)});
  }
}

inline widget_request parse_request_object(const boost::json::value& document) {
  if (!document.is_object())
    fail("body", expected("a JSON object", document));
  const auto& object = document.get_object();
  widget_request request;
  request.type = parse_type(object);
  request.request_id = required_string(object, "requestId", "requestId");
  request.widget_id = required_string(object, "widgetId", "widgetId");
  request.owner = required_string(object, "owner", "owner");
  if (!is_valid_owner(request.owner))
    fail("owner", detail::quoted(request.owner) + " does not match [A-Za-z ]+");
  request.label = optional_string(object, "label", "label");
  request.description = optional_string(object, "description", "description");
  if (const auto* list = object.if_contains("otherAttributes"))
    parse_attributes(*list, request);

  static constexpr std::array<std::string_view, 7> known = {
      "type", "requestId", "widgetId", "owner", "label", "description", "otherAttributes"};
  std::vector<std::string> unknown;
  for (const auto& field : object) {
    const std::string_view key = field.key();
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      unknown.push_back(std::string(key));
    }
  }
  // Top-level names first, then the paths found inside otherAttributes.
  unknown.insert(unknown.end(), std::make_move_iterator(request.unknown_fields.begin()),
                 std::make_move_iterator(request.unknown_fields.end()));
  request.unknown_fields = std::move(unknown);
  return request;
}

}  // namespace detail

/// Raw bytes (an S3 object or an SQS message body) to a request. Never throws
/// for bad input (only std::bad_alloc can escape): every problem comes back as
/// a validation_error naming the field.
inline parse_result parse_request(std::string_view body, const parse_options& options = {}) {
  if (body.size() > options.max_body_bytes) {
    return validation_error{"body", std::to_string(body.size()) + " bytes exceeds the limit of " +
                                        std::to_string(options.max_body_bytes)};
  }
  auto parsed = detail::parse_json_text(body);
  if (auto* problem = std::get_if<std::string>(&parsed)) {
    return validation_error{"body", std::move(*problem)};
  }
  try {
    return detail::parse_request_object(std::get<boost::json::value>(parsed));
  } catch (detail::request_invalid& invalid) {
    return std::move(invalid.error);
  }
}

}  // namespace widget_consumer
