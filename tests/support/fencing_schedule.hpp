#pragma once

// The fence's property, for any store with position_fencing: one widget's
// requests, each with a position rising in their order, are delivered in an
// order that keeps each request after its predecessors' first delivery but
// adds copies of requests already delivered anywhere later (duplicates,
// replays, a stalled consumer's late write). The store must end where the
// in-order, exactly-once run of the spec's model ends (widget_model.hpp).

#include <widget_consumer/position.hpp>
#include <widget_consumer/request.hpp>
#include <widget_consumer/store_error.hpp>

#include "support/widget_model.hpp"

#include <cstddef>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace widget_consumer::testing {

struct positioned_request {
  widget_request request;
  std::string position;
};

struct fencing_schedule {
  std::vector<positioned_request> in_order;
  std::vector<std::size_t> deliveries;  // indices into in_order
  std::optional<widget> expected;       // the in-order, exactly-once result
};

inline request_vocabulary one_widget_vocabulary(std::string id) {
  return {.ids = {std::move(id)},
          .owners = {"Sue Smith", "Bob Jones"},
          .types = {"create", "update", "update", "update", "delete"},
          .attribute_names = {"color", "size", "width-unit"},
          .values = {"red", "blue", "12", "x y"}};
}

// length requests of widget `id`; copies: how many extra deliveries.
inline fencing_schedule random_fencing_schedule(std::mt19937& random, const std::string& id,
                                                std::size_t length, std::size_t copies) {
  random_request_bodies bodies{.random = random, .words = one_widget_vocabulary(id)};
  bodies.random.seed(random());
  fencing_schedule schedule;
  widget_model model;
  for (std::size_t i = 0; i < length; ++i) {
    auto parsed = parse_request(bodies.next_body());
    auto* request = std::get_if<widget_request>(&parsed);
    if (request == nullptr)
      continue;  // the vocabulary only makes valid bodies; kept for safety
    std::string number = std::to_string(i);
    number.insert(0, number.size() < 6 ? 6 - number.size() : 0, '0');  // sorts as it rises
    (void)model.apply(*request);
    schedule.in_order.push_back(
        {std::move(*request), s3_key_position("requests/" + number + ".json")});
  }
  for (std::size_t i = 0; i < schedule.in_order.size(); ++i)
    schedule.deliveries.push_back(i);
  // Each copy goes somewhere after the first delivery of what it copies.
  for (std::size_t c = 0; c < copies && !schedule.deliveries.empty(); ++c) {
    const std::size_t from =
        std::uniform_int_distribution<std::size_t>(0, schedule.deliveries.size() - 1)(random);
    const std::size_t to =
        std::uniform_int_distribution<std::size_t>(from + 1, schedule.deliveries.size())(random);
    const std::size_t copied = schedule.deliveries[from];
    schedule.deliveries.insert(schedule.deliveries.begin() + static_cast<std::ptrdiff_t>(to),
                               copied);
  }
  if (const auto found = model.widgets.find(id); found != model.widgets.end())
    schedule.expected = found->second;
  return schedule;
}

// Delivers the schedule to store.apply(request, position); "" when every
// outcome was possible, else what went wrong.
template <class Store>
std::string deliver(Store& store, const fencing_schedule& schedule) {
  for (const std::size_t index : schedule.deliveries) {
    const auto& each = schedule.in_order[index];
    try {
      (void)store.apply(each.request, each.position);
    } catch (const std::exception& e) {
      return "request " + std::to_string(index) + " threw: " + e.what();
    }
  }
  return {};
}

}  // namespace widget_consumer::testing
