#pragma once
// consumer<Source, Destination, Log>: polls a request source, applies each
// request to a widget store in per-widget lanes, and settles it with the
// source only once the store confirmed (at-least-once, nothing lost).
//
// Threads: run() is the poll thread; it alone touches the source (sources
// need not be thread-safe) and the counters. N lane threads, started once per
// run(), call the store: lane = hash(widgetId) % N, so one widget's requests
// are applied in source order and different widgets in parallel. Lanes hand
// their results back to the poll thread, which acks, releases or rejects.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "concepts.hpp"
#include "detail/widget_holds.hpp"
#include "log/console.hpp"
#include "request.hpp"
#include "unrecoverable_error.hpp"

namespace widget_consumer {

struct consumer_options {
  std::size_t concurrency = 4;  // lane threads
  // Requests polled and not yet settled, across all lanes: bounds memory
  // however large the backlog is, and what a graceful stop still settles.
  // 0 = 8 per lane: enough to keep lanes busy (sources fetch ahead on their
  // own), small enough that a stop settles in about a second.
  std::size_t max_in_flight = 0;
  std::size_t max_batch = 100;                      // the most requests asked of one poll()
  std::chrono::milliseconds poll_wait{0};           // passed to poll() (SQS long poll)
  std::chrono::milliseconds empty_poll_delay{100};  // pause after an empty poll
  std::chrono::milliseconds max_runtime{0};         // 0 = no limit
  std::chrono::milliseconds max_idle{0};            // nothing polled nor in flight; 0 = no limit
  std::uint32_t max_attempts = 3;                   // store calls per delivery on transient errors
  std::chrono::milliseconds retry_backoff{50};      // doubles per attempt
  std::chrono::milliseconds release_delay{1000};    // before a released request comes back
  // After a store failure releases a request, the widget's later requests are
  // released too until that request comes back, in order
  // (detail/widget_holds.hpp). When the source's releases may go to another
  // consumer, a hold ends after this long without progress; when they stay
  // with us (concepts.hpp, local_releasing), it waits however long it takes.
  std::chrono::milliseconds max_hold{30000};
  // On an unordered source, an update/delete that finds no widget is released
  // (its create may come later) until it has been received this many times.
  std::uint32_t max_receives = 5;
  std::chrono::milliseconds progress_interval{1000};  // 0 = no progress events
  std::uint32_t max_poll_failures = 10;               // consecutive; then run() returns. 0 = never
  std::chrono::milliseconds poll_failure_delay{1000};
  parse_options parsing;
};

// Set from a signal handler or another thread; run() stops polling, settles
// what is in flight and returns. A lock-free atomic, so async-signal-safe.
class stop_flag {
 public:
  void request_stop() noexcept { requests_.fetch_add(1, std::memory_order_relaxed); }
  bool stop_requested() const noexcept { return requests_.load(std::memory_order_relaxed) > 0; }
  int requests() const noexcept { return requests_.load(std::memory_order_relaxed); }

