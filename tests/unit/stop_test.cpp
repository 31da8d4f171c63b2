#include "widget_consumer/stop.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <optional>
#include <thread>

namespace {

TEST(stop_flag, counts_requests) {
  widget_consumer::stop_flag flag;
  EXPECT_FALSE(flag.stop_requested());
  flag.request_stop();
  flag.request_stop();
  EXPECT_TRUE(flag.stop_requested());
  EXPECT_EQ(flag.requests(), 2);
}

TEST(stop_on_signals, the_first_signal_requests_a_stop) {
  static widget_consumer::stop_flag flag;  // the handler keeps pointing at it
  widget_consumer::stop_on_signals(flag);
  std::raise(SIGTERM);  // a second one would end the test process
  EXPECT_TRUE(flag.stop_requested());
  EXPECT_EQ(flag.requests(), 1);
}

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

// The action ends the process in a program; here it only says it ran.
TEST(stop_deadline, acts_once_the_deadline_after_the_stop_passed) {
  widget_consumer::stop_flag flag;
  std::atomic<bool> acted{false};
  widget_consumer::stop_deadline watch(flag, 100ms, [&] { acted = true; });
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(acted) << "acted without a stop";
  const auto stopped = clock_type::now();
  flag.request_stop();
  for (int i = 0; i < 500 && !acted; ++i)  // up to 5 s on a loaded machine
    std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(acted);
  EXPECT_GE(clock_type::now() - stopped, 100ms);
}

TEST(stop_deadline, a_watch_destroyed_in_time_does_not_act) {
  widget_consumer::stop_flag flag;
  std::atomic<bool> acted{false};
  std::optional<widget_consumer::stop_deadline> watch;
  watch.emplace(flag, 300ms, [&] { acted = true; });
  flag.request_stop();
  watch.reset();  // the program got to its end
  std::this_thread::sleep_for(400ms);
  EXPECT_FALSE(acted);
}

TEST(stop_deadline, a_zero_deadline_watches_nothing) {
  widget_consumer::stop_flag flag;
  std::atomic<bool> acted{false};
  widget_consumer::stop_deadline watch(flag, 0ms, [&] { acted = true; });
  flag.request_stop();
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(acted);
}

}  // namespace
