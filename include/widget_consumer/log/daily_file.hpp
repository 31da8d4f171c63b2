#pragma once
// daily_file_log: text lines in {folder}/YYYY-MM-DD.log, one file per UTC day.
// The file is chosen by each event's own time, so it rolls at midnight UTC.

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <utility>

#include <widget_consumer/log/basic_log.hpp>

namespace widget_consumer {

/// A log sink of text lines in one file per day (folder/YYYY-MM-DD.log), UTC.
class daily_file_sink {
 public:
  /// Logs into `folder`, created if missing.
  explicit daily_file_sink(std::filesystem::path folder = "logs") : folder_(std::move(folder)) {
    std::filesystem::create_directories(folder_);
  }

  /// One line for a request's outcome, in its day's file.
  void write(const request_event& event) { line(event.time, detail::text_line(event)); }
  /// One line for a message, in its day's file.
  void write(const log_message& message) { line(message.time, detail::text_line(message)); }
  /// The progress line, in its day's file.
  void write(const progress_event& progress) { line(progress.time, detail::text_line(progress)); }
  /// The summary line, in its day's file.
  void write(const consumer_summary& summary) { line(summary.time, detail::text_line(summary)); }
  /// Flushes the open file.
  void flush() { file_.flush(); }

  /// The file that holds the events of that day.
  std::filesystem::path path_for(log_clock::time_point time) const {
    return folder_ / (day_of(time) + ".log");
  }

 private:
  static std::string day_of(log_clock::time_point time) {
    const std::tm calendar = detail::utc_calendar(time);
    char day[48];  // room for any int the compiler imagines
    std::snprintf(day, sizeof day, "%04d-%02d-%02d", calendar.tm_year + 1900, calendar.tm_mon + 1,
                  calendar.tm_mday);
    return day;
  }

  void line(log_clock::time_point time, const std::string& text) {
    std::string day = day_of(time);
    if (day != day_ || !file_.is_open()) {
      file_.close();
      file_.clear();
      file_.open(folder_ / (day + ".log"), std::ios::app);
      if (!file_)
        throw std::runtime_error("cannot open log file " + (folder_ / (day + ".log")).string());
      day_ = std::move(day);
    }
    file_ << text << '\n';
  }

  std::filesystem::path folder_;
  std::string day_;  // the day file_ holds
  std::ofstream file_;
};

/// A log into one file per day.
using daily_file_log = basic_log<daily_file_sink>;

}  // namespace widget_consumer
