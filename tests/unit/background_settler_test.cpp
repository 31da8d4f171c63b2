// The settler thread behind the sources' begin_flush(): order, merging of
// work that waits, outcomes reported by a later take(), the final wait, and
// the bound on waiting work. Expected values follow from the rules in
// background_settler.hpp's header comment.

#include <gtest/gtest.h>

#include <widget_consumer/source/detail/background_settler.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;

// Stands for the entries one flush queued.
struct entries {
  std::vector<int> items;
  void merge(entries later) { items.insert(items.end(), later.items.begin(), later.items.end()); }
  std::size_t size() const { return items.size(); }
};

// Holds each run until opened, so a test decides what waits meanwhile.
class gate {
 public:
  void open() {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    changed_.notify_all();
  }
  void pass() {
    std::unique_lock lock(mutex_);
    ++waiting_;
    changed_.notify_all();
    changed_.wait(lock, [&] { return open_; });
  }
  // Waits (bounded) until `count` runs reached the gate.
  bool reached(int count) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, 5s, [&] { return waiting_ >= count; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool open_ = false;
  int waiting_ = 0;
};

using settler = widget_consumer::detail::background_settler<entries, std::vector<int>>;

std::vector<std::vector<int>> results(std::vector<settler::outcome> outcomes) {
  std::vector<std::vector<int>> runs;
  for (auto& each : outcomes) {
    EXPECT_FALSE(each.error);
    runs.push_back(each.result.value_or(std::vector<int>{}));
  }
  return runs;
}

TEST(background_settler, runs_work_in_the_order_handed_and_merges_what_waits) {
  gate first;
  std::atomic<int> runs{0};
  settler settling([&](entries work) {
    if (runs++ == 0)
      first.pass();
    return work.items;
  });
  settling.hand({.items = {1, 2}});
  ASSERT_TRUE(first.reached(1));
  // The first run is under way: these wait, and go out together after it.
  settling.hand({.items = {3}});
  settling.hand({.items = {4, 5}});
  settling.hand({.items = {6}});
  EXPECT_FALSE(settling.idle());
  first.open();
  const auto ran = results(settling.wait());
  EXPECT_EQ(ran, (std::vector<std::vector<int>>{{1, 2}, {3, 4, 5, 6}}));
  EXPECT_TRUE(settling.idle());
}

TEST(background_settler, take_does_not_wait_and_a_later_take_reports_the_run) {
  gate held;
  settler settling([&](entries work) {
    held.pass();
    return work.items;
  });
  settling.hand({.items = {7}});
  ASSERT_TRUE(held.reached(1));
  EXPECT_TRUE(settling.take().empty());  // still running: nothing to report yet
  held.open();
  std::vector<std::vector<int>> ran;
  for (int i = 0; i < 500 && ran.empty(); ++i) {
    ran = results(settling.take());
    if (ran.empty())
      std::this_thread::sleep_for(2ms);
  }
  EXPECT_EQ(ran, (std::vector<std::vector<int>>{{7}}));
  EXPECT_TRUE(settling.take().empty());  // reported once
}

TEST(background_settler, wait_returns_only_once_everything_handed_has_run) {
  std::atomic<int> finished{0};
  settler settling([&](entries work) {
    std::this_thread::sleep_for(20ms);
    ++finished;
    return work.items;
  });
  for (int i = 0; i < 5; ++i)
    settling.hand({.items = {i}});
  const auto ran = results(settling.wait());
  std::vector<int> all;
  for (const auto& run : ran)
    all.insert(all.end(), run.begin(), run.end());
  EXPECT_EQ(all, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(finished.load(), static_cast<int>(ran.size()));
  EXPECT_TRUE(settling.idle());
}

TEST(background_settler, a_run_that_throws_yields_its_exception_and_the_next_runs) {
  settler settling([&](entries work) {
    if (work.items.front() < 0)
      throw std::runtime_error("DeleteObjects: 503 SlowDown");
    return work.items;
  });
  settling.hand({.items = {-1}});
  auto first = settling.wait();
  settling.hand({.items = {2}});
  auto second = settling.wait();
  ASSERT_EQ(first.size(), 1u);
  ASSERT_TRUE(first[0].error);
  EXPECT_FALSE(first[0].result);
  try {
    std::rethrow_exception(first[0].error);
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "DeleteObjects: 503 SlowDown");
  }
  EXPECT_EQ(results(std::move(second)), (std::vector<std::vector<int>>{{2}}));
}

TEST(background_settler, the_destructor_runs_the_work_still_waiting) {
  gate first;
  std::vector<int> seen;
  std::mutex seen_mutex;
  {
    settler settling([&](entries work) {
      if (work.items.front() == 1)
        first.pass();
      std::lock_guard lock(seen_mutex);
      seen.insert(seen.end(), work.items.begin(), work.items.end());
      return work.items;
    });
    settling.hand({.items = {1}});
    ASSERT_TRUE(first.reached(1));
    settling.hand({.items = {2, 3}});
    first.open();
  }
  EXPECT_EQ(seen, (std::vector<int>{1, 2, 3}));
}

TEST(background_settler, hand_waits_while_the_waiting_work_is_full) {
  gate first;
  settler settling(
      [&](entries work) {
        if (work.items.front() == 0)
          first.pass();
        return work.items;
      },
      3);
  settling.hand({.items = {0}});
  ASSERT_TRUE(first.reached(1));
  settling.hand({.items = {1, 2, 3}});  // waiting work now at the bound
  std::atomic<bool> handed{false};
  std::thread late([&] {
    settling.hand({.items = {4}});
    handed = true;
  });
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(handed.load());  // no room until the first run ends
  first.open();
  late.join();
  EXPECT_TRUE(handed.load());
  std::vector<int> all;
  for (const auto& run : results(settling.wait()))
    all.insert(all.end(), run.begin(), run.end());
  EXPECT_EQ(all, (std::vector<int>{0, 1, 2, 3, 4}));
}

}  // namespace
