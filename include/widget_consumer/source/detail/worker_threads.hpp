#pragma once
// The threads a source runs for itself (S3 lister and fetchers, SQS receivers
// and heartbeat), started and joined one way: a thread that cannot be started
// stops and joins those started before the error leaves the constructor, and
// a stop is a change under the source's lock followed by a wake-up of every
// waiter, so no thread sleeps through it.

#include <cstddef>
#include <mutex>
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

}  // namespace widget_consumer::detail
