#pragma once
// The example programs' log, chosen at run time from the command line: human
// lines or JSON lines on stderr, plus daily files when --log-dir is given,
// plus the metrics when --metrics-listen is given.
// The library's logs are compile-time policies; this one is a log_policy too,
// forwarding each event to the logs the user asked for.

#include "common/command_line.hpp"

#include <widget_consumer/log/console.hpp>
#include <widget_consumer/log/daily_file.hpp>
#include <widget_consumer/log/json_lines.hpp>
#include <widget_consumer/metrics/metrics_log.hpp>

#include <iostream>
#include <optional>
#include <string_view>

namespace examples {

class program_log {
 public:
  explicit program_log(const consumer_options& options) {
    namespace wc = widget_consumer;
    // The terminal shows warnings, progress and the summary unless asked for
    // more; files keep every request, as the course's consumer logs do.
    const auto screen_level = options.verbose ? wc::log_level::debug : wc::log_level::warning;
    if (options.log_format == "json") {
      json_.emplace(std::cerr);
      json_->set_level(screen_level);
    } else {
      console_.emplace();
      console_->set_level(screen_level);
    }
    if (!options.log_dir.empty()) {
      file_.emplace(std::filesystem::path(options.log_dir));
      file_->set_level(options.verbose ? wc::log_level::debug : wc::log_level::info);
    }
    if (!options.metrics_listen.empty())
      metrics_.emplace();
  }

  // Null unless --metrics-listen was given.
  const widget_consumer::metrics_log* metrics() const { return metrics_ ? &*metrics_ : nullptr; }

  void request(const widget_consumer::request_event& event) {
    each([&](auto& log) { log.request(event); });
  }
  void debug(std::string_view text) {
    each([&](auto& log) { log.debug(text); });
  }
  void info(std::string_view text) {
    each([&](auto& log) { log.info(text); });
  }
  void warning(std::string_view text) {
    each([&](auto& log) { log.warning(text); });
  }
  void error(std::string_view text) {
    each([&](auto& log) { log.error(text); });
  }
  void progress(const widget_consumer::progress_event& progress) {
    each([&](auto& log) { log.progress(progress); });
  }
  void summary(const widget_consumer::consumer_summary& summary) {
    each([&](auto& log) { log.summary(summary); });
  }
  void flush() {
    each([](auto& log) { log.flush(); });
  }
  void observe(const widget_consumer::consumer_state& state) {
    if (metrics_)
      metrics_->observe(state);
  }
  void store_call(const widget_consumer::store_call_event& event) {
    if (metrics_)
      metrics_->store_call(event);
  }

 private:
  template <class F>
  void each(F&& f) {
    if (console_)
      f(*console_);
    if (json_)
      f(*json_);
    if (file_)
      f(*file_);
    if (metrics_)
      f(*metrics_);
  }

  std::optional<widget_consumer::console_log> console_;
  std::optional<widget_consumer::json_lines_log> json_;
  std::optional<widget_consumer::daily_file_log> file_;
  std::optional<widget_consumer::metrics_log> metrics_;
};

static_assert(widget_consumer::log_policy<program_log>);

}  // namespace examples
