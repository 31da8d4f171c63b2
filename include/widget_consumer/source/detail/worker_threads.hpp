#pragma once
// The threads a source runs for itself (S3 lister and fetchers, SQS receivers
// and heartbeat), started and joined one way: a thread that cannot be started
// stops and joins those started before the error leaves the constructor, and
// a stop is a change under the source's lock followed by a wake-up of every
// waiter, so no thread sleeps through it.

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace widget_consumer::detail {

class worker_threads {
 public:
  worker_threads() = default;
  worker_threads(const worker_threads&) = delete;
  worker_threads& operator=(const worker_threads&) = delete;
  // The owner has told them to stop before.
  ~worker_threads() { join(); }

  // Starts `count` threads running `body`. If one cannot be started,
  // `stop()` tells every thread of this group to end, they are joined, and
  // the error is thrown.
  template <class Body, class Stop>
  void start(std::size_t count, const Body& body, Stop&& stop) {
    try {
      for (std::size_t i = 0; i < count; ++i)
        threads_.emplace_back(body);
    } catch (...) {
      stop();
      join();
      throw;
    }
  }

  void join() noexcept {
    for (auto& thread : threads_)
      if (thread.joinable())
        thread.join();
    threads_.clear();
  }

 private:
  std::vector<std::thread> threads_;
};

// Makes `change` under `mutex`, then wakes every waiter of each condition.
template <class Change, class... Conditions>
void change_and_notify(std::mutex& mutex, Change&& change, Conditions&... conditions) {
  {
    std::lock_guard lock(mutex);
    change();
  }
  (conditions.notify_all(), ...);
}

// Calls work(i) for every i below `count` on up to `threads` threads, this
// one included, and returns when all are done: a handful of calls to a
// server that would take one round trip each in turn. work must not throw.
template <class Work>
void run_concurrently(std::size_t count, std::size_t threads, const Work& work) {
  std::atomic<std::size_t> next{0};
  auto worker = [&]() noexcept {
    for (std::size_t i = next++; i < count; i = next++)
      work(i);
  };
  std::vector<std::thread> helpers;
  try {
    for (std::size_t i = 1; i < std::min(threads, count); ++i)
      helpers.emplace_back(worker);
  } catch (const std::system_error&) {
    // Fewer threads: the work is shared all the same.
  }
  worker();
  for (auto& helper : helpers)
    helper.join();
}

}  // namespace widget_consumer::detail
