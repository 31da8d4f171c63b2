#include "widget_consumer/detail/run_clock.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>

namespace {

using namespace widget_consumer;
using namespace std::chrono_literals;
using detail::run_clock;

const run_clock::clock::time_point t0{};  // any instant will do: the clock is never read

consumer_options limits(std::chrono::milliseconds max_runtime, std::chrono::milliseconds max_idle,
                        std::chrono::milliseconds progress_interval = 0ms) {
  consumer_options options;
  options.max_runtime = max_runtime;
  options.max_idle = max_idle;
  options.progress_interval = progress_interval;
  return options;
}

const auto nothing_pending = [] { return false; };

TEST(run_clock, max_runtime_ends_the_run_whatever_is_in_flight) {
  run_clock times(t0, limits(1000ms, 0ms));
  EXPECT_EQ(times.limit_reached(t0 + 999ms, 5, nothing_pending), std::nullopt);
  EXPECT_EQ(times.limit_reached(t0 + 1000ms, 5, nothing_pending), stop_reason::max_runtime);
}

TEST(run_clock, no_limits_means_no_end) {
  run_clock times(t0, limits(0ms, 0ms));
  EXPECT_EQ(times.limit_reached(t0 + 24h, 0, nothing_pending), std::nullopt);
}

TEST(run_clock, idle_needs_nothing_in_flight) {
  run_clock times(t0, limits(0ms, 100ms));
  EXPECT_EQ(times.limit_reached(t0 + 500ms, 1, nothing_pending), std::nullopt);
  EXPECT_EQ(times.limit_reached(t0 + 500ms, 0, nothing_pending), stop_reason::max_idle);
}

TEST(run_clock, idle_time_counts_from_the_later_of_the_last_poll_and_the_last_settle) {
  run_clock times(t0, limits(0ms, 100ms));
  times.polled_requests(t0 + 50ms);
  times.settled(t0 + 300ms);  // settling took longer than max_idle
  EXPECT_EQ(times.limit_reached(t0 + 399ms, 0, nothing_pending), std::nullopt);
  EXPECT_EQ(times.limit_reached(t0 + 400ms, 0, nothing_pending), stop_reason::max_idle);

  run_clock later_poll(t0, limits(0ms, 100ms));
  later_poll.settled(t0 + 50ms);
  later_poll.polled_requests(t0 + 300ms);
  EXPECT_EQ(later_poll.limit_reached(t0 + 399ms, 0, nothing_pending), std::nullopt);
  EXPECT_EQ(later_poll.limit_reached(t0 + 400ms, 0, nothing_pending), stop_reason::max_idle);
}

TEST(run_clock, pending_work_restarts_the_idle_time_and_is_asked_only_when_idle) {
  run_clock times(t0, limits(0ms, 100ms));
  int asked = 0;
  bool pending = true;
  const auto has_pending = [&] {
    ++asked;
    return pending;
  };
  EXPECT_EQ(times.limit_reached(t0 + 50ms, 0, has_pending), std::nullopt);
  EXPECT_EQ(asked, 0);
  EXPECT_EQ(times.limit_reached(t0 + 100ms, 0, has_pending), std::nullopt);
  EXPECT_EQ(asked, 1);
  pending = false;
  EXPECT_EQ(times.limit_reached(t0 + 199ms, 0, has_pending), std::nullopt);
  EXPECT_EQ(asked, 1);
  EXPECT_EQ(times.limit_reached(t0 + 200ms, 0, has_pending), stop_reason::max_idle);
  EXPECT_EQ(asked, 2);
}

TEST(run_clock, progress_is_due_once_per_interval_and_never_without_one) {
  run_clock times(t0, limits(0ms, 0ms, 1000ms));
  EXPECT_FALSE(times.progress_due(t0 + 999ms));
  EXPECT_TRUE(times.progress_due(t0 + 1000ms));
  EXPECT_FALSE(times.progress_due(t0 + 1999ms));
  EXPECT_TRUE(times.progress_due(t0 + 2000ms));

  run_clock silent(t0, limits(0ms, 0ms, 0ms));
  EXPECT_FALSE(silent.progress_due(t0 + 24h));
}

}  // namespace
