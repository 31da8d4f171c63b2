#pragma once
// tee_log<A, B>: every event to both logs. Each log locks itself, so the tee
// takes no lock of its own (and cannot deadlock against them).

#include <string_view>
#include <tuple>
#include <utility>

#include <widget_consumer/concepts.hpp>

namespace widget_consumer {

/// A log_policy that writes every event to two logs, A then B (the console and a metrics log).
template <log_policy A, log_policy B>
class tee_log {
 public:
  tee_log() = default;
  /// Each tuple constructs one side in place: logs hold mutexes and cannot move.
  template <class... ArgsA, class... ArgsB>
  tee_log(std::piecewise_construct_t, std::tuple<ArgsA...> first, std::tuple<ArgsB...> second)
      : first_(std::make_from_tuple<A>(std::move(first))),
        second_(std::make_from_tuple<B>(std::move(second))) {}

  /// A request's outcome, to both sides.
  void request(const request_event& event) {
    first_.request(event);
    second_.request(event);
  }
  /// A debug message, to both sides.
  void debug(std::string_view text) {
    first_.debug(text);
    second_.debug(text);
  }
  /// An info message, to both sides.
  void info(std::string_view text) {
    first_.info(text);
    second_.info(text);
  }
  /// A warning, to both sides.
  void warning(std::string_view text) {
    first_.warning(text);
    second_.warning(text);
  }
  /// An error, to both sides.
  void error(std::string_view text) {
    first_.error(text);
    second_.error(text);
  }
  /// The progress line, to both sides.
  void progress(const progress_event& progress) {
    first_.progress(progress);
    second_.progress(progress);
  }
  /// The summary, to both sides.
  void summary(const consumer_summary& summary) {
    first_.summary(summary);
    second_.summary(summary);
  }
  /// Flushes both sides.
  void flush() {
    first_.flush();
    second_.flush();
  }

  /// The optional hooks (concepts.hpp), to the sides that have them.
  void observe(const consumer_state& state) requires(state_observing<A> || state_observing<B>) {
    if constexpr (state_observing<A>)
      first_.observe(state);
    if constexpr (state_observing<B>)
      second_.observe(state);
  }
  /// A store call's timing, to the sides that observe store calls.
  void store_call(const store_call_event& event) requires(store_call_observing<A> ||
                                                          store_call_observing<B>) {
    if constexpr (store_call_observing<A>)
      first_.store_call(event);
    if constexpr (store_call_observing<B>)
      second_.store_call(event);
  }

  /// The first log.
  A& first() noexcept { return first_; }
  /// The second log.
  B& second() noexcept { return second_; }

 private:
  A first_;
  B second_;
};

}  // namespace widget_consumer
