#pragma once
// What the consumer counts and says: one settled request counted in the
// stats, the request events it logs, and its messages. Free functions of
// their inputs, so the consumer keeps to coordinating.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <widget_consumer/delivery.hpp>
#include <widget_consumer/events.hpp>
#include <widget_consumer/request.hpp>

namespace widget_consumer::detail {

inline void count_settled(consumer_stats& stats, request_type type, request_outcome outcome) {
  switch (outcome) {
    case request_outcome::applied:
      ++stats.processed[static_cast<std::size_t>(type)];
      break;
    case request_outcome::not_found:
      ++stats.processed[static_cast<std::size_t>(type)];
      ++stats.not_found;
      break;
    case request_outcome::released:
      ++stats.retried;
      break;
    case request_outcome::rejected:
      ++stats.rejected;
      break;
    case request_outcome::failed:
      ++stats.failed;
      break;
    case request_outcome::stale:
      ++stats.stale;
      break;
  }
}

inline consumer_stats with_elapsed(consumer_stats stats,
                                   std::chrono::steady_clock::duration elapsed) {
  stats.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(elapsed);
  return stats;
}

// A request the store was asked about (or that waited behind another).
// The event views name, request and detail.
inline request_event settled_event(std::string_view name, const widget_request& request,
                                   request_outcome outcome, std::chrono::microseconds latency,
                                   std::uint32_t attempts, std::string_view detail) {
  return {.time = log_clock::now(),
          .name = name,
          .request_id = request.request_id,
          .widget_id = request.widget_id,
          .type = request.type,
          .parsed = true,
          .outcome = outcome,
          .latency = latency,
          .attempts = attempts,
          .detail = detail};
}

// A body that did not parse: only its name and why are known.
inline request_event unparsed_event(std::string_view name, std::string_view reason,
                                    std::chrono::microseconds latency) {
  return {.time = log_clock::now(),
          .name = name,
          .request_id = {},
          .widget_id = {},
          .type = request_type::create,
          .parsed = false,
          .outcome = request_outcome::rejected,
          .latency = latency,
          .attempts = 0,
          .detail = reason};
}

// "" when the request had no fields the schema does not know.
inline std::string unknown_fields_message(const widget_request& request, std::string_view name) {
  if (request.unknown_fields.empty())
    return {};
  std::string fields;
  for (const std::string& field : request.unknown_fields)
    fields += (fields.empty() ? "" : ", ") + field;
  return "request " + request.request_id + " (" + std::string(name) +
         ") has unknown fields, ignored: " + fields;
}

inline std::string settle_failed_message(settle_action action, std::string_view name,
                                         std::string_view reason) {
  return std::string(to_string(action)) + " of " + std::string(name) +
         " failed (it will be delivered again): " + std::string(reason);
}

inline std::string heartbeat_refused_message(std::uint64_t refused) {
  return "the source's heartbeat could not extend the visibility of " + std::to_string(refused) +
         " request" + (refused == 1 ? "" : "s") +
         " still being worked on: another consumer may receive them meanwhile";
}

// Said at once, and flushed: whoever stopped the consumer learns that the
// stop was seen and how much is still to settle.
inline std::string stop_requested_message(std::uint64_t in_flight) {
  return "stop requested: polling stopped; settling " + std::to_string(in_flight) +
         " requests in flight (a second signal exits at once)";
}

}  // namespace widget_consumer::detail
