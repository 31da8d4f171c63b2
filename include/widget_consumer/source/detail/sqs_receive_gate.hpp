#pragma once
// How sqs_queue_source stops its receivers, apart from the rest of it.
//
// A ReceiveMessage cut short is not free: SQS goes on with a long poll
// whose caller hung up and may still hand it messages, which then stay
// hidden for their visibility timeout (aws-sdk-java-v2#1395,
// aws-sdk-go-v2#2068), with one receive more on their count. On a FIFO
// queue that also blocks their groups. So a stop is in three steps:
//   stop_receiving()  no receive begins any more; those in progress go on, and
//                     what they bring is ours to settle or give back.
//   wait_quiet()      the receives in progress end by themselves (a long poll
//                     ends when it has messages or its wait is over), for up
//                     to a grace period;
//   cancel()          those still in progress are aborted at once (their
//                     std::stop_token, aws/http.hpp).
// Only then does the source give back what it holds: at once when every
// receive ended by itself, else hidden until the polls cut short have ended
// at SQS too (their wait, at most 20 s) and cannot take it. Given back while
// receives were still open, as this once did, a message was taken by one of
// them, given back again, taken by the next: one stop took a message from 1
// receive to 4 in 60 ms, and a queue's RedrivePolicy then moved a valid
// request to its dead-letter queue. Now a stop costs a message no receive
// but the next one, as a crash does.
//
// sqs_queue_source's destructor thus flushes what is queued, lets the
// receives end for stop_grace, aborts the rest and then gives back every
// unsettled message, so another consumer gets it without waiting out its
// visibility timeout.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <stop_token>

namespace widget_consumer::detail {

class sqs_receive_gate {
 public:
  // A receive may begin: it is counted in progress until end(). false once
  // receiving stopped.
  bool begin() {
    std::lock_guard lock(mutex_);
    if (stopped_)
      return false;
    ++active_;
    last_begun_ = std::chrono::steady_clock::now();
    return true;
  }

  // Ends a receive begun, on every way out of it: after its messages are
  // registered with the source, so whoever saw the end also sees them.
  class ending {
   public:
    explicit ending(sqs_receive_gate& gate) : gate_(gate) {}
    ending(const ending&) = delete;
    ending& operator=(const ending&) = delete;
    ~ending() { gate_.end(); }

   private:
    sqs_receive_gate& gate_;
  };

  void end() {
    {
      std::lock_guard lock(mutex_);
      --active_;
    }
    changed_.notify_all();
  }

  void stop_receiving() noexcept {
    std::lock_guard lock(mutex_);
    stopped_ = true;
  }

  bool receiving_stopped() const {
    std::lock_guard lock(mutex_);
    return stopped_;
  }

  void cancel() noexcept {
    stop_receiving();
    cancel_.request_stop();
  }

  bool cancelled() const noexcept { return cancel_.stop_requested(); }
  std::stop_token token() const noexcept { return cancel_.get_token(); }

  // Waits until no receive is in progress, for up to `grace`. Returns how
  // long a receive still in progress may go on at SQS if it is cut short
  // now (its long poll's `wait` since the latest began, a second's margin),
  // 0 when none is.
  std::chrono::seconds wait_quiet(std::chrono::milliseconds grace, std::chrono::seconds wait) {
    std::unique_lock lock(mutex_);
    if (changed_.wait_for(lock, grace, [&] { return active_ == 0; }))
      return std::chrono::seconds{0};
    const auto left = last_begun_ + wait - std::chrono::steady_clock::now();
    return std::max(std::chrono::ceil<std::chrono::seconds>(left), std::chrono::seconds{0}) +
           std::chrono::seconds{1};
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::size_t active_ = 0;
  std::chrono::steady_clock::time_point last_begun_{};
  bool stopped_ = false;
  std::stop_source cancel_;
};

}  // namespace widget_consumer::detail
