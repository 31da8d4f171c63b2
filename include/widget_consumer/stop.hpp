#pragma once
// Stopping a consumer from outside: stop_flag, which run(const stop_flag&)
// watches, and stop_on_signals, which lets SIGINT and SIGTERM set it. The
// consumer only reads the flag; signal handlers are process-wide, so only a
// program that calls stop_on_signals gets them.

#include <atomic>
#include <csignal>
#include <cstdlib>

namespace widget_consumer {

// Set from a signal handler or another thread; run() stops polling, settles
// what is in flight and returns. A lock-free atomic, so async-signal-safe.
class stop_flag {
 public:
  void request_stop() noexcept { requests_.fetch_add(1, std::memory_order_relaxed); }
  bool stop_requested() const noexcept { return requests_.load(std::memory_order_relaxed) > 0; }
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

// SIGINT and SIGTERM: the first sets flag (finish in-flight work, flush,
// return), the second ends the process at once. flag must outlive the
// process's use of signals.
inline void stop_on_signals(stop_flag& flag) {
  detail::signal_stop_flag.store(&flag);
  struct sigaction action {};
  action.sa_handler = detail::on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

}  // namespace widget_consumer
