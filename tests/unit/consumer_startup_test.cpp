#include "widget_consumer/consumer.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>

#include "support/memory_policies.hpp"

// What the consumer does with errors retrying cannot fix (unrecoverable_error)
// and with its policies' start-up checks (concepts.hpp, startup_checking).

namespace {

using namespace widget_consumer;
using namespace std::chrono_literals;

using widget_consumer::testing::capturing_log;
using widget_consumer::testing::memory_source;
using widget_consumer::testing::memory_store;

consumer_options quick() {
  consumer_options options;
  options.concurrency = 2;
  options.empty_poll_delay = 2ms;
  options.max_idle = 60ms;
  options.max_runtime = 5s;  // a safety net only
  options.poll_failure_delay = 1ms;
  options.progress_interval = 0ms;
  return options;
}

// A source whose start-up check throws `check_error` (nothing: passes).
template <class Error>
struct checked_source : memory_source {
  int checks = 0;
  void check_ready() {
    ++checks;
    throw Error("the check failed");
  }
};

struct unrecoverable_store : memory_store {
  void check_ready() { throw unrecoverable_error("cannot use the table: it does not exist"); }
};

std::size_t messages_with(capturing_log& log, log_level level, const std::string& text) {
  std::size_t count = 0;
  log.with_sink([&](const auto& sink) {
    for (const auto& message : sink.messages)
      count += message.level == level && message.text.find(text) != std::string::npos;
  });
  return count;
}

static_assert(startup_checking<checked_source<unrecoverable_error>>);
static_assert(startup_checking<unrecoverable_store>);
static_assert(!startup_checking<memory_source>);

TEST(consumer_startup, an_unrecoverable_source_check_ends_run_before_any_poll) {
  checked_source<unrecoverable_error> source;
  source.push(R"({"type":"create","requestId":"r1","widgetId":"w1","owner":"Sue"})");
  memory_store store;
  capturing_log log;
  consumer<checked_source<unrecoverable_error>, memory_store, capturing_log> consumer(source, store,
                                                                                      log, quick());

  EXPECT_THROW(consumer.run(), unrecoverable_error);
  EXPECT_EQ(source.checks, 1);
  EXPECT_TRUE(source.acked().empty());
  EXPECT_EQ(source.remaining(), 1u);  // not taken: nothing to give back
}

TEST(consumer_startup, an_unrecoverable_store_check_ends_run_before_any_poll) {
  memory_source source;
  source.push(R"({"type":"create","requestId":"r1","widgetId":"w1","owner":"Sue"})");
  unrecoverable_store store;
  capturing_log log;
  consumer<memory_source, unrecoverable_store, capturing_log> consumer(source, store, log, quick());

  EXPECT_THROW(consumer.run(), unrecoverable_error);
  EXPECT_EQ(source.remaining(), 1u);
}

TEST(consumer_startup, a_check_that_may_heal_is_a_warning_and_the_run_goes_on) {
  checked_source<std::runtime_error> source;
  source.push(R"({"type":"create","requestId":"r1","widgetId":"w1","owner":"Sue"})");
  memory_store store;
  capturing_log log;

  const auto summary = consumer<checked_source<std::runtime_error>, memory_store, capturing_log>(
                           source, store, log, quick())
                           .run();

  EXPECT_EQ(summary.reason, stop_reason::max_idle);
  EXPECT_EQ(source.acked().size(), 1u);
  EXPECT_EQ(messages_with(log, log_level::warning, "the check failed"), 1u);
}

TEST(consumer_startup, an_unrecoverable_poll_failure_stops_at_once_and_is_said_once) {
  struct vanishing_source : memory_source {
    int polls = 0;
    std::vector<received_request<ticket_type>> poll(std::chrono::milliseconds wait,
                                                    std::size_t max) {
      // The first poll hands out the request; the bucket is gone after it.
      if (++polls > 1)
        throw unrecoverable_error("cannot list the request bucket s3://gone: NoSuchBucket");
      return memory_source::poll(wait, max);
    }
  } source;
  source.push(R"({"type":"create","requestId":"r1","widgetId":"w1","owner":"Sue"})");
  memory_store store;
  capturing_log log;
  auto options = quick();
  options.max_poll_failures = 10;
  options.max_idle = 0ms;  // only the error can end it before max_runtime

  const auto summary =
      consumer<vanishing_source, memory_store, capturing_log>(source, store, log, options).run();

  EXPECT_EQ(summary.reason, stop_reason::unrecoverable);
  EXPECT_EQ(source.polls, 2);
  EXPECT_EQ(summary.stats.poll_failures, 1u);
  EXPECT_LT(summary.stats.elapsed, 1s);
  // What was taken before the error is still settled.
  EXPECT_EQ(source.acked().size(), 1u);
  EXPECT_EQ(messages_with(log, log_level::error, "NoSuchBucket"), 1u);
}

}  // namespace