 private:
  static_assert(std::atomic<int>::is_always_lock_free);
  std::atomic<int> requests_{0};
};

namespace detail {
inline std::atomic<stop_flag*> signal_stop_flag{nullptr};

inline void on_stop_signal(int signal) {
  stop_flag* flag = signal_stop_flag.load();
  if (flag == nullptr || flag->stop_requested())
    std::_Exit(128 + signal);  // the second signal: no clean-up, at once
  flag->request_stop();
}
}  // namespace detail

// SIGINT and SIGTERM: the first sets flag (finish in-flight work, flush,
// return), the second ends the process at once. flag must outlive the
// process's use of signals.
inline void stop_on_signals(stop_flag& flag) {
  detail::signal_stop_flag.store(&flag);
  struct sigaction action {};
  action.sa_handler = detail::on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

template <request_source Source, widget_store Destination, log_policy Log = console_log>
class consumer {
 public:
  using source_type = Source;
  using destination_type = Destination;
  using log_type = Log;

  // The consumer owns a default-constructed log.
  consumer(Source& source, Destination& destination,
           consumer_options options = {}) requires std::default_initializable<Log>
      : source_(source),
        destination_(destination),
        owned_log_(std::make_unique<Log>()),
        log_(*owned_log_),
        options_(normalised(std::move(options))) {}

  consumer(Source& source, Destination& destination, Log& log, consumer_options options = {})
      : source_(source),
        destination_(destination),
        log_(log),
        options_(normalised(std::move(options))) {}

  // Runs until a stop condition; returns the summary it also logged.
  consumer_summary run(const stop_flag& stop) { return run_impl(&stop); }
  consumer_summary run() { return run_impl(nullptr); }

  Log& log() noexcept { return log_; }
  const consumer_options& options() const noexcept { return options_; }

 private:
  using ticket_type = typename Source::ticket_type;
  using clock = std::chrono::steady_clock;

  struct work {
    ticket_type ticket;
    std::string name;
    widget_request request;
    std::uint32_t receive_count = 1;
    clock::time_point received;
  };

  struct result {
    work item;
    settle_action action = settle_action::ack;
    request_outcome outcome = request_outcome::applied;
    std::uint32_t attempts = 0;
    std::string detail;
    bool holds_widget = false;  // a store failure released it: its widget waits for it
  };

  // One lane: a queue and the thread that drains it, in order.
  struct lane {
    lane(std::chrono::milliseconds max_hold, bool local_release) : holds(max_hold, local_release) {}
    std::mutex mutex;
    std::condition_variable ready;
    std::deque<work> queue;
    bool closing = false;
    // The lane thread's own: widgets waiting for a request a store failure
    // released, and the order their other requests go in meanwhile.
    detail::widget_holds holds;
    std::thread thread;
  };

  struct run_state {
    std::mutex mutex;
    std::condition_variable done;
    std::deque<result> results;
    std::vector<std::unique_ptr<lane>> lanes;
    bool ordered = true;
    clock::time_point last_settled{};  // poll thread only: the end of the last settle_ready
  };

  static consumer_options normalised(consumer_options options) {
    options.concurrency = std::max<std::size_t>(options.concurrency, 1);
    if (options.max_in_flight == 0)
      options.max_in_flight = 8 * options.concurrency;
    options.max_batch = std::max<std::size_t>(options.max_batch, 1);
    options.max_attempts = std::max<std::uint32_t>(options.max_attempts, 1);
    return options;
  }

  // Joins the lanes on every way out of run(), exceptions included.
  class lanes_guard {
   public:
    explicit lanes_guard(run_state& state) : state_(state) {}
    lanes_guard(const lanes_guard&) = delete;
    lanes_guard& operator=(const lanes_guard&) = delete;
    ~lanes_guard() {
      for (auto& each : state_.lanes) {
        {
          std::lock_guard lock(each->mutex);
          each->closing = true;
        }
        each->ready.notify_one();
      }
      for (auto& each : state_.lanes)
        if (each->thread.joinable())
          each->thread.join();
    }

   private:
    run_state& state_;
  };

  // concepts.hpp, startup_checking: what cannot heal ends run() before any
  // lane starts; anything else is said and polling begins as usual.
  template <class Policy>
  void check_ready(Policy& policy, std::string_view role) {
    if constexpr (startup_checking<Policy>) {
      try {
        policy.check_ready();
      } catch (const unrecoverable_error&) {
        throw;
      } catch (const std::exception& e) {
        log_.warning("start-up check of the " + std::string(role) +
                     " failed (retried while running): " + e.what());
      }
    }
  }

  consumer_summary run_impl(const stop_flag* stop) {
    check_ready(source_, "request source");
    check_ready(destination_, "widget store");
    const auto start = clock::now();
    consumer_stats stats;
    run_state state;
    state.ordered = static_cast<bool>(source_.ordered());
    bool local_release = false;
    if constexpr (local_releasing<Source>)
      local_release = static_cast<bool>(source_.releases_locally());
    lanes_guard guard(state);
    for (std::size_t i = 0; i < options_.concurrency; ++i) {
      state.lanes.push_back(std::make_unique<lane>(options_.max_hold, local_release));
      lane& each = *state.lanes.back();
      each.thread = std::thread([this, &state, &each] { drain_lane(state, each); });
    }

    auto stopping = [&] { return stop != nullptr && stop->stop_requested(); };
    auto last_activity = start;
    auto next_progress = start + options_.progress_interval;
    std::uint32_t consecutive_poll_failures = 0;
    stop_reason reason = stop_reason::stop_requested;

    for (;;) {
      settle_ready(state, stats);
      const auto now = clock::now();
      if (stopping()) {
        reason = stop_reason::stop_requested;
        // Said at once, and flushed: whoever stopped us learns that the stop
        // was seen and how much is still to settle.
        log_.info("stop requested: polling stopped; settling " + std::to_string(stats.in_flight) +
                  " requests in flight (a second signal exits at once)");
        log_.flush();
        break;
      }
      if (options_.max_runtime.count() > 0 && now - start >= options_.max_runtime) {
        reason = stop_reason::max_runtime;
        break;
      }
      // Idle time starts once everything is settled (settling can take
      // longer than max_idle), and not while the source says it still holds
      // undelivered requests (concepts.hpp, pending_reporting).
      if (options_.max_idle.count() > 0 && stats.in_flight == 0 &&
          now - std::max(last_activity, state.last_settled) >= options_.max_idle) {
        if (!source_pending()) {
          reason = stop_reason::max_idle;
          break;
        }
        last_activity = now;
      }
      if (options_.progress_interval.count() > 0 && now >= next_progress) {
        log_.progress(progress_event{log_clock::now(), snapshot(stats, start)});
        next_progress = now + options_.progress_interval;
      }
      if (stats.in_flight >= options_.max_in_flight) {
        wait_for_results(state, std::chrono::milliseconds{10});
        continue;
      }

      std::vector<received_request<ticket_type>> batch;
      try {
        batch =
            source_.poll(options_.poll_wait,
                         std::min(options_.max_batch, options_.max_in_flight - stats.in_flight));
        consecutive_poll_failures = 0;
      } catch (const unrecoverable_error& e) {
        // Polling again would meet the same error: said once, then stop.
        ++stats.poll_failures;
        log_.error(std::string("poll failed, stopping: ") + e.what());
        reason = stop_reason::unrecoverable;
        break;
      } catch (const std::exception& e) {
        ++stats.poll_failures;
        log_.error(std::string("poll failed: ") + e.what());
        if (options_.max_poll_failures != 0 &&
            ++consecutive_poll_failures >= options_.max_poll_failures) {
          reason = stop_reason::poll_failures;
          break;
        }
        pause(state, stats, options_.poll_failure_delay, stopping);
        continue;
      }

      if (batch.empty()) {
        pause(state, stats, options_.empty_poll_delay, stopping);
        continue;
      }
      last_activity = clock::now();
      for (auto& received : batch)
        dispatch(state, stats, std::move(received), last_activity);
      flush_source(stats);
    }

    // Stop polling; let the lanes finish and settle everything in flight. A
    // source that fetches ahead is told first, so it stops fetching what
    // would only be given back (concepts.hpp, stop_requesting).
    if constexpr (stop_requesting<Source>)
      if (reason == stop_reason::stop_requested) {
        try {
          source_.request_stop();
        } catch (const std::exception& e) {
          log_.error(std::string("stopping the source failed: ") + e.what());
        }
      }
    while (stats.in_flight > 0) {
      wait_for_results(state, std::chrono::milliseconds{50});
      settle_ready(state, stats);
    }
    flush_source(stats);

    consumer_summary summary{log_clock::now(), snapshot(stats, start), reason};
    log_.summary(summary);
    log_.flush();
    return summary;
  }

  static consumer_stats snapshot(consumer_stats stats, clock::time_point start) {
    stats.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - start);
    return stats;
  }

  // Parses on the poll thread: the lane is chosen by widgetId, so the body
  // must be parsed before it can be queued.
  void dispatch(run_state& state, consumer_stats& stats, received_request<ticket_type> received,
                clock::time_point now) {
    parse_result parsed = parse_request(received.body, options_.parsing);
    if (auto* invalid = std::get_if<validation_error>(&parsed)) {
      const std::string reason = invalid->message();
      request_event event{};
      event.time = log_clock::now();
      event.name = received.name;
      event.outcome = request_outcome::rejected;
      event.latency = std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - now);
      event.detail = reason;
      try {
        source_.reject(std::move(received.ticket), reason);
        ++stats.rejected;
      } catch (const std::exception& e) {
        settle_failed(stats, settle_action::reject, received.name, e.what());
      }
      log_.request(event);
      return;
    }
    work item{std::move(received.ticket), std::move(received.name),
              std::move(std::get<widget_request>(parsed)), received.receive_count, now};
    if (!item.request.unknown_fields.empty()) {
      std::string fields;
      for (const std::string& field : item.request.unknown_fields)
        fields += (fields.empty() ? "" : ", ") + field;
      log_.debug("request " + item.request.request_id + " (" + item.name +
                 ") has unknown fields, ignored: " + fields);
    }
    lane& target =
        *state.lanes[std::hash<std::string_view>{}(item.request.widget_id) % state.lanes.size()];
    {
      std::lock_guard lock(target.mutex);
      target.queue.push_back(std::move(item));
    }
    target.ready.notify_one();
    ++stats.in_flight;
  }

