#pragma once
// console_log: human-readable lines on stderr. When stderr is a terminal the
// progress is one live line, redrawn in place, that other lines scroll above.

#include <unistd.h>
#include <iostream>
#include <ostream>
#include <string>

#include <widget_consumer/log/basic_log.hpp>

namespace widget_consumer {

/// A log sink of text lines on a stream (stderr), with a live progress line on a terminal.
class console_sink {
 public:
  console_sink() : console_sink(std::cerr, ::isatty(STDERR_FILENO) == 1) {}
  /// live: draw progress as one line redrawn in place (a terminal).
  console_sink(std::ostream& out, bool live) : out_(&out), live_(live) {}

  /// One line for a request's outcome.
  void write(const request_event& event) { line(detail::text_line(event)); }
  /// One line for a message.
  void write(const log_message& message) { line(detail::text_line(message)); }
  /// The progress line: redrawn in place when live, else a line of its own.
  void write(const progress_event& progress) {
    if (!live_) {
      line(detail::text_line(progress));
      return;
    }
    live_line_ = detail::format_progress(progress);
    *out_ << clear_line << live_line_ << std::flush;
  }
  /// The summary line; clears the live progress line first.
  void write(const consumer_summary& summary) {
    live_line_.clear();
    line(detail::text_line(summary));
  }
  /// Flushes the stream.
  void flush() { out_->flush(); }

 private:
  static constexpr const char* clear_line = "\r\x1b[2K";

  void line(const std::string& text) {
    if (live_ && !live_line_.empty()) {
      *out_ << clear_line << text << '\n' << live_line_ << std::flush;
      return;
    }
    *out_ << text << '\n';
  }

  std::ostream* out_;
  bool live_;
  std::string live_line_;  // the progress line on screen, redrawn below new lines
};

/// The default log: text lines on stderr.
using console_log = basic_log<console_sink>;

}  // namespace widget_consumer
