#pragma once
// run_clock: the time rules of one consumer run, without threads or a clock
// of its own (the caller says what time it is): when max_runtime or max_idle
// ends the run, and when a progress event is due.
//
// Idle time counts from the later of the last poll that returned requests and
// the last settle (settling can take longer than max_idle), only while
// nothing is in flight, and starts again while the source says it still
// holds undelivered requests (concepts.hpp, pending_reporting).

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>

#include <widget_consumer/consumer_options.hpp>
#include <widget_consumer/events.hpp>

namespace widget_consumer::detail {

class run_clock {
 public:
  using clock = std::chrono::steady_clock;

  run_clock(clock::time_point start, const consumer_options& options)
      : start_(start),
        last_activity_(start),
        next_progress_(start + options.progress_interval),
        max_runtime_(options.max_runtime),
        max_idle_(options.max_idle),
        progress_interval_(options.progress_interval) {}

  clock::time_point start() const noexcept { return start_; }
  clock::time_point last_activity() const noexcept { return last_activity_; }

  void polled_requests(clock::time_point now) noexcept { last_activity_ = now; }
  void settled(clock::time_point now) noexcept { last_settled_ = now; }

  // has_pending() is asked only once the run would otherwise be idle.
  template <class HasPending>
  std::optional<stop_reason> limit_reached(clock::time_point now, std::uint64_t in_flight,
                                           HasPending&& has_pending) {
    if (max_runtime_.count() > 0 && now - start_ >= max_runtime_)
      return stop_reason::max_runtime;
    if (max_idle_.count() > 0 && in_flight == 0 &&
        now - std::max(last_activity_, last_settled_) >= max_idle_) {
      if (!has_pending())
        return stop_reason::max_idle;
      last_activity_ = now;
    }
    return std::nullopt;
  }

  // True once per progress_interval; never when it is 0.
  bool progress_due(clock::time_point now) noexcept {
    if (progress_interval_.count() <= 0 || now < next_progress_)
      return false;
    next_progress_ = now + progress_interval_;
    return true;
  }

 private:
  clock::time_point start_;
  clock::time_point last_activity_;  // the last poll that returned requests
  clock::time_point last_settled_{};
  clock::time_point next_progress_;
  std::chrono::milliseconds max_runtime_;
  std::chrono::milliseconds max_idle_;
  std::chrono::milliseconds progress_interval_;
};

}  // namespace widget_consumer::detail
