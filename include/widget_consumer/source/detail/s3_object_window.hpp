#pragma once
// The read-ahead of s3_bucket_source, apart from what the source does with
// the objects: a lister thread pages through ListObjectsV2, one page ahead of
// the page keys are taken from; a fixed pool of fetcher threads GETs the
// bodies of up to read_ahead keys at once; the source takes them strictly in
// key order, waiting only for the oldest.
//
// A pass lists the bucket from the start. The source starts one only when the
// previous pass was taken entirely, so keys come out in order within a pass.
// A failed listing is thrown to the source (once) and abandons the pass, so
// the next one starts from the first key and nothing is overtaken.

#include <widget_consumer/aws/s3.hpp>
#include <widget_consumer/source/detail/worker_threads.hpp>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

namespace widget_consumer::detail {

// One listed key and what its GET brought.
struct s3_fetched {
  std::string key;
  bool done = false;                // written by a fetcher under the window's lock
  std::optional<std::string> body;  // nullopt: the key is gone
  std::exception_ptr error;
};

class s3_object_window {
 public:
  using list_function = std::function<aws::s3_object_list(const aws::s3_list_options&)>;
  using get_function = std::function<std::optional<std::string>(const std::string&)>;

  struct limits {
    std::string prefix;
    int page_size = 1000;
    std::size_t fetch_concurrency = 8;
    std::size_t read_ahead = 64;
  };

  s3_object_window(limits window_limits, list_function list, get_function get)
      : limits_(std::move(window_limits)), list_(std::move(list)), get_(std::move(get)) {
    auto stop = [this] { this->stop(); };
    threads_.start(
        1, [this] { list_loop(); }, stop);
    threads_.start(
        limits_.fetch_concurrency, [this] { fetch_loop(); }, stop);
  }

  s3_object_window(const s3_object_window&) = delete;
  s3_object_window& operator=(const s3_object_window&) = delete;
  ~s3_object_window() { stop(); }

  // Starts a pass from the first key. True when the pass before it was not
  // abandoned (it was under way or taken entirely).
  bool start_pass() {
    std::lock_guard lock(mutex_);
    const bool previous = pass_active_;
    ++pass_;
    pass_active_ = true;
    pass_done_ = false;
    token_.clear();
    pages_.clear();
    page_offset_ = 0;
    list_wanted_.notify_one();
    return previous;
  }

  // Drops the pass and whatever was listed or fetched for it.
  void abandon_pass() {
    std::lock_guard lock(mutex_);
    abandon_locked();
  }

  // The oldest key of the pass that eligible(key) accepts, once its GET is
  // done; it stays first until pop(). With `wait`, waits for it, and throws
  // a listing error (abandoning the pass). nullptr: without `wait`, the
  // oldest is not fetched yet; with it, the pass has nothing more.
  // eligible is called under the window's lock.
  template <class Eligible>
  std::shared_ptr<s3_fetched> next(Eligible&& eligible, bool wait) {
    std::unique_lock lock(mutex_);
    for (;;) {
      if (wait && list_error_) {
        const std::exception_ptr error = std::exchange(list_error_, nullptr);
        abandon_locked();
        std::rethrow_exception(error);
      }
      fill(eligible);
      if (!window_.empty()) {
        if (wait)
          progress_.wait(lock, [&] { return window_.front()->done; });
        return window_.front()->done ? window_.front() : nullptr;
      }
      if (!wait || !pass_active_ || pass_done_)
        return nullptr;
      progress_.wait(lock, [&] { return !pages_.empty() || pass_done_ || list_error_; });
    }
  }

  // Takes the oldest out; the next keys' GETs start meanwhile.
  template <class Eligible>
  void pop(Eligible&& eligible) {
    std::lock_guard lock(mutex_);
    windowed_.erase(window_.front()->key);
    window_.pop_front();
    fill(eligible);
  }

  // Ends the threads (a GET under way is finished first). Idempotent.
  void stop() noexcept {
    change_and_notify(
        mutex_, [this] { stopping_ = true; }, list_wanted_, fetch_wanted_);
    threads_.join();
  }

  // Listed and not taken yet, or a listing under way.
  bool has_pending() {
    std::lock_guard lock(mutex_);
    return !window_.empty() || !pages_.empty() || (pass_active_ && !pass_done_);
  }

