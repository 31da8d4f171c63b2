#pragma once
// basic_log<Sink, Mutex>: a log_policy that takes its mutex and then calls
// the sink's unlocked hooks (the shape of spdlog's base_sink). Sinks stay
// simple and never see two calls at once; the level filter lives here so
// every sink filters the same way. Also the text formatting shared by the
// human-readable sinks.

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include <widget_consumer/concepts.hpp>

namespace widget_consumer {

/// The level at which a request's outcome is reported.
inline log_level level_of(request_outcome outcome) noexcept {
  switch (outcome) {
    case request_outcome::applied:
    case request_outcome::released:
    case request_outcome::stale:
      return log_level::info;
    case request_outcome::not_found:
    case request_outcome::rejected:
      return log_level::warning;
    case request_outcome::failed:
      return log_level::error;
  }
  return log_level::info;
}

/// A log_policy made of a Sink (where lines go) and a level filter, the sink called under a Mutex.
template <log_sink Sink, class Mutex = std::mutex>
class basic_log {
 public:
  /// A log whose sink is made from `args`.
  template <class... Args>
  requires std::constructible_from<Sink, Args...>
  explicit basic_log(Args&&... args) : sink_(std::forward<Args>(args)...) {}

  basic_log(const basic_log&) = delete;
  basic_log& operator=(const basic_log&) = delete;

  /// Writes one request's outcome, when its level is enabled (warnings for not_found, ...).
  void request(const request_event& event) {
    if (!enabled(level_of(event.outcome)))
      return;
    std::lock_guard lock(mutex_);
    sink_.write(event);
  }
  /// A debug message; dropped unless the level is debug.
  void debug(std::string_view text) { message(log_level::debug, text); }
  /// An info message.
  void info(std::string_view text) { message(log_level::info, text); }
  /// A warning.
  void warning(std::string_view text) { message(log_level::warning, text); }
  /// An error.
  void error(std::string_view text) { message(log_level::error, text); }

  /// A message at `level`, dropped when below the log's level.
  void message(log_level level, std::string_view text) {
    if (!enabled(level))
      return;
    const log_message message{log_clock::now(), level, text};
    std::lock_guard lock(mutex_);
    sink_.write(message);
  }
  /// Writes the periodic progress line; never filtered.
  void progress(const progress_event& progress) {
    std::lock_guard lock(mutex_);
    sink_.write(progress);
  }
  /// Writes the end-of-run summary; never filtered.
  void summary(const consumer_summary& summary) {
    std::lock_guard lock(mutex_);
    sink_.write(summary);
  }
  /// Flushes the sink.
  void flush() {
    std::lock_guard lock(mutex_);
    sink_.flush();
  }

  /// Messages and request events below this level are dropped. Default: info.
  void set_level(log_level level) noexcept { level_.store(level, std::memory_order_relaxed); }
  /// The level below which messages and request events are dropped.
  log_level level() const noexcept { return level_.load(std::memory_order_relaxed); }
  /// True when a message at `level` would be written.
  bool enabled(log_level level) const noexcept { return level >= this->level(); }

  /// Runs f(sink) under the lock: the only safe way to reach the sink while
  /// other threads may log.
  template <class F>
  decltype(auto) with_sink(F&& f) {
    std::lock_guard lock(mutex_);
    return std::forward<F>(f)(sink_);
  }

 private:
  Mutex mutex_;
  std::atomic<log_level> level_{log_level::info};
  Sink sink_;
};

namespace detail {

inline std::tm utc_calendar(log_clock::time_point time) {
  const std::time_t seconds = log_clock::to_time_t(time);
  std::tm calendar{};
  gmtime_r(&seconds, &calendar);
  return calendar;
}

// 2026-11-20T22:43:12.123Z
inline std::string format_time(log_clock::time_point time) {
  const std::tm calendar = utc_calendar(time);
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(
                          time.time_since_epoch() % std::chrono::seconds{1})
                          .count();
  char text[80];  // room for any int the compiler imagines
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", calendar.tm_year + 1900,
                calendar.tm_mon + 1, calendar.tm_mday, calendar.tm_hour, calendar.tm_min,
                calendar.tm_sec, static_cast<int>(millis));
  return text;
}

inline std::string format_milliseconds(std::chrono::microseconds duration) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f ms", static_cast<double>(duration.count()) / 1000.0);
  return text;
}

// "update widget w-1 (request r-9, 1700000000000.json): not_found in 1.2 ms: no such widget"
inline std::string format_request(const request_event& event) {
  std::string line;
  if (event.parsed) {
    line.append(to_string(event.type)).append(" widget ").append(event.widget_id);
    line.append(" (request ").append(event.request_id).append(", ").append(event.name);
    line.append(")");
  } else {
    line.append("request ").append(event.name);
  }
  line.append(": ").append(to_string(event.outcome));
  line.append(" in ").append(format_milliseconds(event.latency));
  if (event.attempts > 1)
    line.append(" after ").append(std::to_string(event.attempts)).append(" attempts");
  if (!event.detail.empty())
    line.append(": ").append(event.detail);
  return line;
}

inline std::string format_stats(const consumer_stats& stats) {
  char rate[32];
  std::snprintf(rate, sizeof rate, "%.1f", stats.rate());
  std::string line =
      std::to_string(stats.processed_total()) + " processed (" +
      std::to_string(stats.processed[0]) + " created, " + std::to_string(stats.processed[1]) +
      " updated, " + std::to_string(stats.processed[2]) + " deleted), " +
      std::to_string(stats.not_found) + " not found, " + std::to_string(stats.rejected) +
      " rejected, " + std::to_string(stats.retried) + " retried, " + std::to_string(stats.failed) +
      " failed";
  if (stats.stale != 0)
    line += ", " + std::to_string(stats.stale) + " stale";
  if (stats.settle_failures != 0)
    line += ", " + std::to_string(stats.settle_failures) + " ack failures";
  if (stats.poll_failures != 0)
    line += ", " + std::to_string(stats.poll_failures) + " poll failures";
  if (stats.heartbeat_refusals != 0)
    line += ", " + std::to_string(stats.heartbeat_refusals) + " heartbeat refusals";
  line += ", " + std::string(rate) + " requests/s";
  return line;
}

inline std::string format_progress(const progress_event& progress) {
  return format_stats(progress.stats) + ", " + std::to_string(progress.stats.in_flight) +
         " in flight";
}

inline std::string format_summary(const consumer_summary& summary) {
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%.3f",
                static_cast<double>(summary.stats.elapsed.count()) / 1000.0);
  return "summary: " + format_stats(summary.stats) + " in " + seconds + " s (" +
         std::string(to_string(summary.reason)) + ")";
}

inline std::string level_tag(log_level level) {
  switch (level) {
    case log_level::debug:
      return "DEBUG";
    case log_level::info:
      return "INFO ";
    case log_level::warning:
      return "WARN ";
    case log_level::error:
      return "ERROR";
  }
  return "?    ";
}

// The one-line text form of each event, shared by console and daily file.
inline std::string text_line(const request_event& event) {
  return format_time(event.time) + " " + level_tag(level_of(event.outcome)) + " " +
         format_request(event);
}
inline std::string text_line(const log_message& message) {
  return format_time(message.time) + " " + level_tag(message.level) + " " +
         std::string(message.text);
}
inline std::string text_line(const progress_event& progress) {
  return format_time(progress.time) + " INFO  progress: " + format_progress(progress);
}
inline std::string text_line(const consumer_summary& summary) {
  return format_time(summary.time) + " INFO  " + format_summary(summary);
}

}  // namespace detail
}  // namespace widget_consumer
