#pragma once
// consumer<Source, Destination, Log>: polls a request source, applies each
// request to a widget store in per-widget lanes, and settles it with the
// source only once the store confirmed (at-least-once, nothing lost).
//
// The data flow, one member each: poll (poll_and_dispatch) -> parse
// (dispatch) -> lane (detail/lane_pool.hpp) -> store (apply, on a lane
// thread) -> settle (settle_ready, back on the poll thread). The rules live
// in detail/: what to do with a request once its lane is done
// (settle_decision.hpp), when a run ends by time (run_clock.hpp), what is
// counted and logged (consumer_report.hpp). A source that can make its
// settling calls on a thread of its own is flushed without waiting for them
// (source_settling.hpp) until the last flush, which waits.
//
// Threads: run() is the poll thread; it alone touches the source (sources
// need not be thread-safe) and the counters. N lane threads, started once per
// run(), call the store: lane = hash(widgetId) % N, so one widget's requests
// are applied in source order and different widgets in parallel.

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <widget_consumer/concepts.hpp>
#include <widget_consumer/consumer_options.hpp>
#include <widget_consumer/detail/consumer_report.hpp>
#include <widget_consumer/detail/lane_pool.hpp>
#include <widget_consumer/detail/optional_capabilities.hpp>
#include <widget_consumer/detail/run_clock.hpp>
#include <widget_consumer/detail/settle_decision.hpp>
#include <widget_consumer/detail/source_settling.hpp>
#include <widget_consumer/detail/store_call.hpp>
#include <widget_consumer/detail/widget_holds.hpp>
#include <widget_consumer/log/console.hpp>
#include <widget_consumer/request.hpp>
#include <widget_consumer/stop.hpp>
#include <widget_consumer/unrecoverable_error.hpp>

namespace widget_consumer {

/// Polls requests from Source, applies them to Destination on lane threads, settles them, logs to
/// Log.
template <request_source Source, widget_store Destination, log_policy Log = console_log>
class consumer {
 public:
  /// The request source it polls.
  using source_type = Source;
  /// The widget store it applies requests to.
  using destination_type = Destination;
  /// The log policy it reports to.
  using log_type = Log;

  /// The consumer owns a default-constructed log.
  consumer(Source& source, Destination& destination,
           consumer_options options = {}) requires std::default_initializable<Log>
      : source_(source),
        destination_(destination),
        owned_log_(std::make_unique<Log>()),
        log_(*owned_log_),
        options_(detail::normalised(std::move(options))) {}

  /// The consumer reports to `log`, which must outlive it.
  consumer(Source& source, Destination& destination, Log& log, consumer_options options = {})
      : source_(source),
        destination_(destination),
        log_(log),
        options_(detail::normalised(std::move(options))) {}

  /// Runs until a stop condition; returns the summary it also logged.
  consumer_summary run(const stop_flag& stop) { return run_impl(&stop); }
  /// Runs until max_runtime, max_idle or too many poll failures; no stop flag.
  consumer_summary run() { return run_impl(nullptr); }

  /// The log it reports to, its own or the caller's.
  Log& log() noexcept { return log_; }
  /// Its options, with the defaults (0 = ...) resolved.
  const consumer_options& options() const noexcept { return options_; }

 private:
  using clock = std::chrono::steady_clock;

  using ticket_type = typename Source::ticket_type;

  struct work {
    ticket_type ticket;
    std::string name{};
    widget_request request{};
    std::uint32_t receive_count = 1;
    std::string position{};  // for the store's fence (position.hpp)
    clock::time_point received{};
  };

  struct result {
    work item;
    detail::store_result stored{};
  };

  using lanes = detail::lane_pool<work, result, detail::widget_holds>;

  // The poll thread's own, for one run().
  struct run_state {
    const stop_flag* stop = nullptr;
    lanes& pool;
    detail::run_clock times;
    std::uint32_t poll_failures_in_a_row = 0;
    consumer_stats stats{};
    log_clock::time_point started = log_clock::now();
    log_clock::time_point last_poll_ok{};         // none yet
    std::uint64_t heartbeat_failures_before = 0;  // the source's count when run() began

    bool stopping() const { return stop != nullptr && stop->stop_requested(); }
  };

