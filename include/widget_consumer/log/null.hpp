#pragma once
// null_log: discards everything. Needs no lock, so it is not a basic_log.

#include <string_view>

#include <widget_consumer/concepts.hpp>

namespace widget_consumer {

struct null_log {
  void request(const request_event&) noexcept {}
  void debug(std::string_view) noexcept {}
  void info(std::string_view) noexcept {}
  void warning(std::string_view) noexcept {}
  void error(std::string_view) noexcept {}
  void progress(const progress_event&) noexcept {}
  void summary(const consumer_summary&) noexcept {}
  void flush() noexcept {}
};

}  // namespace widget_consumer