  void drain_lane(run_state& state, lane& self) {
    for (;;) {
      std::optional<work> item;
      {
        std::unique_lock lock(self.mutex);
        self.ready.wait(lock, [&] { return self.closing || !self.queue.empty(); });
        if (self.queue.empty())
          return;  // closing, and nothing left
        item.emplace(std::move(self.queue.front()));
        self.queue.pop_front();
      }
      result done = apply(state, self, std::move(*item));
      {
        std::lock_guard lock(state.mutex);
        state.results.push_back(std::move(done));
      }
      state.done.notify_one();
    }
  }

  // Runs on a lane thread: only the store, the lane's own holds and options.
  result apply(const run_state& state, lane& self, work item) {
    result done{std::move(item), settle_action::ack, request_outcome::applied, 0, {}, false};
    const std::string& widget = done.item.request.widget_id;
    if (std::string waits_for = self.holds.admit(widget, done.item.name, clock::now());
        !waits_for.empty()) {
      done.action = settle_action::release;
      done.outcome = request_outcome::released;
      done.detail = "an earlier request for this widget (" + std::move(waits_for) +
                    ") is waiting for a retry";
      return done;
    }
    call_store(state, done);
    self.holds.settled(widget, done.item.name, done.holds_widget, clock::now());
    return done;
  }