  consumer_summary run_impl(const stop_flag* stop) {
    detail::check_ready(source_, "request source", log_);
    detail::check_ready(destination_, "widget store", log_);
    settling_.begin_run();
    const bool ordered = static_cast<bool>(source_.ordered());
    lanes pool(options_.concurrency,
               detail::widget_holds(options_.max_hold, detail::releases_locally(source_)),
               [this, ordered](detail::widget_holds& holds, work item) {
                 return apply(holds, std::move(item), ordered);
               });
    run_state run{.stop = stop,
                  .pool = pool,
                  .times = {clock::now(), options_},
                  .heartbeat_failures_before = detail::heartbeat_failures(source_, log_)};
    observe(run);
    const stop_reason reason = poll_until_stopped(run);
    // Stop polling; let the lanes finish and settle everything in flight. A
    // source that fetches ahead is told first (concepts.hpp, stop_requesting).
    if (reason == stop_reason::stop_requested)
      detail::request_stop(source_, log_);
    while (run.stats.in_flight > 0) {
      pool.wait_for_results(std::chrono::milliseconds{50});
      settle_ready(run);
    }
    settling_.finish(run.stats);
    hear_from_source(run);
    observe(run);
    consumer_summary summary{.time = log_clock::now(),
                             .stats = elapsed(run),
                             .reason = reason,
                             .unsettled = settling_.unsettled(),
                             .last_poll_ok = run.last_poll_ok,
                             .failed_polls_at_end = run.poll_failures_in_a_row};
    log_.summary(summary);
    log_.flush();
    return summary;
  }

  stop_reason poll_until_stopped(run_state& run) {
    for (;;) {
      settle_ready(run);
      if (const auto reason = stop_condition(run))
        return *reason;
      if (run.times.progress_due(clock::now()))
        log_.progress(progress_event{.time = log_clock::now(), .stats = elapsed(run)});
      if (run.stats.in_flight >= options_.max_in_flight)
        run.pool.wait_for_results(std::chrono::milliseconds{10});
      else if (const auto reason = poll_and_dispatch(run))
        return *reason;
    }
  }

  std::optional<stop_reason> stop_condition(run_state& run) {
    if (run.stopping()) {
      log_.info(detail::stop_requested_message(run.stats.in_flight));
      log_.flush();
      return stop_reason::stop_requested;
    }
    return run.times.limit_reached(clock::now(), run.stats.in_flight,
                                   [&] { return detail::has_pending(source_, log_); });
  }

  std::optional<stop_reason> poll_and_dispatch(run_state& run) {
    std::vector<received_request<ticket_type>> batch;
    try {
      batch =
          source_.poll(options_.poll_wait,
                       std::min(options_.max_batch, options_.max_in_flight - run.stats.in_flight));
      run.poll_failures_in_a_row = 0;
      run.last_poll_ok = log_clock::now();
    } catch (const unrecoverable_error& e) {
      // Polling again would meet the same error: said once, then stop.
      ++run.stats.poll_failures;
      ++run.poll_failures_in_a_row;
      observe(run);
      log_.error(std::string("poll failed, stopping: ") + e.what());
      return stop_reason::unrecoverable;
    } catch (const std::exception& e) {
      ++run.stats.poll_failures;
      ++run.poll_failures_in_a_row;
      observe(run);
      log_.error(std::string("poll failed: ") + e.what());
      if (options_.max_poll_failures != 0 &&
          run.poll_failures_in_a_row >= options_.max_poll_failures)
        return stop_reason::poll_failures;
      pause(run, options_.poll_failure_delay);
      return std::nullopt;
    }
    hear_from_source(run);
    if (batch.empty()) {
      observe(run);
      pause(run, options_.empty_poll_delay);
      return std::nullopt;
    }
    run.times.polled_requests(clock::now());
    for (auto& received : batch)
      dispatch(run, std::move(received));
    settling_.flush(run.stats);
    observe(run);
    return std::nullopt;
  }

  // Parses on the poll thread: the lane is chosen by widgetId, so the body
  // must be parsed before it can be queued.
  void dispatch(run_state& run, received_request<ticket_type> received) {
    parse_result parsed = parse_request(received.body, options_.parsing);
    if (const auto* invalid = std::get_if<validation_error>(&parsed)) {
      const std::string reason = invalid->message();
      const request_event event =
          detail::unparsed_event(received.name, reason, since(run.times.last_activity()));
      if (settling_.settle(run.stats, std::move(received.ticket), settle_action::reject,
                           received.name, reason))
        ++run.stats.rejected;
      log_.request(event);
      return;
    }
    work item{.ticket = std::move(received.ticket),
              .name = std::move(received.name),
              .request = std::move(std::get<widget_request>(parsed)),
              .receive_count = received.receive_count,
              .position = std::move(received.position),
              .received = run.times.last_activity()};
    if (const std::string unknown = detail::unknown_fields_message(item.request, item.name);
        !unknown.empty())
      log_.debug(unknown);
    const std::string widget = item.request.widget_id;  // the key outlives the move
    run.pool.push(widget, std::move(item));
    ++run.stats.in_flight;
  }

