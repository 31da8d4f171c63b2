// The directory store's fence (destination/directory.hpp): a position file
// per widget under an flock. The property test drives random schedules with
// duplicates, replays and late writes (support/fencing_schedule.hpp); the
// same schedules without the fence end elsewhere, which the last case shows.

#include <widget_consumer/destination/directory.hpp>

#include "support/fencing_schedule.hpp"

#include <gtest/gtest.h>

#include "support/scratch_folder.hpp"

#include <algorithm>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace widget_consumer {
namespace {

namespace fs = std::filesystem;

static_assert(position_fencing<directory_store>);

// A fresh folder per test, removed afterwards.
struct scratch_folder : widget_consumer::testing::scratch_folder {
  scratch_folder() : widget_consumer::testing::scratch_folder("widget_consumer_fencing_test_") {}
};

const widget_key_layout by_id{.prefix = "widgets/", .owner_in_key = false};

widget_request request(request_type type, std::string label) {
  widget_request r;
  r.type = type;
  r.request_id = "r";
  r.widget_id = "w1";
  r.owner = "Sue Smith";
  if (type != request_type::remove)
    r.label = std::move(label);
  return r;
}

std::optional<widget> sorted(std::optional<widget> w) {
  if (w)
    std::ranges::sort(w->other_attributes, {}, &widget_attribute::name);
  return w;
}

TEST(directory_fencing, a_replay_is_stale_and_a_tombstone_refuses_a_late_create) {
  scratch_folder folder;
  directory_store store(folder.path(), by_id);
  EXPECT_EQ(store.apply(request(request_type::create, "one"), "dir:1").outcome,
            apply_outcome::applied);
  EXPECT_EQ(store.apply(request(request_type::update, "two"), "dir:2").outcome,
            apply_outcome::applied);
  const auto stale = store.apply(request(request_type::create, "one"), "dir:1");
  EXPECT_EQ(stale.outcome, apply_outcome::stale);
  EXPECT_EQ(stale.stored_position, "dir:2");
  EXPECT_EQ(store.apply(request(request_type::update, "two again"), "dir:2").outcome,
            apply_outcome::stale);
  EXPECT_EQ(store.load("Sue Smith", "w1")->label, "two");

  EXPECT_EQ(store.apply(request(request_type::remove, ""), "dir:4").outcome,
            apply_outcome::applied);
  EXPECT_EQ(store.apply(request(request_type::create, "late"), "dir:3").outcome,
            apply_outcome::stale);
  EXPECT_FALSE(store.load("Sue Smith", "w1"));
  EXPECT_EQ(store.apply(request(request_type::create, "new"), "dir:5").outcome,
            apply_outcome::applied);
  EXPECT_EQ(store.load("Sue Smith", "w1")->label, "new");
  // The fence lives beside the widgets, not among them.
  EXPECT_TRUE(fs::exists(folder.path() / ".positions" / "widgets" / "w1"));
  const directory_store bare(folder.path(), {.prefix = "", .owner_in_key = false});
  EXPECT_THROW((void)bare.path_of("Sue Smith", ".positions/w1"), store_error);
}

TEST(directory_fencing, not_found_leaves_the_position_where_it_was) {
  scratch_folder folder;
  directory_store store(folder.path(), by_id);
  ASSERT_EQ(store.apply(request(request_type::create, "one"), "dir:1").outcome,
            apply_outcome::applied);
  auto theirs = request(request_type::update, "theirs");
  theirs.owner = "Bob Jones";
  EXPECT_EQ(store.apply(theirs, "dir:5").outcome, apply_outcome::not_found);
  EXPECT_EQ(store.apply(request(request_type::update, "three"), "dir:3").outcome,
            apply_outcome::applied);
  EXPECT_EQ(store.load("Sue Smith", "w1")->label, "three");
}

TEST(directory_fencing, racing_stores_on_one_folder_end_at_the_newest_position) {
  scratch_folder folder;
  std::vector<int> order(40);
  for (int i = 0; i < 40; ++i)
    order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937(11));
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w)
    writers.emplace_back([&, w] {
      directory_store store(folder.path(), by_id);  // a consumer of its own
      for (int i = w; i < 40; i += 4) {
        char position[16];
        std::snprintf(position, sizeof position, "dir:%03d", order[i]);
        (void)store.apply(request(request_type::create, std::to_string(order[i])), position);
      }
    });
  for (auto& writer : writers)
    writer.join();
  EXPECT_EQ(directory_store(folder.path(), by_id).load("Sue Smith", "w1")->label, "39");
}

TEST(directory_fencing, random_schedules_end_at_the_in_order_result) {
  std::mt19937 random(20261207);
  for (int round = 0; round < 300; ++round) {
    scratch_folder folder;
    directory_store store(folder.path(), by_id);
    const auto schedule = testing::random_fencing_schedule(random, "w1", 12, 10);
    ASSERT_EQ(testing::deliver(store, schedule), "") << "round " << round;
    ASSERT_EQ(sorted(store.load("Sue Smith", "w1")), sorted(schedule.expected))
        << "round " << round;
  }
}

// The schedules do test the fence: without it, most end elsewhere.
TEST(directory_fencing, without_the_fence_random_schedules_go_wrong) {
  std::mt19937 random(20261207);
  int wrong = 0;
  for (int round = 0; round < 100; ++round) {
    scratch_folder folder;
    directory_store store(folder.path(), by_id, {.enabled = false});
    const auto schedule = testing::random_fencing_schedule(random, "w1", 12, 10);
    ASSERT_EQ(testing::deliver(store, schedule), "");
    wrong += sorted(store.load("Sue Smith", "w1")) != sorted(schedule.expected);
  }
  EXPECT_GT(wrong, 30);
}

}  // namespace
}  // namespace widget_consumer
