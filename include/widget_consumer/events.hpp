#pragma once
// What the consumer reports to its log (concepts.hpp, log_policy): one event
// per request, free-text messages, progress, and the summary with its counts
// and the reason run() stopped; their names for logs.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include <widget_consumer/request.hpp>

namespace widget_consumer {

/// The clock of every event's time stamp: wall time, as a log line shows it.
using log_clock = std::chrono::system_clock;

/// What became of one request, as request_event reports it.
enum class request_outcome {
  applied,    ///< acked
  not_found,  ///< acked, with a warning
  released,   ///< left in the source for a later attempt
  rejected,   ///< moved aside as invalid
  failed,     ///< the store failed permanently; released
  stale,      ///< acked: the widget is already further on (fencing)
};

/// One request's outcome. Views are valid only during the call.
struct request_event {
  log_clock::time_point time;                ///< when it was settled
  std::string_view name;                     ///< received_request::name
  std::string_view request_id;               ///< "" when the body did not parse
  std::string_view widget_id;                ///< "" when the body did not parse
  request_type type = request_type::create;  ///< create, update or delete; valid when parsed
  bool parsed = false;                       ///< false: type, request_id and widget_id are unknown
  request_outcome outcome = request_outcome::applied;  ///< what became of it
  std::chrono::microseconds latency{0};                ///< received to settled
  std::uint32_t attempts = 0;                          ///< store calls made
  std::string_view detail;                             ///< why: rejection, failure, warning
};

/// How much a log_message matters; a log shows those at or above its level.
enum class log_level { debug, info, warning, error };

/// A line of text the consumer logs (startup, warnings, errors). Views are valid only during the
/// call.
struct log_message {
  log_clock::time_point time;         ///< when it was logged
  log_level level = log_level::info;  ///< how much it matters
  std::string_view text;              ///< the line, without secrets
};

/// unrecoverable: poll() threw unrecoverable_error (the source is gone or
/// refuses us), logged once; the program should end with a failure.
enum class stop_reason { stop_requested, max_runtime, max_idle, poll_failures, unrecoverable };

/// Counts since run() began; the progress line and the summary.
struct consumer_stats {
  std::array<std::uint64_t, 3> processed{};  ///< acked, indexed by request_type
  std::uint64_t not_found = 0;               ///< acked with a warning (in processed too)
  std::uint64_t rejected = 0;                ///< invalid or refused by the store
  std::uint64_t retried = 0;                 ///< released for a later attempt
  std::uint64_t failed = 0;                  ///< permanent store failures (released)
  /// Acked without a change: the store holds the widget at a position the
  /// request's is not newer than (a replay, a duplicate, a stalled consumer's
  /// old request). Not in processed.
  std::uint64_t stale = 0;
  std::uint64_t settle_failures = 0;  ///< ack/release/reject that failed
  std::uint64_t poll_failures = 0;    ///< polls that threw
  /// Visibility extensions the source's heartbeat had refused for messages
  /// still being worked on: each may be handed to another consumer meanwhile.
  std::uint64_t heartbeat_refusals = 0;
  std::uint64_t in_flight = 0;           ///< polled and not yet settled
  std::chrono::milliseconds elapsed{0};  ///< since run() began

  /// Requests acked, of every type.
  std::uint64_t processed_total() const noexcept {
    return processed[0] + processed[1] + processed[2];
  }
  /// Requests acked of one type.
  std::uint64_t processed_of(request_type type) const noexcept {
    return processed[static_cast<std::size_t>(type)];
  }
  /// Processed requests per second of elapsed time.
  double rate() const noexcept {
    const auto seconds = static_cast<double>(elapsed.count()) / 1000.0;
    return seconds > 0 ? static_cast<double>(processed_total()) / seconds : 0.0;
  }
};

/// The periodic progress line's content (consumer_options::progress_interval).
struct progress_event {
  log_clock::time_point time;  ///< when it was taken
  consumer_stats stats;        ///< the counts so far
};

// Optional hooks (concepts.hpp, state_observing and store_call_observing),
// for logs that keep gauges and histograms rather than lines.

/// The poll thread's view after each poll and each round of settlements.
struct consumer_state {
  log_clock::time_point time{};         ///< when it was taken
  log_clock::time_point run_started{};  ///< tells one run() from the next
  consumer_stats stats{};               ///< since run_started
  std::uint64_t lanes_busy = 0;         ///< lanes calling the store now
  std::uint64_t lanes = 0;              ///< lanes in all
  /// The last poll that did not throw; the epoch until one has.
  log_clock::time_point last_poll_ok{};
  /// Requests the source knows of and has not handed out (backlog_reporting);
  /// nullopt when it cannot tell.
  std::optional<std::uint64_t> source_backlog{};
};

/// One call of the store's apply(), timed on the lane thread that made it.
struct store_call_event {
  request_type type = request_type::create;  ///< create, update or delete
  std::chrono::microseconds duration{0};     ///< how long apply() took
  bool threw = false;                        ///< a store_error or another exception
};

/// What run() returns and logs once at the end: counts, why it stopped, what is left.
struct consumer_summary {
  log_clock::time_point time;                        ///< when run() ended
  consumer_stats stats;                              ///< the counts of the whole run
  stop_reason reason = stop_reason::stop_requested;  ///< why run() returned
  /// Requests this run took whose last settlement was a release or did not
  /// take effect: they are still in the source and come again (nothing is
  /// lost), but the run did not finish them. A release that later came back
  /// and was acked or rejected is not counted.
  std::uint64_t unsettled = 0;
  /// The last poll that did not throw; the epoch when none did (the source
  /// was never reached).
  log_clock::time_point last_poll_ok{};
  /// Polls that failed since the last one that did not, when the run ended:
  /// not 0, the run ended with the source failing, so it was not seen empty.
  std::uint64_t failed_polls_at_end = 0;
};

/// "applied", "not_found", ..., for logs.
inline std::string_view to_string(request_outcome outcome) noexcept {
  switch (outcome) {
    case request_outcome::applied:
      return "applied";
    case request_outcome::not_found:
      return "not_found";
    case request_outcome::released:
      return "released";
    case request_outcome::rejected:
      return "rejected";
    case request_outcome::failed:
      return "failed";
    case request_outcome::stale:
      return "stale";
  }
  return "unknown";
}

/// "debug", "info", "warning" or "error", for logs.
inline std::string_view to_string(log_level level) noexcept {
  switch (level) {
    case log_level::debug:
      return "debug";
    case log_level::info:
      return "info";
    case log_level::warning:
      return "warning";
    case log_level::error:
      return "error";
  }
  return "unknown";
}

/// "stop requested", "max runtime reached", ..., for logs and the summary.
inline std::string_view to_string(stop_reason reason) noexcept {
  switch (reason) {
    case stop_reason::stop_requested:
      return "stop requested";
    case stop_reason::max_runtime:
      return "max runtime reached";
    case stop_reason::max_idle:
      return "max idle time reached";
    case stop_reason::poll_failures:
      return "too many failed polls";
    case stop_reason::unrecoverable:
      return "unrecoverable error";
  }
  return "unknown";
}

}  // namespace widget_consumer
