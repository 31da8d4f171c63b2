#pragma once
// A widget request as the producer writes it, and parse_request(), which
// turns raw bytes into one or into a validation_error that names the field.
//
// CONTRACT (fixed; the consumer and the stores are written against it): the
// types below. The functions are filled in by the request work (issue 4).

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace widget_consumer {

enum class request_type { create, update, remove };  // "delete" on the wire

// One entry of otherAttributes. value: nullopt = null in the request (leave the
// attribute alone on update), "" = remove it on update, else the new value.
struct request_attribute {
  std::string name;
  std::optional<std::string> value;
};

struct widget_request {
  request_type type = request_type::create;
  std::string request_id;
  std::string widget_id;
  std::string owner;
  // nullopt = missing or null (left alone by an update); "" = remove.
  std::optional<std::string> label;
  std::optional<std::string> description;
  std::vector<request_attribute> other_attributes;  // in request order
};

// Why a request is invalid: the field (a JSON path such as
// "otherAttributes[2].value", or "body") and the problem.
struct validation_error {
  std::string field;
  std::string problem;

  // "owner: \"R2D2\" does not match [A-Za-z ]+"
  std::string message() const { return field + ": " + problem; }
};

using parse_result = std::variant<widget_request, validation_error>;

struct parse_options {
  std::size_t max_body_bytes = 1024 * 1024;  // rejected before parsing
};

}  // namespace widget_consumer
