// widget_holds (detail/widget_holds.hpp): a widget held behind a released
// request lets only its head go, and a hold behind a request gone to another
// consumer (forget()) ends.

#include "widget_consumer/detail/widget_holds.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace {

using namespace std::chrono_literals;
using widget_consumer::detail::widget_holds;

TEST(widget_holds, only_the_head_goes_and_the_rest_keep_their_order) {
  widget_holds holds(1s, true);
  const auto now = widget_holds::clock::now();
  EXPECT_EQ(holds.admit("w", "r1", now), "");
  holds.settled("w", "r1", true, now);  // r1 failed: w is held behind it
  EXPECT_EQ(holds.admit("w", "r2", now), "r1");
  EXPECT_EQ(holds.admit("w", "r3", now), "r1");
  EXPECT_EQ(holds.admit("w", "r1", now), "");  // r1 is back
  holds.settled("w", "r1", false, now);
  EXPECT_EQ(holds.admit("w", "r3", now), "r2");  // r3 still waits for r2
  // A local release's hold does not expire.
  EXPECT_EQ(holds.admit("w", "r3", now + 1h), "r2");
}

TEST(widget_holds, a_hold_behind_a_request_gone_elsewhere_ends) {
  widget_holds holds(1s, true);
  const auto now = widget_holds::clock::now();
  EXPECT_EQ(holds.admit("w", "r1", now), "");
  holds.settled("w", "r1", true, now);
  EXPECT_EQ(holds.admit("w", "r2", now), "r1");
  holds.forget("w", "r1");
  EXPECT_TRUE(holds.holds("w"));  // r2 is the head now
  EXPECT_EQ(holds.admit("w", "r2", now), "");
  holds.settled("w", "r2", false, now);
  EXPECT_FALSE(holds.holds("w"));

  holds.settled("v", "s1", true, now);
  holds.forget("v", "s1");
  EXPECT_FALSE(holds.holds("v"));
  EXPECT_EQ(holds.admit("v", "s2", now), "");
  holds.forget("nobody", "x");  // nothing held: nothing to do
  EXPECT_EQ(holds.size(), 0u);
}

}  // namespace
