#include "widget_consumer/detail/lane_pool.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;

struct job {
  std::string key{};
  int sequence = 0;
};

struct done {
  std::string key{};
  int sequence = 0;
  int lane_seen = 0;  // jobs this lane had done before, this one included
  std::thread::id thread{};
};

struct lane_count {
  int seen = 0;
};

using pool = widget_consumer::detail::lane_pool<job, done, lane_count>;

pool::handler recording() {
  return [](lane_count& lane, job work) {
    std::this_thread::sleep_for(50us);
    return done{.key = work.key,
                .sequence = work.sequence,
                .lane_seen = ++lane.seen,
                .thread = std::this_thread::get_id()};
  };
}

std::vector<done> take(pool& lanes, std::size_t count) {
  std::vector<done> results;
  for (int rounds = 0; results.size() < count && rounds < 1000; ++rounds) {
    lanes.wait_for_results(10ms);
    for (auto& each : lanes.take_results())
      results.push_back(std::move(each));
  }
  return results;
}

TEST(lane_pool, keeps_each_keys_order_and_returns_every_result) {
  pool lanes(4, lane_count{}, recording());
  constexpr int keys = 12;
  constexpr int per_key = 20;
  for (int n = 0; n < per_key; ++n)
    for (int k = 0; k < keys; ++k)
      lanes.push("w" + std::to_string(k), job{.key = "w" + std::to_string(k), .sequence = n});

  const auto results = take(lanes, keys * per_key);

  ASSERT_EQ(results.size(), std::size_t{keys * per_key});
  std::map<std::string, std::vector<int>> order;
  std::map<std::string, std::thread::id> thread_of;
  for (const done& each : results) {
    order[each.key].push_back(each.sequence);
    const auto [where, added] = thread_of.emplace(each.key, each.thread);
    EXPECT_EQ(where->second, each.thread) << each.key << " moved to another lane";
  }
  for (const auto& [key, sequence] : order) {
    std::vector<int> expected;
    for (int n = 0; n < per_key; ++n)
      expected.push_back(n);
    EXPECT_EQ(sequence, expected) << key;
  }
}

TEST(lane_pool, each_lane_has_its_own_state) {
  pool lanes(2, lane_count{}, recording());
  for (int n = 0; n < 30; ++n)
    lanes.push("only", job{.key = "only", .sequence = n});
  const auto results = take(lanes, 30);
  ASSERT_EQ(results.size(), 30u);
  // One key, one lane: its count went 1..30 untouched by the other lane.
  for (std::size_t i = 0; i < results.size(); ++i)
    EXPECT_EQ(results[i].lane_seen, static_cast<int>(i) + 1);
}

// post() changes the lane's state in order with the work around it, and
// hands back no result.
TEST(lane_pool, a_posted_change_runs_in_order_with_the_work_and_returns_nothing) {
  pool lanes(2, lane_count{}, recording());
  lanes.push("only", job{.key = "only", .sequence = 0});
  lanes.post("only", [](lane_count& lane) { lane.seen += 100; });
  lanes.push("only", job{.key = "only", .sequence = 1});
  const auto results = take(lanes, 2);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].lane_seen, 1);
  EXPECT_EQ(results[1].lane_seen, 102);
  lanes.wait_for_results(20ms);
  EXPECT_TRUE(lanes.take_results().empty());
}

TEST(lane_pool, destruction_finishes_what_was_queued) {
  int finished = 0;
  {
    widget_consumer::detail::lane_pool<int, int, lane_count> lanes(
        1, lane_count{}, [&finished](lane_count&, int work) {
          std::this_thread::sleep_for(1ms);
          ++finished;  // one lane: no other thread writes it
          return work;
        });
    for (int n = 0; n < 10; ++n)
      lanes.push("k", n);
  }
  EXPECT_EQ(finished, 10);
}

}  // namespace
