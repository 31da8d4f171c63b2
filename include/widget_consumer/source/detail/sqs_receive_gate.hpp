#pragma once
// How sqs_queue_source stops its receivers, apart from the rest of it.
//
// A ReceiveMessage cut short is not free: SQS goes on with a long poll
// whose caller hung up and may still hand it messages, which then stay
// hidden for their visibility timeout (aws-sdk-java-v2#1395,
// aws-sdk-go-v2#2068). On a FIFO queue that also blocks their groups. So a
// stop is in two steps:
//   stop_receiving()  no receive begins any more; those in progress go on, and
//                     what they bring is ours to settle or give back.
//   cancel()          the receives still in progress are aborted at once
//                     (their std::stop_token, aws/http.hpp).
// In between, the source gives back what it holds while the receives are
// still connected, so a receive that takes a message given back returns it to
// us instead of hiding it; it cancels only those that stay quiet for a grace
// period, which found nothing to take.
//
// sqs_queue_source's destructor thus flushes what is queued and makes every
// unsettled message visible at once, so another consumer gets it without
// waiting out its visibility timeout; it does so again for what receives
// still in progress bring, until they stay quiet for stop_grace, then aborts
// them. At-least-once: a message SQS hands to a poll after it was aborted
// stays hidden for its visibility timeout, then comes back.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
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
      ++ended_;
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

  // Calls give_back() (which makes what the source holds visible again), and
  // again each time a receive ends while others are still in progress (it may
  // have brought what was given back), until none is in progress or none
  // ended for `grace`. Then what is still in progress found nothing to take
  // and may be cancelled.
  template <class GiveBack>
  void give_back_until_quiet(GiveBack give_back, std::chrono::milliseconds grace) {
    for (;;) {
      std::uint64_t seen = 0;
      {
        std::lock_guard lock(mutex_);
        seen = ended_;
      }
      give_back();
      std::unique_lock lock(mutex_);
      changed_.wait_for(lock, grace, [&] { return active_ == 0 || ended_ != seen; });
      if (active_ == 0 || ended_ == seen)
        return;
    }
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::size_t active_ = 0;
  std::uint64_t ended_ = 0;
  bool stopped_ = false;
  std::stop_source cancel_;
};

}  // namespace widget_consumer::detail
