#pragma once
// Requests and a widget that the unit tests of the widget and its stored
// forms start from.

#include <widget_consumer/request.hpp>
#include <widget_consumer/widget.hpp>

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace widget_samples {

using namespace widget_consumer;

// A body that must parse; a failure is reported and an empty request returned.
inline widget_request request(std::string_view body) {
  auto result = parse_request(body);
  if (const auto* error = std::get_if<validation_error>(&result)) {
    ADD_FAILURE() << error->message() << " for " << body;
    return {};
  }
  return std::get<widget_request>(std::move(result));
}

// A create or update of widget w1 owned by Mary Jo, with `extra` (such as
// R"(,"label":"x")") spliced in.
inline std::string create_body(std::string_view extra) {
  return R"({"type":"create","requestId":"r","widgetId":"w1","owner":"Mary Jo")" +
         std::string(extra) + "}";
}
inline std::string update_body(std::string_view extra) {
  return R"({"type":"update","requestId":"r","widgetId":"w1","owner":"Mary Jo")" +
         std::string(extra) + "}";
}

inline widget sample() {
  return widget{.widget_id = "w1",
                .owner = "Mary Jo",
                .label = "label",
                .description = "description",
                .other_attributes = {{"color", "red"}, {"size", "3"}}};
}

}  // namespace widget_samples
