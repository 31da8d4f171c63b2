#pragma once
// Stopping a consumer from outside: stop_flag, which run(const stop_flag&)
// watches, and stop_on_signals, which lets SIGINT and SIGTERM set it. The
// consumer only reads the flag; signal handlers are process-wide, so only a
// program that calls stop_on_signals gets them. stop_deadline bounds how
// long a stop may take.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>

namespace widget_consumer {

/// Set from a signal handler or another thread; run() stops polling, settles
/// what is in flight and returns. A lock-free atomic, so async-signal-safe.
class stop_flag {
 public:
  /// Asks run() to stop; each further call counts (a second signal stops at once).
  void request_stop() noexcept { requests_.fetch_add(1, std::memory_order_relaxed); }
  /// True once a stop was asked for.
  bool stop_requested() const noexcept { return requests_.load(std::memory_order_relaxed) > 0; }
  /// How many times a stop was asked for.
  int requests() const noexcept { return requests_.load(std::memory_order_relaxed); }

 private:
  static_assert(std::atomic<int>::is_always_lock_free);
  std::atomic<int> requests_{0};
};

namespace detail {
inline std::atomic<stop_flag*> signal_stop_flag{nullptr};

inline void on_stop_signal(int signal) {
  stop_flag* flag = signal_stop_flag.load();
  if (flag == nullptr || flag->stop_requested())
    std::_Exit(128 + signal);  // the second signal: no clean-up, at once
  flag->request_stop();
}
}  // namespace detail

/// SIGINT and SIGTERM: the first sets flag (finish in-flight work, flush,
/// return), the second ends the process at once. flag must outlive the
/// process's use of signals.
inline void stop_on_signals(stop_flag& flag) {
  detail::signal_stop_flag.store(&flag);
  struct sigaction action {};
  action.sa_handler = detail::on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

/// A graceful stop finishes the work in flight, and during an outage each
/// store call and settlement may wait out its timeouts and retries: hours,
/// where a scheduler allows seconds (Kubernetes: 30 s from SIGTERM to
/// SIGKILL). Once the flag is set, this waits `deadline`; if the watch is
/// still alive then, it calls on_deadline, which is to end the process
/// (std::_Exit): what was not settled stays in the source, since a request
/// leaves it only after the store confirmed it. Destroying the watch (the
/// program reached its end in time) disarms it. A zero deadline watches
/// nothing. The flag is looked at every 50 ms: a signal handler may not wake
/// a condition variable.
class stop_deadline {
 public:
  /// Watches `flag`: `deadline` after its first stop request, calls `on_deadline` unless destroyed
  /// first.
  stop_deadline(const stop_flag& flag, std::chrono::milliseconds deadline,
                std::function<void()> on_deadline) {
    if (deadline.count() > 0)
      thread_ = std::thread([this, &flag, deadline, act = std::move(on_deadline)] {
        if (watch(flag, deadline))
          act();
      });
  }

  stop_deadline(const stop_deadline&) = delete;
  stop_deadline& operator=(const stop_deadline&) = delete;

  ~stop_deadline() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable())
      thread_.join();
  }

 private:
  // True when the deadline passed with the watch still alive.
  bool watch(const stop_flag& flag, std::chrono::milliseconds deadline) {
    std::unique_lock lock(mutex_);
    while (!done_ && !flag.stop_requested())
      wake_.wait_for(lock, std::chrono::milliseconds{50});
    const auto until = std::chrono::steady_clock::now() + deadline;
    return !wake_.wait_until(lock, until, [this] { return done_; });
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  bool done_ = false;
  std::thread thread_;  // last: it uses the members above
};

}  // namespace widget_consumer