  // Calls visit(key) for each key listed and not taken yet: those being
  // fetched or waiting behind the oldest, then the rest of the pages listed
  // (at most a page ahead of the one keys are taken from). Under the
  // window's lock: visit must not call the window.
  template <class Visit>
  void for_each_listed(Visit&& visit) {
    std::lock_guard lock(mutex_);
    for (const auto& item : window_)
      visit(item->key);
    std::size_t offset = page_offset_;
    for (const auto& page : pages_) {
      for (std::size_t i = offset; i < page.size(); ++i)
        if (!windowed_.contains(page[i]))
          visit(page[i]);
      offset = 0;
    }
  }

 private:
  void abandon_locked() {
    ++pass_;
    pass_active_ = false;
    pass_done_ = false;
    pages_.clear();
    page_offset_ = 0;
    windowed_.clear();
    window_.clear();
    fetch_queue_.clear();  // holds only slots of the window
  }

  // Moves listed keys into the window and queues their GETs.
  template <class Eligible>
  void fill(Eligible& eligible) {
    while (!pages_.empty()) {
      auto& page = pages_.front();
      if (page_offset_ == page.size()) {
        pages_.pop_front();
        page_offset_ = 0;
        list_wanted_.notify_one();
        continue;
      }
      if (window_.size() >= limits_.read_ahead)
        return;
      std::string& key = page[page_offset_++];
      if (windowed_.contains(key) || !eligible(key))
        continue;
      auto item = std::make_shared<s3_fetched>();
      item->key = std::move(key);
      windowed_.insert(item->key);
      window_.push_back(item);
      fetch_queue_.push_back(std::move(item));
      fetch_wanted_.notify_one();
    }
  }

  // Keeps at most one page listed ahead of the one keys are taken from.
  void list_loop() {
    std::unique_lock lock(mutex_);
    for (;;) {
      list_wanted_.wait(lock, [&] {
        return stopping_ || (pass_active_ && !pass_done_ && !list_error_ && pages_.size() < 2);
      });
      if (stopping_)
        return;
      const std::uint64_t pass = pass_;
      aws::s3_list_options request;
      request.prefix = limits_.prefix;
      request.continuation_token = token_;
      request.max_keys = limits_.page_size;
      lock.unlock();
      aws::s3_object_list page;
      std::exception_ptr error;
      try {
        page = list_(request);
      } catch (...) {
        error = std::current_exception();
      }
      lock.lock();
      if (pass != pass_)
        continue;  // that pass was abandoned meanwhile
      if (error) {
        list_error_ = error;
      } else {
        token_ = std::move(page.next_continuation_token);
        pass_done_ = token_.empty();
        pages_.push_back(std::move(page.keys));
      }
      progress_.notify_all();
    }
  }

  void fetch_loop() {
    std::unique_lock lock(mutex_);
    for (;;) {
      fetch_wanted_.wait(lock, [&] { return stopping_ || !fetch_queue_.empty(); });
      if (stopping_)
        return;
      std::shared_ptr<s3_fetched> item = std::move(fetch_queue_.front());
      fetch_queue_.pop_front();
      lock.unlock();
      std::optional<std::string> body;
      std::exception_ptr error;
      try {
        body = get_(item->key);
      } catch (...) {
        error = std::current_exception();
      }
      lock.lock();
      item->body = std::move(body);
      item->error = error;
      item->done = true;
      progress_.notify_all();
    }
  }

  limits limits_;
  list_function list_;
  get_function get_;

  std::mutex mutex_;
  std::condition_variable list_wanted_;   // the lister waits
  std::condition_variable fetch_wanted_;  // the fetchers wait
  std::condition_variable progress_;      // next() waits: a page or a body arrived
  bool stopping_ = false;
  std::uint64_t pass_ = 0;  // bumped when a pass starts or is abandoned
  bool pass_active_ = false;
  bool pass_done_ = false;  // the last page of the pass is in pages_
  std::string token_;
  std::deque<std::vector<std::string>> pages_;
  std::size_t page_offset_ = 0;  // into pages_.front()
  std::exception_ptr list_error_;
  std::deque<std::shared_ptr<s3_fetched>> window_;  // in key order
  std::unordered_set<std::string> windowed_;
  std::deque<std::shared_ptr<s3_fetched>> fetch_queue_;

  worker_threads threads_;  // last: joined before the rest goes
};

}  // namespace widget_consumer::detail