  // Runs on a lane thread: only the store, the lane's own holds and options.
  result apply(detail::widget_holds& holds, work item, bool ordered) {
    detail::settle_inputs facts{.type = item.request.type,
                                .max_attempts = options_.max_attempts,
                                .receive_count = item.receive_count,
                                .max_receives = options_.max_receives,
                                .ordered = ordered};
    const std::string& widget = item.request.widget_id;
    if (std::string waits_for = holds.admit(widget, item.name, clock::now()); !waits_for.empty()) {
      facts.lane = detail::held_behind{std::move(waits_for)};
      return {.item = std::move(item), .stored = {.decision = detail::decide_settlement(facts)}};
    }
    const request_type type = item.request.type;
    detail::store_result stored = detail::call_store_with_retries(
        destination_, item.request, item.position, std::move(facts), options_.retry_backoff,
        [this, type](clock::duration took, bool threw) {
          detail::store_call(
              log_, store_call_event{
                        .type = type,
                        .duration = std::chrono::duration_cast<std::chrono::microseconds>(took),
                        .threw = threw});
        });
    holds.settled(widget, item.name, stored.decision.holds_widget, clock::now());
    return {.item = std::move(item), .stored = std::move(stored)};
  }

  void settle_ready(run_state& run) {
    std::deque<result> ready = run.pool.take_results();
    if (ready.empty())
      return;
    for (auto& done : ready)
      settle(run.stats, done);
    settling_.flush(run.stats);
    run.times.settled(clock::now());
    observe(run);
  }

  // What the source warns of since the last look, the releases it will not
  // deliver again, and what its heartbeat had refused: counted and said,
  // since the request may now be worked on twice at once.
  void hear_from_source(run_state& run) {
    detail::say_source_warnings(source_, log_);
    // Before the poll's batch is dispatched: a hold behind a request that
    // went to another consumer ends before the widget's next request comes.
    detail::forget_releases(source_, log_, [this, &run](forgotten_release gone) {
      settling_.gone_elsewhere(gone.name);
      const std::string widget = gone.widget_id;
      run.pool.post(widget, [gone = std::move(gone)](detail::widget_holds& holds) {
        holds.forget(gone.widget_id, gone.name);
      });
    });
    const std::uint64_t now = detail::heartbeat_failures(source_, log_);
    const std::uint64_t total = now > run.heartbeat_failures_before
                                    ? now - run.heartbeat_failures_before
                                    : 0;  // a source that could not answer says 0
    if (total <= run.stats.heartbeat_refusals)
      return;
    log_.warning(detail::heartbeat_refused_message(total - run.stats.heartbeat_refusals));
    run.stats.heartbeat_refusals = total;
  }

  void observe(const run_state& run) {
    if constexpr (state_observing<Log>)
      detail::observe(log_, consumer_state{.time = log_clock::now(),
                                           .run_started = run.started,
                                           .stats = elapsed(run),
                                           .lanes_busy = run.pool.busy(),
                                           .lanes = run.pool.size(),
                                           .last_poll_ok = run.last_poll_ok,
                                           .source_backlog = detail::source_backlog(source_)});
  }

  void settle(consumer_stats& stats, result& done) {
    --stats.in_flight;
    const detail::settle_decision& decision = done.stored.decision;
    settling_.settle(stats, std::move(done.item.ticket), decision.action, done.item.name,
                     decision.detail);
    detail::count_settled(stats, done.item.request.type, decision.outcome);
    log_.request(detail::settled_event(done.item.name, done.item.request, decision.outcome,
                                       since(done.item.received), done.stored.attempts,
                                       decision.detail));
  }

  // Sleeps for delay, settling results as they come and waking on stop.
  void pause(run_state& run, std::chrono::milliseconds delay) {
    const auto until = clock::now() + delay;
    for (auto now = clock::now(); !run.stopping() && now < until; now = clock::now()) {
      run.pool.wait_for_results(
          std::min(std::chrono::duration_cast<std::chrono::milliseconds>(until - now),
                   std::chrono::milliseconds{10}));
      settle_ready(run);
    }
  }

  static consumer_stats elapsed(const run_state& run) {
    return detail::with_elapsed(run.stats, clock::now() - run.times.start());
  }

  static std::chrono::microseconds since(clock::time_point then) {
    return std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - then);
  }

  Source& source_;
  Destination& destination_;
  std::unique_ptr<Log> owned_log_;
  Log& log_;
  consumer_options options_;
  detail::source_settling<Source, Log> settling_{source_, log_, options_.release_delay};
};

// The AWS combinations (s3_to_s3_consumer, s3_to_dynamodb_consumer,
// sqs_to_s3_consumer, sqs_to_dynamodb_consumer) and
// directory_to_directory_consumer are declared in widget_consumer.hpp, next
// to the policies they name.

}  // namespace widget_consumer
