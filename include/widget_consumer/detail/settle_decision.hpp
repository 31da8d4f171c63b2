#pragma once
// What the consumer does with a request once its lane is done with it: ack,
// release or reject, the outcome it logs and counts, and why. A pure function
// of what became of the request (held behind an earlier one, the store's
// answer, or the store's failure) and a few facts about it, so every rule is
// in one place and testable as a table without threads (docs/concepts.md,
// WidgetStore; RELIABILITY.md, per-widget order).

#include <cstdint>
#include <string>
#include <variant>

#include <widget_consumer/delivery.hpp>
#include <widget_consumer/events.hpp>
#include <widget_consumer/position.hpp>
#include <widget_consumer/request.hpp>
#include <widget_consumer/store_error.hpp>

namespace widget_consumer::detail {

// The widget waits behind an earlier request that a store failure released
// (widget_holds); the store was not called.
struct held_behind {
  std::string request{};  // received_request::name of the one it waits for
};

// The store threw. Anything but a store_error counts as permanent.
struct store_fault {
  store_failure failure = store_failure::permanent;
  std::string message{};
};

// A fenced store refused the request: the widget is stored at a position the
// request's is not newer than (position.hpp).
struct refused_as_stale {
  std::string position{};
  std::string stored{};
};

// What became of a request in its lane.
using lane_outcome = std::variant<held_behind, apply_outcome, store_fault, refused_as_stale>;

struct settle_inputs {
  lane_outcome lane{};
  request_type type = request_type::create;
  std::uint32_t attempts = 0;  // store calls made, the last one included
  std::uint32_t max_attempts = 1;
  std::uint32_t receive_count = 1;  // received_request::receive_count
  std::uint32_t max_receives = 1;
  bool ordered = true;  // the source keeps one widget's requests in order
};

struct settle_decision {
  // A transient failure with attempts left: call the store again after a
  // backoff; nothing else in the decision applies.
  bool retry = false;
  settle_action action = settle_action::ack;
  request_outcome outcome = request_outcome::applied;
  // A store failure released the request: the widget's later requests wait
  // for it (widget_holds::settled).
  bool holds_widget = false;
  std::string detail{};  // for the log: the failure, the warning, the wait
};

inline settle_decision decide_store_fault(const store_fault& fault, const settle_inputs& in) {
  if (fault.failure == store_failure::transient && in.attempts < in.max_attempts)
    return {.retry = true};
  if (fault.failure == store_failure::bad_request)
    return {.action = settle_action::reject,
            .outcome = request_outcome::rejected,
            .detail = fault.message};
  return {.action = settle_action::release,
          .outcome = fault.failure == store_failure::transient ? request_outcome::released
                                                               : request_outcome::failed,
          .holds_widget = true,
          .detail = fault.message};
}

// On an unordered source an update or delete may have overtaken its create:
// released until it has been received max_receives times, then a warning.
inline settle_decision decide_not_found(const settle_inputs& in) {
  const bool may_have_overtaken = !in.ordered && in.type != request_type::create;
  if (may_have_overtaken && in.receive_count < in.max_receives)
    return {.action = settle_action::release,
            .outcome = request_outcome::released,
            .detail = "widget not found; its create may not have arrived yet (receive " +
                      std::to_string(in.receive_count) + " of " + std::to_string(in.max_receives) +
                      ")"};
  return {.action = settle_action::ack,
          .outcome = request_outcome::not_found,
          .detail = in.type == request_type::update
                        ? "widget not found (or owned by someone else); nothing changed"
                        : "widget not found; nothing deleted"};
}

inline settle_decision decide_settlement(const settle_inputs& in) {
  if (const auto* held = std::get_if<held_behind>(&in.lane))
    return {.action = settle_action::release,
            .outcome = request_outcome::released,
            .detail = "an earlier request for this widget (" + held->request +
                      ") is waiting for a retry"};
  if (const auto* fault = std::get_if<store_fault>(&in.lane))
    return decide_store_fault(*fault, in);
  // Not an error: the request is settled, and the widget stays where it is.
  if (const auto* stale = std::get_if<refused_as_stale>(&in.lane))
    return {.action = settle_action::ack,
            .outcome = request_outcome::stale,
            .detail = stale_detail(stale->position, stale->stored)};
  if (std::get<apply_outcome>(in.lane) == apply_outcome::applied)
    return {.action = settle_action::ack, .outcome = request_outcome::applied};
  return decide_not_found(in);
}

}  // namespace widget_consumer::detail
