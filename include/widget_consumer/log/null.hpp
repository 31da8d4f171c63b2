#pragma once
// null_log: discards everything. Needs no lock, so it is not a basic_log.

#include <string_view>

#include <widget_consumer/concepts.hpp>

namespace widget_consumer {

/// A log_policy that discards everything: for tests and benchmarks that measure without logging.
struct null_log {
  /// Discards a request's outcome.
  void request(const request_event&) noexcept {}
  /// Discards a debug message.
  void debug(std::string_view) noexcept {}
  /// Discards an info message.
  void info(std::string_view) noexcept {}
  /// Discards a warning.
  void warning(std::string_view) noexcept {}
  /// Discards an error.
  void error(std::string_view) noexcept {}
  /// Discards the progress line.
  void progress(const progress_event&) noexcept {}
  /// Discards the summary.
  void summary(const consumer_summary&) noexcept {}
  /// Nothing to flush.
  void flush() noexcept {}
};

}  // namespace widget_consumer
