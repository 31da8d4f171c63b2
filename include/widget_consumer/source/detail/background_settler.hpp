#pragma once
// The thread on which a source makes its settling calls (S3 DeleteObjects,
// SQS DeleteMessageBatch, ...) when flushed with begin_flush()
// (concepts.hpp, background_flushing), so the consumer's poll thread goes
// on dispatching during their round trips instead of waiting for each.
//
// - One piece of work at a time, in the order handed: what one flush queued
//   is sent after everything an earlier flush queued, so an order the calls
//   must keep (an SQS FIFO group's deletes) holds across flushes.
// - Work handed while earlier work still waits to begin is merged into it
//   (Work::merge, which must keep the order of its parts): many small
//   flushes during one round trip go out as a few full batches, not one
//   round trip each.
// - Work waiting is bounded (Work::size() against `max_waiting`): hand()
//   waits for room, so a slow server slows the poll thread down as a
//   synchronous flush did, rather than settlements piling up unbounded.
// - What a run returns, or the exception it threw, is kept until the owner
//   takes it (take() or wait(), on the owner's thread): what the outcome
//   changes in the source is changed there, in the order the work ran.
// - The destructor runs the work still waiting, then joins.

#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <iterator>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

namespace widget_consumer::detail {

// The simplest Work: one flush's entries, in order.
template <class Entry>
struct queued_entries {
  std::vector<Entry> entries{};

  void merge(queued_entries later) {
    entries.insert(entries.end(), std::make_move_iterator(later.entries.begin()),
                   std::make_move_iterator(later.entries.end()));
  }
  std::size_t size() const noexcept { return entries.size(); }
};

template <class Work, class Result>
class background_settler {
 public:
  // What one run gave: its result, or what it threw.
  struct outcome {
    std::optional<Result> result{};
    std::exception_ptr error{};
  };
  using run_function = std::function<Result(Work)>;

  explicit background_settler(run_function run, std::size_t max_waiting = 10000)
      : run_(std::move(run)), max_waiting_(max_waiting), thread_([this] { loop(); }) {}

  background_settler(const background_settler&) = delete;
  background_settler& operator=(const background_settler&) = delete;

  ~background_settler() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    changed_.notify_all();
    thread_.join();
  }

  // Runs `work` after everything handed before; merged into the work still
  // waiting to begin, if any. Waits while that is at max_waiting already.
  void hand(Work work) {
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return !waiting_ || waiting_->size() < max_waiting_; });
      if (waiting_)
        waiting_->merge(std::move(work));
      else
        waiting_.emplace(std::move(work));
    }
    changed_.notify_all();
  }

  // The outcomes of the runs that ended since the last take() or wait(), in
  // the order they ran; does not wait.
  std::vector<outcome> take() {
    std::lock_guard lock(mutex_);
    return std::exchange(done_, {});
  }

  // Waits until every piece of work handed has run; then as take().
  std::vector<outcome> wait() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return !waiting_ && !running_; });
    return std::exchange(done_, {});
  }

  // Nothing waiting nor running.
  bool idle() const {
    std::lock_guard lock(mutex_);
    return !waiting_ && !running_;
  }

 private:
  void loop() {
    std::unique_lock lock(mutex_);
    for (;;) {
      changed_.wait(lock, [&] { return stopping_ || waiting_; });
      if (!waiting_)
        return;  // stopping, and nothing left to run
      Work work = std::move(*waiting_);
      waiting_.reset();
      running_ = true;
      lock.unlock();
      changed_.notify_all();  // room to hand more
      outcome ran;
      try {
        ran.result.emplace(run_(std::move(work)));
      } catch (...) {
        ran.error = std::current_exception();
      }
      lock.lock();
      done_.push_back(std::move(ran));
      running_ = false;
      changed_.notify_all();
    }
  }

  run_function run_;
  std::size_t max_waiting_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;  // work handed or taken, a run ended, stopping
  std::optional<Work> waiting_;
  bool running_ = false;
  bool stopping_ = false;
  std::vector<outcome> done_;
  std::thread thread_;  // last: started once the rest exists
};

}  // namespace widget_consumer::detail
