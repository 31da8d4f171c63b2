#pragma once
// One pass of sqs_queue_source's heartbeat, apart from the rest of it: a
// visibility extension for every message in flight.
//
// The pass must end well within the visibility timeout, also when its calls
// meet faults. ChangeMessageVisibilityBatch takes ten entries; a call that
// is retried waits up to 1 s, then up to 2 s (aws/retry.hpp). Forty messages
// sent ten after ten, each call retried once, could take longer than a short
// timeout, and the messages the pass reached last would be handed out again
// meanwhile (to another consumer, which breaks a FIFO group's order). So the
// calls go side by side and the pass takes as long as its slowest call; and a
// call that fails fails its own entries only. The heartbeat's client does not
// retry: a pass whose calls failed is made again soon (heartbeat_schedule),
// with every message in it, rather than after a backoff as long as the
// visibility timeout may be short.

#include <widget_consumer/aws/client.hpp>
#include <widget_consumer/aws/sqs.hpp>
#include <widget_consumer/source/detail/worker_threads.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <future>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace widget_consumer::detail {

// When the heartbeat's passes begin: an interval apart, timed from when the
// last one began (timed from its end, a slow pass would stretch the gap
// between two extensions of a message past the timeout); after a pass whose
// calls failed, again after 100 ms, twice as long after each further failure,
// up to the interval.
class heartbeat_schedule {
 public:
  using clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds first_retry{100};

  heartbeat_schedule(std::chrono::milliseconds interval, clock::time_point start)
      : interval_(interval), next_(start + interval) {}

  clock::time_point next() const noexcept { return next_; }

  void began(clock::time_point now) { next_ = std::max(next_ + interval_, now); }

  // calls_failed: a call failed (not an entry SQS refused) and the pass should
  // be made again soon.
  void ended(bool calls_failed, clock::time_point now) {
    if (!calls_failed) {
      retry_delay_ = first_retry;
      return;
    }
    next_ = std::min(next_, now + retry_delay_);
    retry_delay_ = std::min(retry_delay_ * 2, std::max(interval_, first_retry));
  }

 private:
  std::chrono::milliseconds interval_;
  clock::time_point next_;
  std::chrono::milliseconds retry_delay_ = first_retry;
};

// Extends the visibility of every change; returns the entries that failed,
// each with its index into changes, in index order. Those of a call that
// threw: code "RequestFailed", the exception's message, sender_fault false.
// Calls of ten run on at most `max_parallel` threads, this one included: a
// pass once started a thread per ten messages, as many as a consumer held,
// and a thread that could not be created threw out of the heartbeat. One
// that cannot be created now leaves its share to the others.
template <class Client>
std::vector<aws::sqs_batch_failure> extend_visibility(
    Client& client, std::string_view queue_url, std::span<const aws::sqs_visibility_change> changes,
    std::size_t max_parallel = 4) {
  constexpr std::size_t per_call = aws::sqs_client::max_batch_entries;
  auto call = [&](std::size_t begin) {
    const auto end = std::min(changes.size(), begin + per_call);
    std::vector<aws::sqs_batch_failure> failed;
    try {
      failed =
          client.change_message_visibility_batch(queue_url, changes.subspan(begin, end - begin));
    } catch (const std::exception& e) {
      for (auto i = begin; i < end; ++i)
        failed.push_back({i - begin, "RequestFailed", e.what(), false});
    }
    for (auto& each : failed)
      each.index += begin;
    return failed;
  };

  const std::size_t calls = (changes.size() + per_call - 1) / per_call;
  std::atomic<std::size_t> next{0};
  std::mutex mutex;
  std::vector<aws::sqs_batch_failure> failures;
  auto work = [&] {
    for (std::size_t k = next++; k < calls; k = next++) {
      auto failed = call(k * per_call);
      std::lock_guard lock(mutex);
      failures.insert(failures.end(), failed.begin(), failed.end());
    }
  };
  std::vector<std::future<void>> helpers;
  for (std::size_t i = 1; i < std::min(max_parallel, calls); ++i) {
    try {
      helpers.push_back(std::async(std::launch::async, work));
    } catch (const std::system_error&) {
      break;
    }
  }
  work();
  for (auto& helper : helpers)
    helper.get();
  std::ranges::sort(failures, {}, &aws::sqs_batch_failure::index);
  return failures;
}

