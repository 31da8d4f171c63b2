#pragma once
// json_lines_log: one JSON object per event and line, for machines (jq,
// log shippers). Every object has "time" and "event".

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <ostream>
#include <stdexcept>

#include <widget_consumer/log/basic_log.hpp>

namespace widget_consumer {

/// A log sink of one JSON object per line, for machines (jq, a log shipper).
class json_lines_sink {
 public:
  json_lines_sink() : json_lines_sink(std::cout) {}
  /// Writes to `out`, which must outlive the sink.
  explicit json_lines_sink(std::ostream& out) : out_(&out) {}
  /// Appends to the file.
  explicit json_lines_sink(const std::filesystem::path& file)
      : file_(std::make_unique<std::ofstream>(file, std::ios::app)), out_(file_.get()) {
    if (!*file_)
      throw std::runtime_error("cannot open log file " + file.string());
  }

  /// A request's outcome as {"event":"request",...}.
  void write(const request_event& event) {
    boost::json::object object = header(event.time, "request");
    object["name"] = to_json(event.name);
    if (event.parsed) {
      object["requestId"] = to_json(event.request_id);
      object["widgetId"] = to_json(event.widget_id);
      object["type"] = to_json(to_string(event.type));
    }
    object["outcome"] = to_json(to_string(event.outcome));
    object["latencyMs"] = static_cast<double>(event.latency.count()) / 1000.0;
    object["attempts"] = event.attempts;
    if (!event.detail.empty())
      object["detail"] = to_json(event.detail);
    line(object);
  }
  /// A message as {"event":"message",...}.
  void write(const log_message& message) {
    boost::json::object object = header(message.time, "message");
    object["level"] = to_json(to_string(message.level));
    object["text"] = to_json(message.text);
    line(object);
  }
  /// The counts as {"event":"progress",...}.
  void write(const progress_event& progress) {
    boost::json::object object = header(progress.time, "progress");
    add_stats(object, progress.stats);
    line(object);
  }
  /// The summary as {"event":"summary",...}.
  void write(const consumer_summary& summary) {
    boost::json::object object = header(summary.time, "summary");
    add_stats(object, summary.stats);
    object["stopReason"] = to_json(to_string(summary.reason));
    line(object);
  }
  /// Flushes the stream.
  void flush() { out_->flush(); }

 private:
  static boost::json::string to_json(std::string_view text) {
    return boost::json::string(text.data(), text.size());
  }
  static boost::json::object header(log_clock::time_point time, std::string_view event) {
    boost::json::object object;
    object["time"] = to_json(detail::format_time(time));
    object["event"] = to_json(event);
    return object;
  }
  static void add_stats(boost::json::object& object, const consumer_stats& stats) {
    object["created"] = stats.processed[0];
    object["updated"] = stats.processed[1];
    object["deleted"] = stats.processed[2];
    object["notFound"] = stats.not_found;
    object["rejected"] = stats.rejected;
    object["retried"] = stats.retried;
    object["failed"] = stats.failed;
    object["stale"] = stats.stale;
    object["ackFailures"] = stats.settle_failures;
    object["pollFailures"] = stats.poll_failures;
    object["heartbeatRefusals"] = stats.heartbeat_refusals;
    object["inFlight"] = stats.in_flight;
    object["elapsedMs"] = stats.elapsed.count();
    object["requestsPerSecond"] = stats.rate();
  }
  void line(const boost::json::object& object) { *out_ << boost::json::serialize(object) << '\n'; }

  std::unique_ptr<std::ofstream> file_;  // when the sink owns its file
  std::ostream* out_;
};

/// A log of JSON lines.
using json_lines_log = basic_log<json_lines_sink>;

}  // namespace widget_consumer
