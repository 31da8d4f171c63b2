#pragma once
// A widget as the stores hold it, and what requests do to it.
//
// CONTRACT (fixed): the types below. apply_update(), the S3 key and JSON
// document, and the DynamoDB item and UpdateItem/DeleteItem are filled in by
// the request work (issue 4).

#include <optional>
#include <string>
#include <vector>

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

}  // namespace widget_consumer
