// One heartbeat pass of sqs_queue_source (detail/sqs_heartbeat.hpp): its
// calls go side by side, and one that fails fails only its own entries; and
// when the passes begin. SQS cannot be made to hold a call or fail a chosen one, so the
// pass is driven here by a scripted ChangeMessageVisibilityBatch; the
// heartbeat against the real local server is covered by
// integration/sqs_queue_source_test.cpp (heartbeat_keeps_a_message_in_flight_...).

#include "widget_consumer/source/detail/sqs_heartbeat.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace aws = widget_consumer::aws;
namespace detail = widget_consumer::detail;

namespace {

using namespace std::chrono_literals;

// A scripted ChangeMessageVisibilityBatch. Each call waits (bounded) until
// `meet` calls are under way at once, so a pass that sends its calls one
// after another is seen: its first call gives up waiting.
struct scripted_sqs {
  std::size_t meet = 1;
  std::string throw_on;  // a call holding this handle throws
  std::string refuse;    // this handle is a Failed entry
  std::mutex mutex;
  std::condition_variable arrived;
  std::size_t under_way = 0;
  bool all_met = false;
  std::size_t gave_up = 0;  // calls that waited in vain for the others
  std::vector<std::vector<std::string>> calls;

  std::vector<aws::sqs_batch_failure> change_message_visibility_batch(
      std::string_view, std::span<const aws::sqs_visibility_change> changes) {
    std::vector<std::string> handles;
    for (const auto& each : changes)
      handles.push_back(each.receipt_handle);
    {
      std::unique_lock lock(mutex);
      calls.push_back(handles);
      if (++under_way >= meet)
        all_met = true;
      arrived.notify_all();
      if (!arrived.wait_for(lock, 5s, [&] { return all_met; }))
        ++gave_up;
    }
    std::vector<aws::sqs_batch_failure> failed;
    for (std::size_t i = 0; i < handles.size(); ++i) {
      if (handles[i] == throw_on)
        throw std::runtime_error("connection reset, attempts exhausted");
      if (handles[i] == refuse)
        failed.push_back({i, "ReceiptHandleIsInvalid", "refused", true});
    }
    return failed;
  }
};

std::vector<aws::sqs_visibility_change> changes_for(std::size_t count) {
  std::vector<aws::sqs_visibility_change> changes;
  for (std::size_t i = 0; i < count; ++i)
    changes.push_back({"handle-" + std::to_string(i), 30});
  return changes;
}

TEST(sqs_heartbeat, sends_ten_per_call_with_the_calls_side_by_side) {
  scripted_sqs sqs;
  sqs.meet = 3;
  const auto changes = changes_for(25);
  const auto failed = detail::extend_visibility(sqs, "queue", changes);

  EXPECT_TRUE(failed.empty());
  EXPECT_EQ(sqs.gave_up, 0u) << "the three calls were not under way at once";
  ASSERT_EQ(sqs.calls.size(), 3u);
  std::multiset<std::size_t> sizes;
  std::set<std::string> handles;
  for (const auto& call : sqs.calls) {
    sizes.insert(call.size());
    handles.insert(call.begin(), call.end());
  }
  EXPECT_EQ(sizes, (std::multiset<std::size_t>{5, 10, 10}));
  EXPECT_EQ(handles.size(), 25u) << "every message once";
}

TEST(sqs_heartbeat, a_call_that_fails_for_good_fails_only_its_own_entries) {
  scripted_sqs sqs;
  sqs.throw_on = "handle-13";  // in the second call: entries 10..19
  sqs.refuse = "handle-24";    // one Failed entry of the third call
  const auto changes = changes_for(25);
  const auto failed = detail::extend_visibility(sqs, "queue", changes);

  std::set<std::size_t> indices;
  for (const auto& each : failed) {
    indices.insert(each.index);
    EXPECT_EQ(each.code, each.index == 24 ? "ReceiptHandleIsInvalid" : "RequestFailed");
  }
  std::set<std::size_t> expected{24};
  for (std::size_t i = 10; i < 20; ++i)
    expected.insert(i);
  EXPECT_EQ(indices, expected) << "indices are into the whole pass, failures of one call only";
  EXPECT_EQ(sqs.calls.size(), 3u) << "the other calls are still made";
}

// A pass over many messages makes its calls on a few threads, not one per
// ten messages: 1,000 messages, at most 4 calls under way at once, every
// message extended once.
struct counting_sqs {
  std::mutex mutex;
  int under_way = 0;
  int most = 0;
  std::multiset<std::string> handles;

