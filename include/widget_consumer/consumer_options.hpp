#pragma once
// consumer_options: the knobs of consumer<Source, Destination, Log> (its
// lanes, how much is in flight, polling, retries, holds, when run() stops),
// and the defaults that follow from other options.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include <widget_consumer/request.hpp>

namespace widget_consumer {

/// How a consumer runs: lanes, batching, retries, holds, stop conditions.
struct consumer_options {
  std::size_t concurrency = 4;  ///< lane threads
  /// Requests polled and not yet settled, across all lanes: bounds memory
  /// however large the backlog is, and what a graceful stop still settles.
  /// 0 = 8 per lane: enough to keep lanes busy (sources fetch ahead on their
  /// own), small enough that a stop settles in about a second.
  std::size_t max_in_flight = 0;
  std::size_t max_batch = 100;                      ///< the most requests asked of one poll()
  std::chrono::milliseconds poll_wait{0};           ///< passed to poll() (SQS long poll)
  std::chrono::milliseconds empty_poll_delay{100};  ///< pause after an empty poll
  std::chrono::milliseconds max_runtime{0};         ///< 0 = no limit
  std::chrono::milliseconds max_idle{0};            ///< nothing polled nor in flight; 0 = no limit
  std::uint32_t max_attempts = 3;                 ///< store calls per delivery on transient errors
  std::chrono::milliseconds retry_backoff{50};    ///< doubles per attempt
  std::chrono::milliseconds release_delay{1000};  ///< before a released request comes back
  /// After a store failure releases a request, the widget's later requests are
  /// released too until that request comes back, in order
  /// (detail/widget_holds.hpp). When the source's releases may go to another
  /// consumer, a hold ends after this long without progress; when they stay
  /// with us (concepts.hpp, local_releasing), it waits however long it takes.
  std::chrono::milliseconds max_hold{30000};
  /// On an unordered source, an update/delete that finds no widget is released
  /// (its create may come later) until it has been received this many times.
  std::uint32_t max_receives = 5;
  std::chrono::milliseconds progress_interval{1000};  ///< 0 = no progress events
  std::uint32_t max_poll_failures = 10;  ///< consecutive; then run() returns. 0 = never
  std::chrono::milliseconds poll_failure_delay{1000};  ///< pause after a poll that threw
  parse_options parsing;                               ///< limits and rules of parse_request
};

namespace detail {
// What run() uses: at least one lane, attempt and request per poll, and
// max_in_flight 0 made 8 per lane.
inline consumer_options normalised(consumer_options options) {
  options.concurrency = std::max<std::size_t>(options.concurrency, 1);
  if (options.max_in_flight == 0)
    options.max_in_flight = 8 * options.concurrency;
  options.max_batch = std::max<std::size_t>(options.max_batch, 1);
  options.max_attempts = std::max<std::uint32_t>(options.max_attempts, 1);
  return options;
}
}  // namespace detail

}  // namespace widget_consumer
