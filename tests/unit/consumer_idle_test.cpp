#include "widget_consumer/consumer.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "support/memory_policies.hpp"

// max_idle means "nothing to do", not "nothing handed out lately": time spent
// applying and settling, and time the source spends fetching what it has
// already listed, is not idle time.

namespace {

using namespace widget_consumer;
using namespace std::chrono_literals;
using widget_consumer::testing::capturing_log;
using widget_consumer::testing::memory_source;
using widget_consumer::testing::memory_store;

std::string create(const std::string& id) {
  return R"({"type":"create","requestId":"r)" + id + R"(","widgetId":"w)" + id +
         R"(","owner":"Mary Jones"})";
}

consumer_options idle_after(std::chrono::milliseconds max_idle) {
  consumer_options options;
  options.concurrency = 1;
  options.empty_poll_delay = 5ms;
  options.max_idle = max_idle;
  options.max_runtime = 10s;  // a safety net only
  options.progress_interval = 0ms;
  return options;
}

// Each request takes longer to apply than max_idle: the run must still
// drain the source, one request at a time.
TEST(consumer_idle, applying_and_settling_is_not_idle_time) {
  memory_source source;
  memory_store store;
  store.delay = 150ms;
  capturing_log log;
  for (int i = 0; i < 3; ++i)
    source.push(create(std::to_string(i)));
  consumer_options options = idle_after(100ms);
  options.max_in_flight = 1;

  const auto summary =
      consumer<memory_source, memory_store, capturing_log>(source, store, log, options).run();

  EXPECT_EQ(summary.reason, stop_reason::max_idle);
  EXPECT_EQ(source.acked().size(), 3u);
  EXPECT_EQ(source.remaining(), 0u);
}

// A source still fetching what it listed (the S3 source's read-ahead) says
// so through has_pending(); polls that return nothing meanwhile are not idle.
class slow_fetching_source : public memory_source {
 public:
  explicit slow_fetching_source(std::chrono::milliseconds fetch_time)
      : ready_at_(clock::now() + fetch_time) {}

  std::vector<received_request<ticket_type>> poll(std::chrono::milliseconds wait, std::size_t max) {
    if (clock::now() < ready_at_)
      return {};
    return memory_source::poll(wait, max);
  }

  bool has_pending() { return clock::now() < ready_at_ || remaining() > 0; }

 private:
  clock::time_point ready_at_;
};

TEST(consumer_idle, a_source_with_pending_requests_is_not_idle) {
  slow_fetching_source source(300ms);
  memory_store store;
  capturing_log log;
  for (int i = 0; i < 5; ++i)
    source.push(create(std::to_string(i)));

  const auto summary = consumer<slow_fetching_source, memory_store, capturing_log>(
                           source, store, log, idle_after(100ms))
                           .run();

  EXPECT_EQ(summary.reason, stop_reason::max_idle);
  EXPECT_EQ(source.acked().size(), 5u);
  EXPECT_EQ(source.remaining(), 0u);
}

}  // namespace
