#include "widget_consumer/consumer.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/memory_policies.hpp"

// What the summary says about the work a run took, which a program's exit
// status is made of (README, "Exit status"): how many requests it left
// unsettled, and whether any poll reached the source.

namespace {

using namespace widget_consumer;
using namespace std::chrono_literals;
using widget_consumer::testing::capturing_log;
using widget_consumer::testing::memory_source;
using widget_consumer::testing::memory_store;
using test_consumer = consumer<memory_source, memory_store, capturing_log>;

std::string create(const std::string& id) {
  return R"({"type":"create","requestId":"r)" + id + R"(","widgetId":"w)" + id +
         R"(","owner":"Mary Jones"})";
}

consumer_options fast() {
  consumer_options options;
  options.concurrency = 2;
  options.empty_poll_delay = 2ms;
  options.max_idle = 60ms;
  options.max_runtime = 5s;  // a safety net only
  options.max_attempts = 1;
  options.retry_backoff = 1ms;
  options.release_delay = 5ms;
  options.poll_failure_delay = 5ms;
  options.progress_interval = 0ms;
  return options;
}

TEST(consumer_summary, a_drain_leaves_nothing_unsettled_and_records_its_last_poll) {
  memory_source source;
  memory_store store;
  capturing_log log;
  for (int i = 0; i < 5; ++i)
    source.push(create(std::to_string(i)));

  const consumer_summary summary = test_consumer(source, store, log, fast()).run();

  EXPECT_EQ(summary.reason, stop_reason::max_idle);
  EXPECT_EQ(summary.unsettled, 0u);
  EXPECT_NE(summary.last_poll_ok, log_clock::time_point{});
  EXPECT_EQ(summary.failed_polls_at_end, 0u);
}

// A store failure that heals within the run: the release came back and was
// acked, so the run finished its work.
TEST(consumer_summary, a_release_that_came_back_and_was_acked_is_settled) {
  memory_source source;
  memory_store store;
  capturing_log log;
  source.push(create("1"));
  int calls = 0;
  store.before_apply = [&](const widget_request&) {
    if (++calls == 1)
      throw store_error(store_failure::transient, "503");
  };

  const consumer_summary summary = test_consumer(source, store, log, fast()).run();

  EXPECT_EQ(summary.stats.retried, 1u);
  EXPECT_EQ(summary.unsettled, 0u);
  EXPECT_EQ(source.remaining(), 0u);
}

// The store stays down: at the end of the run every request taken is a
// release, still in the source.
TEST(consumer_summary, requests_released_when_the_run_ends_are_unsettled) {
  memory_source source;
  memory_store store;
  capturing_log log;
  for (int i = 0; i < 3; ++i)
    source.push(create(std::to_string(i)));
  store.before_apply = [](const widget_request&) {
    throw store_error(store_failure::transient, "503");
  };
  consumer_options options = fast();
  options.max_idle = 0ms;  // releases keep coming back: only the runtime ends it
  options.max_runtime = 200ms;

  const consumer_summary summary = test_consumer(source, store, log, options).run();

  EXPECT_EQ(summary.reason, stop_reason::max_runtime);
  EXPECT_EQ(summary.unsettled, 3u);
  EXPECT_EQ(source.remaining(), 3u);
}

// An ack that the source reports as failed: the request comes again, so it
// is not settled.
TEST(consumer_summary, a_failed_ack_is_unsettled) {
  memory_source source;
  memory_store store;
  capturing_log log;
  source.push(create("1"));
  source.failures_to_report = {
      settle_failure{.action = settle_action::ack, .name = "elsewhere", .reason = "503"}};

  const consumer_summary summary = test_consumer(source, store, log, fast()).run();

  EXPECT_EQ(summary.stats.settle_failures, 1u);
  EXPECT_EQ(summary.unsettled, 1u);
}

class unreachable_source : public memory_source {
 public:
  std::vector<received_request<ticket_type>> poll(std::chrono::milliseconds, std::size_t) {
    throw std::runtime_error("connection refused");
  }
};

// Every poll failed: idle time still ends the run, and the summary says
// that the source was never reached.
TEST(consumer_summary, a_source_never_reached_leaves_the_last_poll_at_the_epoch) {
  unreachable_source source;
  memory_store store;
  capturing_log log;

  const consumer_summary summary =
      consumer<unreachable_source, memory_store, capturing_log>(source, store, log, fast()).run();

  EXPECT_GT(summary.stats.poll_failures, 0u);
  EXPECT_EQ(summary.last_poll_ok, log_clock::time_point{});
  EXPECT_EQ(summary.failed_polls_at_end, summary.stats.poll_failures);
  EXPECT_EQ(summary.unsettled, 0u);
}

// Reached, then failing: --max-idle ends the run with its last polls failed,
// which the summary says (the source was not seen empty); one success in
// between starts the count again.
class failing_after_source : public memory_source {
 public:
  std::vector<received_request<ticket_type>> poll(std::chrono::milliseconds wait, std::size_t max) {
    if (++polls_ == 1 || polls_ == 3)
      return memory_source::poll(wait, max);
    throw std::runtime_error("connection refused");
  }

 private:
  int polls_ = 0;
};

TEST(consumer_summary, a_run_that_went_idle_while_polls_failed_says_so) {
  failing_after_source source;
  memory_store store;
  capturing_log log;
  source.push(create("1"));
  consumer_options options = fast();
  options.max_poll_failures = 0;  // only idleness ends it

  const consumer_summary summary =
      consumer<failing_after_source, memory_store, capturing_log>(source, store, log, options)
          .run();

  EXPECT_EQ(summary.reason, stop_reason::max_idle);
  EXPECT_NE(summary.last_poll_ok, log_clock::time_point{});
  EXPECT_GT(summary.failed_polls_at_end, 0u);
  EXPECT_EQ(summary.failed_polls_at_end, summary.stats.poll_failures - 1);
  EXPECT_EQ(summary.unsettled, 0u);
}

// Each run counts its own: what one left is not the next one's.
TEST(consumer_summary, a_second_run_counts_only_its_own) {
  memory_source source;
  memory_store store;
  capturing_log log;
  source.push(create("1"));
  bool down = true;
  store.before_apply = [&](const widget_request&) {
    if (down)
      throw store_error(store_failure::transient, "503");
  };
  consumer_options options = fast();
  options.max_idle = 0ms;
  options.max_runtime = 100ms;
  test_consumer consumer(source, store, log, options);
  EXPECT_EQ(consumer.run().unsettled, 1u);

  down = false;
  const consumer_summary second = consumer.run();
  EXPECT_EQ(second.unsettled, 0u);
  EXPECT_EQ(source.remaining(), 0u);
}

}  // namespace
