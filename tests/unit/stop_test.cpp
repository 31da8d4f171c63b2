#include "widget_consumer/stop.hpp"

#include <gtest/gtest.h>

#include <csignal>

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

}  // namespace
