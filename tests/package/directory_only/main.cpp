// Drains a folder of requests into a folder of widgets with the headers the
// core component promises: the consumer, the directory source and store,
// every log. Exits 0 when the widget was stored.
#include <widget_consumer/concepts.hpp>
#include <widget_consumer/consumer.hpp>
#include <widget_consumer/destination/directory.hpp>
#include <widget_consumer/log/basic_log.hpp>
#include <widget_consumer/log/console.hpp>
#include <widget_consumer/log/daily_file.hpp>
#include <widget_consumer/log/json_lines.hpp>
#include <widget_consumer/log/null.hpp>
#include <widget_consumer/log/tee.hpp>
#include <widget_consumer/request.hpp>
#include <widget_consumer/source/directory.hpp>
#include <widget_consumer/stop.hpp>
#include <widget_consumer/widget.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>

namespace wc = widget_consumer;

int main() {
  const auto root = std::filesystem::temp_directory_path() / "widget_consumer_directory_user";
  std::filesystem::remove_all(root);
  std::filesystem::create_directories(root / "requests");
  std::ofstream(root / "requests" / "1700000000001")
      << R"({"type":"create","requestId":"r1","widgetId":"w1","owner":"Mary Anne"})";

  wc::directory_source source(root / "requests");
  wc::directory_store store(root / "widgets");
  wc::null_log log;
  wc::consumer_options options;
  options.max_idle = std::chrono::milliseconds(50);
  const auto summary = wc::consumer<wc::directory_source, wc::directory_store, wc::null_log>(
                           source, store, log, options)
                           .run();
  const bool stored = store.load("Mary Anne", "w1").has_value();
  std::cout << "directory_user: " << summary.stats.processed_total() << " request applied\n";
  std::filesystem::remove_all(root);
  return stored ? 0 : 1;
}