// The heartbeat thread of sqs_queue_source: every visibility_timeout / 3 (see
// sqs_queue.hpp), one pass extends the visibility of every message the
// source says is in flight. A message received just after one pass waits a
// whole interval plus a pass for the next; a third leaves room for slow
// calls.
class sqs_heartbeat {
 public:
  struct message {
    std::string id;
    std::string receipt_handle;
  };
  // What is in flight now (the source takes its own lock).
  using snapshot_function = std::function<std::vector<message>()>;
  // The messages SQS refused to extend: the source counts those it still
  // holds with that receipt handle (one settled or received again meanwhile
  // is no failure of ours).
  using refused_function = std::function<void(const std::vector<message>&)>;

  // `visibility` is held during a pass: the source holds it while it changes
  // visibility itself, so a release is never overtaken by an extension.
  sqs_heartbeat(aws::client_config config, std::string queue_url, int visibility_seconds,
                std::mutex& visibility, snapshot_function snapshot, refused_function refused)
      : client_(own_config(std::move(config), interval_for(visibility_seconds))),
        queue_url_(std::move(queue_url)),
        visibility_seconds_(visibility_seconds),
        visibility_(visibility),
        snapshot_(std::move(snapshot)),
        refused_(std::move(refused)) {
    thread_.start(
        1, [this] { loop(); }, [this] { stop(); });
  }

  sqs_heartbeat(const sqs_heartbeat&) = delete;
  sqs_heartbeat& operator=(const sqs_heartbeat&) = delete;
  ~sqs_heartbeat() { stop(); }

  void stop() noexcept {
    change_and_notify(
        mutex_, [this] { stopping_ = true; }, wake_);
    thread_.join();
  }

  static std::chrono::milliseconds interval_for(int visibility_seconds) {
    return std::chrono::milliseconds{visibility_seconds * 1000 / 3};
  }

 private:
  // The heartbeat's own client, whose calls give up after an interval (5 s
  // at least: a slow server is not a hung one, and retries would only load
  // it more) and are not retried: one that hangs or fails is made again
  // while its messages are still hidden.
  static aws::client_config own_config(aws::client_config config,
                                       std::chrono::milliseconds interval) {
    config.max_attempts = 1;
    config.http.total_timeout =
        std::min(config.http.total_timeout, std::max(interval, std::chrono::milliseconds{5000}));
    return config;
  }

  void loop() {
    heartbeat_schedule schedule(interval_for(visibility_seconds_),
                                std::chrono::steady_clock::now());
    for (;;) {
      {
        std::unique_lock lock(mutex_);
        if (wake_.wait_until(lock, schedule.next(), [&] { return stopping_; }))
          return;
      }
      schedule.began(std::chrono::steady_clock::now());
      std::lock_guard visibility(visibility_);
      const auto messages = snapshot_();
      std::vector<aws::sqs_visibility_change> changes;
      for (const auto& each : messages)
        changes.push_back({each.receipt_handle, visibility_seconds_});
      bool calls_failed = false;
      std::vector<message> refused;
      for (const auto& failure : extend_visibility(client_, queue_url_, changes)) {
        calls_failed = calls_failed || !failure.sender_fault;
        if (failure.sender_fault && failure.index < messages.size())
          refused.push_back(messages[failure.index]);
      }
      if (!refused.empty())
        refused_(refused);
      schedule.ended(calls_failed, std::chrono::steady_clock::now());
    }
  }

  aws::sqs_client client_;
  std::string queue_url_;
  int visibility_seconds_;
  std::mutex& visibility_;
  snapshot_function snapshot_;
  refused_function refused_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  worker_threads thread_;  // last: joined before the rest goes
};

}  // namespace widget_consumer::detail