  void call_store(const run_state& state, result& done) {
    const widget_request& request = done.item.request;
    auto backoff = options_.retry_backoff;
    for (;;) {
      ++done.attempts;
      try {
        if (destination_.apply(request) == apply_outcome::applied) {
          done.action = settle_action::ack;
          done.outcome = request_outcome::applied;
          return;
        }
        not_found(state, done);
        return;
      } catch (const store_error& e) {
        if (e.failure() == store_failure::transient && done.attempts < options_.max_attempts) {
          std::this_thread::sleep_for(backoff);
          backoff *= 2;
          continue;
        }
        if (e.failure() == store_failure::bad_request) {
          done.action = settle_action::reject;
          done.outcome = request_outcome::rejected;
        } else {
          block(done, e.failure() == store_failure::transient);
        }
        done.detail = e.what();
        return;
      } catch (const std::exception& e) {
        block(done, false);
        done.detail = e.what();
        return;
      } catch (...) {
        block(done, false);
        done.detail = "the store threw something that is not a std::exception";
        return;
      }
    }
  }

  static void block(result& done, bool transient) {
    done.action = settle_action::release;
    done.outcome = transient ? request_outcome::released : request_outcome::failed;
    done.holds_widget = true;
  }

  void not_found(const run_state& state, result& done) const {
    const widget_request& request = done.item.request;
    const bool may_have_overtaken = !state.ordered && request.type != request_type::create;
    if (may_have_overtaken && done.item.receive_count < options_.max_receives) {
      done.action = settle_action::release;
      done.outcome = request_outcome::released;
      done.detail = "widget not found; its create may not have arrived yet (receive " +
                    std::to_string(done.item.receive_count) + " of " +
                    std::to_string(options_.max_receives) + ")";
      return;
    }
    done.action = settle_action::ack;
    done.outcome = request_outcome::not_found;
    done.detail = request.type == request_type::update
                      ? "widget not found (or owned by someone else); nothing changed"
                      : "widget not found; nothing deleted";
  }