  std::vector<aws::sqs_batch_failure> change_message_visibility_batch(
      std::string_view, std::span<const aws::sqs_visibility_change> changes) {
    {
      std::lock_guard lock(mutex);
      most = std::max(most, ++under_way);
      for (const auto& each : changes)
        handles.insert(each.receipt_handle);
    }
    std::this_thread::sleep_for(2ms);
    std::lock_guard lock(mutex);
    --under_way;
    return {};
  }
};

TEST(sqs_heartbeat, a_pass_uses_a_bounded_number_of_threads) {
  counting_sqs sqs;
  const auto changes = changes_for(1000);
  EXPECT_TRUE(detail::extend_visibility(sqs, "queue", changes, 4).empty());
  EXPECT_LE(sqs.most, 4);
  EXPECT_GE(sqs.most, 2) << "the calls still run side by side";
  EXPECT_EQ(sqs.handles.size(), 1000u);
  EXPECT_EQ(std::set<std::string>(sqs.handles.begin(), sqs.handles.end()).size(), 1000u);
}

TEST(sqs_heartbeat, nothing_in_flight_makes_no_call) {
  scripted_sqs sqs;
  EXPECT_TRUE(detail::extend_visibility(sqs, "queue", {}).empty());
  EXPECT_TRUE(sqs.calls.empty());
}

using clock = detail::heartbeat_schedule::clock;

TEST(heartbeat_schedule, passes_begin_an_interval_apart_however_long_one_took) {
  const auto start = clock::now();
  detail::heartbeat_schedule schedule(1000ms, start);
  EXPECT_EQ(schedule.next(), start + 1000ms);
  schedule.began(start + 1000ms);
  schedule.ended(false, start + 1900ms);  // a slow pass
  EXPECT_EQ(schedule.next(), start + 2000ms);
  schedule.began(start + 2000ms);
  schedule.ended(false, start + 3500ms);  // longer than the interval: at once
  EXPECT_LT(schedule.next(), start + 3500ms);
  schedule.began(start + 3500ms);
  EXPECT_EQ(schedule.next(), start + 4000ms) << "back on the beat, one pass at a time";
}

TEST(heartbeat_schedule, a_pass_whose_calls_failed_is_made_again_soon_then_less_soon) {
  const auto start = clock::now();
  detail::heartbeat_schedule schedule(1000ms, start);
  schedule.began(start + 1000ms);
  schedule.ended(true, start + 1010ms);
  EXPECT_EQ(schedule.next(), start + 1110ms);
  schedule.began(start + 1110ms);
  schedule.ended(true, start + 1120ms);
  EXPECT_EQ(schedule.next(), start + 1320ms);
  schedule.began(start + 1320ms);
  schedule.ended(true, start + 1330ms);
  EXPECT_EQ(schedule.next(), start + 1730ms);
  schedule.began(start + 1730ms);
  schedule.ended(true, start + 1740ms);
  EXPECT_EQ(schedule.next(), start + 2540ms);
  schedule.began(start + 2540ms);
  schedule.ended(true, start + 2550ms);
  EXPECT_EQ(schedule.next(), start + 3540ms) << "never later than the beat";
  schedule.began(start + 3540ms);
  schedule.ended(false, start + 3560ms);
  EXPECT_EQ(schedule.next(), start + 4540ms) << "a pass that worked: back to the interval";
  schedule.began(start + 4540ms);
  schedule.ended(true, start + 4550ms);
  EXPECT_EQ(schedule.next(), start + 4650ms) << "and to the first, short delay";
}

}  // namespace
