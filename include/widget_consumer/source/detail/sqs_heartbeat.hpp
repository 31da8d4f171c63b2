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

#include "../../aws/sqs.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <exception>
#include <future>
#include <span>
#include <string_view>
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
// each with its index into changes. Those of a call that threw: code
// "RequestFailed", the exception's message, sender_fault false.
template <class Client>
std::vector<aws::sqs_batch_failure> extend_visibility(
    Client& client, std::string_view queue_url,
    std::span<const aws::sqs_visibility_change> changes) {
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

  std::vector<std::future<std::vector<aws::sqs_batch_failure>>> others;
  for (std::size_t begin = per_call; begin < changes.size(); begin += per_call)
    others.push_back(std::async(std::launch::async, call, begin));
  auto failures = changes.empty() ? std::vector<aws::sqs_batch_failure>{} : call(0);
  for (auto& other : others) {
    auto more = other.get();
    failures.insert(failures.end(), more.begin(), more.end());
  }
  return failures;
}

}  // namespace widget_consumer::detail