  void wait_for_results(run_state& state, std::chrono::milliseconds timeout) {
    std::unique_lock lock(state.mutex);
    state.done.wait_for(lock, timeout, [&] { return !state.results.empty(); });
  }

  // Sleeps for delay, settling results as they come and waking on stop.
  template <class Stopping>
  void pause(run_state& state, consumer_stats& stats, std::chrono::milliseconds delay,
             Stopping&& stopping) {
    const auto until = clock::now() + delay;
    while (!stopping()) {
      const auto now = clock::now();
      if (now >= until)
        return;
      wait_for_results(state,
                       std::min(std::chrono::duration_cast<std::chrono::milliseconds>(until - now),
                                std::chrono::milliseconds{10}));
      settle_ready(state, stats);
    }
  }

  void settle_ready(run_state& state, consumer_stats& stats) {
    std::deque<result> ready;
    {
      std::lock_guard lock(state.mutex);
      ready.swap(state.results);
    }
    if (ready.empty())
      return;
    for (auto& done : ready)
      settle(stats, done);
    flush_source(stats);
    state.last_settled = clock::now();
  }

  bool source_pending() {
    if constexpr (pending_reporting<Source>) {
      try {
        return static_cast<bool>(source_.has_pending());
      } catch (const std::exception& e) {
        log_.error(std::string("asking the source for pending requests failed: ") + e.what());
        return false;
      }
    } else {
      return false;
    }
  }

  void settle(consumer_stats& stats, result& done) {
    --stats.in_flight;
    try {
      switch (done.action) {
        case settle_action::ack:
          source_.ack(std::move(done.item.ticket));
          break;
        case settle_action::release:
          source_.release(std::move(done.item.ticket), options_.release_delay);
          break;
        case settle_action::reject:
          source_.reject(std::move(done.item.ticket), done.detail);
          break;
      }
    } catch (const std::exception& e) {
      settle_failed(stats, done.action, done.item.name, e.what());
    }
    switch (done.outcome) {
      case request_outcome::applied:
        ++stats.processed[static_cast<std::size_t>(done.item.request.type)];
        break;
      case request_outcome::not_found:
        ++stats.processed[static_cast<std::size_t>(done.item.request.type)];
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
    }
    const widget_request& request = done.item.request;
    request_event event{};
    event.time = log_clock::now();
    event.name = done.item.name;
    event.request_id = request.request_id;
    event.widget_id = request.widget_id;
    event.type = request.type;
    event.parsed = true;
    event.outcome = done.outcome;
    event.latency =
        std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - done.item.received);
    event.attempts = done.attempts;
    event.detail = done.detail;
    log_.request(event);
  }

  void flush_source(consumer_stats& stats) {
    try {
      for (const settle_failure& failure : source_.flush())
        settle_failed(stats, failure.action, failure.name, failure.reason);
    } catch (const std::exception& e) {
      settle_failed(stats, settle_action::ack, "(flush)", e.what());
    }
  }

  void settle_failed(consumer_stats& stats, settle_action action, std::string_view name,
                     std::string_view reason) {
    ++stats.settle_failures;
    log_.error(std::string(to_string(action)) + " of " + std::string(name) +
               " failed (it will be delivered again): " + std::string(reason));
  }

  Source& source_;
  Destination& destination_;
  std::unique_ptr<Log> owned_log_;
  Log& log_;
  consumer_options options_;
};

// The AWS combinations (s3_to_s3_consumer, s3_to_dynamodb_consumer,
// sqs_to_s3_consumer, sqs_to_dynamodb_consumer) and
// directory_to_directory_consumer are declared in widget_consumer.hpp, next
// to the policies they name.

}  // namespace widget_consumer
