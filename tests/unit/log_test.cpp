#include "widget_consumer/log/basic_log.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "widget_consumer/log/console.hpp"
#include "widget_consumer/log/daily_file.hpp"
#include "widget_consumer/log/json_lines.hpp"
#include "widget_consumer/log/null.hpp"
#include "widget_consumer/log/tee.hpp"

namespace {

using namespace widget_consumer;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

static_assert(log_policy<console_log>);
static_assert(log_policy<daily_file_log>);
static_assert(log_policy<json_lines_log>);
static_assert(log_policy<null_log>);
static_assert(log_policy<tee_log<console_log, json_lines_log>>);

// 2026-11-20T23:59:59.500Z, half a second before midnight UTC.
const log_clock::time_point before_midnight =
    log_clock::time_point(std::chrono::seconds{1795219199}) + 500ms;

request_event sample_event(log_clock::time_point time = before_midnight) {
  request_event event{};
  event.time = time;
  event.name = "1700000000001";
  event.request_id = "r-1";
  event.widget_id = "w-1";
  event.type = request_type::update;
  event.parsed = true;
  event.outcome = request_outcome::not_found;
  event.latency = 1234us;
  event.attempts = 1;
  event.detail = "widget not found";
  return event;
}

// A sink that checks it is never entered by two threads at once: the lock
// belongs to basic_log, not to the sink.
struct exclusive_sink {
  std::atomic<int> inside{0};
  bool overlapped = false;
  std::size_t count = 0;
  void enter() {
    if (inside.fetch_add(1) != 0)
      overlapped = true;
    ++count;
    std::this_thread::yield();
    inside.fetch_sub(1);
  }
  void write(const request_event&) { enter(); }
  void write(const log_message&) { enter(); }
  void write(const progress_event&) { enter(); }
  void write(const consumer_summary&) { enter(); }
  void flush() { enter(); }
};

TEST(basic_log, takes_the_lock_so_sinks_never_overlap) {
  basic_log<exclusive_sink> log;
  std::vector<std::jthread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) {
        log.request(sample_event());
        log.warning("w");
      }
    });
  threads.clear();  // joins
  log.with_sink([](exclusive_sink& sink) {
    EXPECT_FALSE(sink.overlapped);
    EXPECT_EQ(sink.count, 4000u);
  });
}

TEST(basic_log, drops_what_is_below_its_level) {
  std::ostringstream out;
  console_log log(out, false);
  log.debug("hidden");
  log.info("shown");
  log.set_level(log_level::debug);
  log.debug("now shown");
  EXPECT_EQ(out.str().find("hidden"), std::string::npos);
  EXPECT_NE(out.str().find("INFO  shown"), std::string::npos);
  EXPECT_NE(out.str().find("DEBUG now shown"), std::string::npos);
}

TEST(console_log, writes_one_human_line_per_event) {
  std::ostringstream out;
  console_log log(out, false);
  log.request(sample_event());
  EXPECT_EQ(out.str(),
            "2026-11-20T23:59:59.500Z WARN  update widget w-1 (request r-1, 1700000000001): "
            "not_found in 1.2 ms: widget not found\n");
}

TEST(console_log, on_a_terminal_progress_is_one_live_line_under_the_others) {
  std::ostringstream out;
  console_log log(out, true);
  progress_event progress{before_midnight, {}};
  progress.stats.processed = {3, 0, 0};
  log.progress(progress);
  log.error("boom");
  consumer_summary summary{before_midnight, progress.stats, stop_reason::max_idle};
  log.summary(summary);
  const std::string text = out.str();
  // Drawn without a newline, cleared and redrawn below the error line.
  EXPECT_EQ(text.find("\r\x1b[2K3 processed"), 0u);
  const auto error_at = text.find("ERROR boom\n");
  ASSERT_NE(error_at, std::string::npos);
  EXPECT_NE(text.find("3 processed", error_at), std::string::npos);
  EXPECT_NE(text.find("summary: 3 processed (3 created, 0 updated, 0 deleted)"), std::string::npos);
  EXPECT_NE(text.find("(max idle time reached)\n"), std::string::npos);
}

TEST(json_lines_log, writes_one_parseable_object_per_event) {
  std::ostringstream out;
  json_lines_log log(out);
  auto event = sample_event();
  event.detail = "a \"quoted\"\nreason";
  log.request(event);
  log.warning("careful");
  log.summary(consumer_summary{before_midnight, {}, stop_reason::stop_requested});
  std::istringstream lines(out.str());
  std::string line;
  std::vector<boost::json::object> objects;
  while (std::getline(lines, line))
    objects.push_back(boost::json::parse(line).as_object());
  ASSERT_EQ(objects.size(), 3u);
  EXPECT_EQ(objects[0].at("event"), "request");
  EXPECT_EQ(objects[0].at("widgetId"), "w-1");
  EXPECT_EQ(objects[0].at("type"), "update");
  EXPECT_EQ(objects[0].at("outcome"), "not_found");
  EXPECT_EQ(objects[0].at("detail"), "a \"quoted\"\nreason");
  EXPECT_DOUBLE_EQ(objects[0].at("latencyMs").as_double(), 1.234);
  EXPECT_EQ(objects[1].at("level"), "warning");
  EXPECT_EQ(objects[2].at("event"), "summary");
  EXPECT_EQ(objects[2].at("stopReason"), "stop requested");
}

TEST(daily_file_log, rolls_to_a_new_file_at_midnight_utc) {
  const fs::path folder = fs::temp_directory_path() /
                          ("widget_consumer_log_test_" + std::to_string(std::random_device{}()));
  {
    daily_file_log log(folder);
    log.request(sample_event(before_midnight));
    log.request(sample_event(before_midnight + 1s));
    log.flush();
  }
  auto read = [](const fs::path& path) {
    std::ifstream file(path);
    return std::string{std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
  };
  const std::string first = read(folder / "2026-11-20.log");
  const std::string second = read(folder / "2026-11-21.log");
  fs::remove_all(folder);
  EXPECT_NE(first.find("2026-11-20T23:59:59.500Z"), std::string::npos);
  EXPECT_NE(second.find("2026-11-21T00:00:00.500Z"), std::string::npos);
  EXPECT_EQ(first.find("2026-11-21T"), std::string::npos);
}

TEST(tee_log, sends_every_event_to_both_logs) {
  std::ostringstream human;
  std::ostringstream machine;
  tee_log<console_log, json_lines_log> log(std::piecewise_construct,
                                           std::forward_as_tuple(human, false),
                                           std::forward_as_tuple(machine));
  log.request(sample_event());
  log.flush();
  EXPECT_NE(human.str().find("w-1"), std::string::npos);
  EXPECT_NE(machine.str().find("\"widgetId\":\"w-1\""), std::string::npos);
}

}  // namespace
