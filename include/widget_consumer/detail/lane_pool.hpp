#pragma once
// lane_pool: the consumer's lane threads. Each lane is a queue and the one
// thread that drains it in order; work goes to the lane of its key's hash,
// so one key's work is done in the order it was pushed and different keys in
// parallel. Each lane owns a LaneState that only its thread touches (the
// consumer's widget holds). Lanes hand their results to one queue that the
// pushing thread takes from. The destructor closes the lanes and joins their
// threads after they drained what was queued, on every way out of the
// owner's scope, exceptions included. post() runs a change of a lane's
// state on its thread, in order with the work pushed, and hands back no
// result.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

namespace widget_consumer::detail {

template <class Work, class Result, class LaneState>
class lane_pool {
 public:
  // Runs on a lane thread, for one work item at a time.
  using handler = std::function<Result(LaneState&, Work)>;
  using state_change = std::function<void(LaneState&)>;

  // Starts `count` lanes (at least one), each with a copy of `state`.
  lane_pool(std::size_t count, const LaneState& state, handler handle)
      : handle_(std::move(handle)) {
    try {
      for (std::size_t i = 0; i < std::max<std::size_t>(count, 1); ++i) {
        lanes_.push_back(std::make_unique<lane>(state));
        lane& each = *lanes_.back();
        each.thread = std::thread([this, &each] { drain(each); });
      }
    } catch (...) {
      close_and_join();
      throw;
    }
  }

  lane_pool(const lane_pool&) = delete;
  lane_pool& operator=(const lane_pool&) = delete;
  ~lane_pool() { close_and_join(); }

  void push(std::string_view key, Work work) { enqueue(key, std::move(work)); }

  // Runs `change` on the state of `key`'s lane, after the work pushed before.
  void post(std::string_view key, state_change change) { enqueue(key, std::move(change)); }

  // Returns when a result is ready or after timeout.
  void wait_for_results(std::chrono::milliseconds timeout) {
    std::unique_lock lock(results_mutex_);
    results_ready_.wait_for(lock, timeout, [&] { return !results_.empty(); });
  }

  std::size_t size() const noexcept { return lanes_.size(); }
  // Lanes working on an item now (a gauge: it may change at once).
  std::size_t busy() const noexcept { return busy_.load(std::memory_order_relaxed); }

  // The results handed back so far, in the order the lanes finished them.
  std::deque<Result> take_results() {
    std::deque<Result> ready;
    std::lock_guard lock(results_mutex_);
    ready.swap(results_);
    return ready;
  }

 private:
  struct lane {
    explicit lane(const LaneState& initial) : state(initial) {}
    std::mutex mutex;
    std::condition_variable ready;
    std::deque<std::variant<Work, state_change>> queue;
    bool closing = false;
    LaneState state;
    std::thread thread;
  };

  template <class Item>
  void enqueue(std::string_view key, Item item) {
    lane& target = *lanes_[std::hash<std::string_view>{}(key) % lanes_.size()];
    {
      std::lock_guard lock(target.mutex);
      target.queue.emplace_back(std::move(item));
    }
    target.ready.notify_one();
  }

  void drain(lane& self) {
    for (;;) {
      std::optional<std::variant<Work, state_change>> item;
      {
        std::unique_lock lock(self.mutex);
        self.ready.wait(lock, [&] { return self.closing || !self.queue.empty(); });
        if (self.queue.empty())
          return;  // closing, and nothing left
        item.emplace(std::move(self.queue.front()));
        self.queue.pop_front();
      }
      if (auto* change = std::get_if<state_change>(&*item)) {
        (*change)(self.state);
        continue;
      }
      busy_.fetch_add(1, std::memory_order_relaxed);
      Result done = handle_(self.state, std::move(std::get<Work>(*item)));
      busy_.fetch_sub(1, std::memory_order_relaxed);
      {
        std::lock_guard lock(results_mutex_);
        results_.push_back(std::move(done));
      }
      results_ready_.notify_one();
    }
  }

  void close_and_join() noexcept {
    for (auto& each : lanes_) {
      {
        std::lock_guard lock(each->mutex);
        each->closing = true;
      }
      each->ready.notify_one();
    }
    for (auto& each : lanes_)
      if (each->thread.joinable())
        each->thread.join();
  }

  handler handle_;
  std::vector<std::unique_ptr<lane>> lanes_;
  std::mutex results_mutex_;
  std::condition_variable results_ready_;
  std::deque<Result> results_;
  std::atomic<std::size_t> busy_{0};
};

}  // namespace widget_consumer::detail
