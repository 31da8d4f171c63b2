#pragma once
// s3_bucket_source: the objects of an S3 bucket (optionally under a prefix) as
// requests, oldest key first: the producer names them by 13-digit epoch
// milliseconds, so key order is time order.
//
// Pipeline: a lister thread pages through ListObjectsV2, one page ahead of
// the page poll() is taking keys from; a fixed pool of fetcher threads
// GETs the bodies of up to read_ahead keys at once; poll() hands them out
// strictly in key order, waiting only for the oldest.
//
// Decisions:
// - A pass lists the bucket from the start. A new pass begins only when the
//   previous one has been handed out entirely, so keys go out in order within
//   a pass; keys in flight, awaiting their delete, or released and not yet
//   due are skipped. A released key therefore comes back on the first pass
//   after its delay.
// - A key that is gone by the time its body is fetched (another consumer
//   took it) is skipped; vanished() counts them.
// - A failed GET or listing is thrown from poll() (the consumer counts it
//   and pauses); the read-ahead is dropped and the next poll() starts a new
//   pass, so the failed key is not overtaken by the ones after it.
// - ack and reject queue the delete; flush() sends DeleteObjects (1,000 keys
//   per call, Quiet) and reports each key S3 did not delete. When the batch
//   call fails as a whole, every key is deleted on its own; a server that
//   does not implement DeleteObjects (501/405) is not asked again, one that
//   refuses it while the single deletes succeed not for a minute.
// - reject writes the reason to "{rejected_prefix}{key}.reason" (text/plain),
//   then copies the request to "{rejected_prefix}{key}", then queues the
//   delete. Reason first: a failure part-way leaves the request in place, to
//   be rejected again, rather than a rejected request without its reason.
//   When the rejected objects live in the request bucket, keys under the
//   rejected prefix are never requests.
// - Keys ending in '/' (folder markers made by consoles) are not requests.
// - An object that cannot be read (over the response cap, AccessDenied from
//   KMS or an ACL, InvalidObjectState) fails its pass like any failed GET,
//   and after unreadable_tries such passes it is set aside like an invalid
//   request: reason, copy under the rejected prefix, delete. When even the
//   copy fails the original stays where it is (nothing lost), its .reason
//   says so, this source skips it from then on, and flush() reports it.

#include "../concepts.hpp"

#include <widget_consumer/aws/access_check.hpp>
#include <widget_consumer/aws/client.hpp>
#include <widget_consumer/aws/error.hpp>
#include <widget_consumer/aws/s3.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace widget_consumer {

struct s3_bucket_source_options {
  std::string prefix;                         // only keys under it are requests; "" = all
  std::string rejected_prefix = "rejected/";  // where reject() puts a request and its reason
  std::string rejected_bucket;                // "" = the request bucket
  std::size_t fetch_concurrency = 8;          // GetObject threads, 1..64
  std::size_t read_ahead = 64;                // bodies fetched ahead of poll(), >= 1
  int page_size = 1000;                       // ListObjectsV2 max-keys, 1..1000
};

class s3_bucket_source {
 public:
  using ticket_type = std::string;  // the key
  using clock = std::chrono::steady_clock;

  s3_bucket_source(aws::s3_client client, std::string bucket, s3_bucket_source_options options = {})
      : client_(std::move(client)), bucket_(std::move(bucket)), options_(std::move(options)) {
    if (bucket_.empty())
      throw std::invalid_argument("s3_bucket_source: the request bucket name is empty");
    if (options_.page_size < 1 || options_.page_size > 1000)
      throw std::invalid_argument("s3_bucket_source: page_size must be 1..1000");
    if (options_.fetch_concurrency < 1 || options_.fetch_concurrency > 64)
      throw std::invalid_argument("s3_bucket_source: fetch_concurrency must be 1..64");
    options_.read_ahead = std::max<std::size_t>(options_.read_ahead, 1);
    if (options_.rejected_bucket.empty())
      options_.rejected_bucket = bucket_;
    rejects_here_ = options_.rejected_bucket == bucket_;
    if (rejects_here_ && options_.rejected_prefix.empty())
      throw std::invalid_argument(
          "s3_bucket_source: rejected requests in the request bucket need a rejected prefix");
    if (rejects_here_ && options_.prefix.starts_with(options_.rejected_prefix))
      throw std::invalid_argument(
          "s3_bucket_source: the request prefix is inside the rejected one");
    try {
      lister_ = std::thread([this] { list_loop(); });
      for (std::size_t i = 0; i < options_.fetch_concurrency; ++i)
        fetchers_.emplace_back([this] { fetch_loop(); });
    } catch (...) {
      stop();
      throw;
    }
  }

  s3_bucket_source(aws::client_config config, std::string bucket,
                   s3_bucket_source_options options = {})
      : s3_bucket_source(aws::s3_client(std::move(config)), std::move(bucket), std::move(options)) {
  }

  s3_bucket_source(const s3_bucket_source&) = delete;
  s3_bucket_source& operator=(const s3_bucket_source&) = delete;

  // Unflushed acks are not sent: those requests are delivered again.
  ~s3_bucket_source() { stop(); }

  // Before the first poll (concepts.hpp, startup_checking): one key is listed,
  // which needs the bucket to exist and these credentials to be let in.
  void check_ready() {
    aws::s3_list_options one_key;
    one_key.prefix = options_.prefix;
    one_key.max_keys = 1;
    list_checked(one_key);
  }

  // Never waits for new objects (S3 has no long poll), only for the oldest
  // listed body to arrive.
  std::vector<received_request<ticket_type>> poll(std::chrono::milliseconds, std::size_t max) {
    std::vector<received_request<ticket_type>> batch;
    if (max == 0)
      return batch;
    std::unique_lock lock(mutex_);
    throw_list_error();
    bool started_pass = false;
    for (;;) {
      fill_window();
      if (!window_.empty()) {
        progress_.wait(lock, [&] { return window_.front()->done; });
        take_ready(batch, max);
        fill_window();  // keep the fetchers busy while the batch is dispatched
        if (!batch.empty())
          return batch;
        continue;  // every one had vanished
      }
      if (pass_active_ && !pass_done_) {
        progress_.wait(lock, [&] { return !pages_.empty() || pass_done_ || list_error_; });
        throw_list_error();
        continue;
      }
      if (started_pass)
        return batch;  // listed everything once in this call: nothing now
      start_pass();
      started_pass = true;
    }
  }

  void ack(const ticket_type& key) {
    settle(key);
    queue_delete(key, settle_action::ack);
  }

  void release(const ticket_type& key, std::chrono::milliseconds delay) {
    settle(key);
    delayed_[key] = clock::now() + delay;
  }

  void reject(const ticket_type& key, std::string_view reason) {
    settle(key);
    const std::string target = options_.rejected_prefix + key;
    try {
      client_.put_object(options_.rejected_bucket, target + ".reason", std::string(reason),
                         "text/plain; charset=utf-8");
      client_.copy_object(bucket_, key, options_.rejected_bucket, target);
    } catch (const std::exception& e) {
      // Not in flight any more, so it is listed and rejected again.
      failures_.push_back({settle_action::reject, key,
                           "cannot copy to " +
                               aws::detail::s3_resource(options_.rejected_bucket, target) + ": " +
                               e.what()});
      return;
    }
    queue_delete(key, settle_action::reject);
  }

  std::vector<settle_failure> flush() {
    if (!pending_deletes_.empty())
      delete_pending();
    return std::exchange(failures_, {});
  }

  bool ordered() const noexcept { return true; }
  // A released key is listed again by this source only (concepts.hpp).
  bool releases_locally() const noexcept { return true; }

  // Listed and not delivered yet (being fetched, waiting behind the oldest,
  // on a page not taken yet, or a listing under way), or released and not
  // yet due: the consumer does not count such time as idle.
  bool has_pending() {
    std::lock_guard lock(mutex_);
    return !window_.empty() || !pages_.empty() || (pass_active_ && !pass_done_) ||
           !delayed_.empty();
  }

  const std::string& bucket() const noexcept { return bucket_; }
  const s3_bucket_source_options& options() const noexcept { return options_; }
  // Listed keys that were gone when their body was fetched.
  std::uint64_t vanished() const noexcept { return vanished_; }
  // Delivered and not yet settled.
  std::size_t in_flight() const noexcept { return in_flight_.size(); }
  // Objects set aside because they could not be read (see the top).
  std::uint64_t unreadable() const noexcept { return unreadable_; }

 private:
  struct slot {
    std::string key;
    bool done = false;                // written by a fetcher under mutex_
    std::optional<std::string> body;  // nullopt: the key is gone
    std::exception_ptr error;
  };

  struct pending_delete {
    std::string key;
    settle_action action;
  };

  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    list_wanted_.notify_all();
    fetch_wanted_.notify_all();
    if (lister_.joinable())
      lister_.join();
    for (auto& fetcher : fetchers_)
      if (fetcher.joinable())
        fetcher.join();
  }

  // ---- background threads ------------------------------------------------

  // Keeps at most one page listed ahead of the one poll() is taking from.
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
      request.prefix = options_.prefix;
      request.continuation_token = token_;
      request.max_keys = options_.page_size;
      lock.unlock();
      aws::s3_object_list page;
      std::exception_ptr error;
      try {
        page = list_checked(request);
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
      std::shared_ptr<slot> item = std::move(fetch_queue_.front());
      fetch_queue_.pop_front();
      lock.unlock();
      std::optional<std::string> body;
      std::exception_ptr error;
      try {
        body = client_.get_object(bucket_, item->key);
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

  // A listing that retrying cannot fix (no such bucket, access denied)
  // becomes unrecoverable_error: the consumer stops at once and says why.
  aws::s3_object_list list_checked(const aws::s3_list_options& request) {
    return aws::with_access_check(
        client_.service().config(),
        "cannot list the request bucket " + aws::detail::s3_resource(bucket_),
        "that the bucket exists in this region and that these credentials may list, read and "
        "delete its objects",
        [&] { return client_.list_objects_v2(bucket_, request); });
  }

  // ---- poll thread, under mutex_ ------------------------------------------

  void throw_list_error() {
    if (!list_error_)
      return;
    const std::exception_ptr error = std::exchange(list_error_, nullptr);
    abandon_pass();
    std::rethrow_exception(error);
  }

  void start_pass() {
    const auto now = clock::now();
    // A release that was due before the last pass began and was not seen in
    // it is gone from the bucket: forget it.
    if (pass_active_) {
      std::erase_if(delayed_, [&](const auto& entry) {
        if (entry.second >= pass_started_)
          return false;
        receive_counts_.erase(entry.first);
        return true;
      });
    }
    ++pass_;
    pass_active_ = true;
    pass_done_ = false;
    pass_started_ = now;
    token_.clear();
    pages_.clear();
    page_offset_ = 0;
    list_wanted_.notify_one();
  }

  void abandon_pass() {
    ++pass_;
    pass_active_ = false;
    pass_done_ = false;
    pages_.clear();
    page_offset_ = 0;
    for (const auto& item : window_)
      windowed_.erase(item->key);
    window_.clear();
    fetch_queue_.clear();  // holds only slots of the window
  }

  bool eligible(const std::string& key, clock::time_point now) {
    if (key.empty() || key.ends_with('/'))
      return false;
    if (rejects_here_ && key.starts_with(options_.rejected_prefix))
      return false;
    if (in_flight_.contains(key) || windowed_.contains(key) || deleting_.contains(key) ||
        skipped_.contains(key))
      return false;
    if (const auto due = delayed_.find(key); due != delayed_.end()) {
      if (due->second > now)
        return false;
      delayed_.erase(due);
    }
    return true;
  }

  // Moves listed keys into the read-ahead window and queues their GETs.
  void fill_window() {
    const auto now = clock::now();
    while (!pages_.empty()) {
      auto& page = pages_.front();
      if (page_offset_ == page.size()) {
        pages_.pop_front();
        page_offset_ = 0;
        list_wanted_.notify_one();
        continue;
      }
      if (window_.size() >= options_.read_ahead)
        return;
      std::string& key = page[page_offset_++];
      if (!eligible(key, now))
        continue;
      auto item = std::make_shared<slot>();
      item->key = std::move(key);
      windowed_.insert(item->key);
      window_.push_back(item);
      fetch_queue_.push_back(std::move(item));
      fetch_wanted_.notify_one();
    }
  }

  void take_ready(std::vector<received_request<ticket_type>>& batch, std::size_t max) {
    while (!window_.empty() && batch.size() < max && window_.front()->done) {
      const std::shared_ptr<slot> item = window_.front();
      if (item->error) {
        if (!batch.empty())
          return;  // hand out what came before it; the next poll throws
        if (const auto why = unreadable_reason(item->error);
            why && ++read_failures_[item->key] >= unreadable_tries) {
          read_failures_.erase(item->key);
          window_.pop_front();
          windowed_.erase(item->key);
          set_aside(item->key, *why);
          continue;
        }
        abandon_pass();
        std::rethrow_exception(item->error);
      }
      window_.pop_front();
      windowed_.erase(item->key);
      if (!item->body) {
        ++vanished_;
        receive_counts_.erase(item->key);
        continue;
      }
      read_failures_.erase(item->key);
      in_flight_.insert(item->key);
      const std::uint32_t receives = ++receive_counts_[item->key];
      batch.push_back({std::move(*item->body), item->key, item->key, "", receives});
    }
  }

  // Why GetObject can never succeed for this one key, or nullopt when the
  // failure may heal or concerns more than the key (credentials, network).
  static std::optional<std::string> unreadable_reason(const std::exception_ptr& error) {
    try {
      std::rethrow_exception(error);
    } catch (const aws::transport_error& e) {
      if (e.failure() == aws::transport_error::kind::too_large)
        return std::string(e.what());
    } catch (const aws::service_error& e) {
      if (e.code() == "AccessDenied" || e.code() == "InvalidObjectState" ||
          e.code().starts_with("KMS."))
        return std::string(e.what());
    } catch (...) {
    }
    return std::nullopt;
  }

  // Under mutex_, on the poll thread: a rare event, so the fetchers may wait.
  void set_aside(const std::string& key, const std::string& why) {
    ++unreadable_;
    const std::string target = options_.rejected_prefix + key;
    const std::string reason = "unreadable: " + why;
    try {
      client_.put_object(options_.rejected_bucket, target + ".reason", reason,
                         "text/plain; charset=utf-8");
      client_.copy_object(bucket_, key, options_.rejected_bucket, target);
      queue_delete(key, settle_action::reject);
      return;
    } catch (const std::exception& e) {
      // No copy, so no delete: the original stays, skipped by this source.
      skipped_.insert(key);
      const std::string in_place =
          reason + "; it could not be copied either (" + e.what() + "), so it is left in place";
      try {
        client_.put_object(options_.rejected_bucket, target + ".reason", in_place,
                           "text/plain; charset=utf-8");
      } catch (const std::exception&) {
        // flush() reports it all the same.
      }
      failures_.push_back({settle_action::reject, key, in_place});
    }
  }

  // ---- settling (poll thread only) ----------------------------------------

  void settle(const ticket_type& key) {
    if (in_flight_.erase(key) == 0)
      throw std::logic_error("request " + key + " is not in flight");
  }

  void queue_delete(const std::string& key, settle_action action) {
    deleting_.insert(key);
    pending_deletes_.push_back({key, action});
  }

  static bool batch_delete_unsupported(const aws::service_error& error) {
    return error.status() == 501 || error.status() == 405 || error.code() == "NotImplemented";
  }

  void delete_pending() {
    const std::vector<pending_delete> batch = std::exchange(pending_deletes_, {});
    std::unordered_map<std::string, settle_action> actions;
    std::vector<std::string> keys;
    keys.reserve(batch.size());
    for (const auto& each : batch) {
      actions.emplace(each.key, each.action);
      keys.push_back(each.key);
    }
    std::unordered_set<std::string> failed;
    bool deleted = false;
    bool batch_refused = false;  // the server answered DeleteObjects with an error
    if (batch_delete_ && clock::now() >= batch_delete_paused_until_) {
      try {
        for (auto& failure : client_.delete_objects(bucket_, keys)) {
          const auto action = actions.find(failure.key);
          failures_.push_back({action == actions.end() ? settle_action::ack : action->second,
                               failure.key,
                               "DeleteObjects: " + failure.code + ": " + failure.message});
          failed.insert(failure.key);
        }
        deleted = true;
      } catch (const aws::service_error& e) {
        batch_delete_ = !batch_delete_unsupported(e);
        batch_refused = true;
      } catch (const std::exception&) {
        // Whatever it was, the single deletes below will say it per key.
      }
    }
    if (!deleted) {
      for (const auto& each : batch) {
        try {
          client_.delete_object(bucket_, each.key);
        } catch (const std::exception& e) {
          failures_.push_back({each.action, each.key, e.what()});
          failed.insert(each.key);
        }
      }
      // DeleteObjects refused while every key deletes fine on its own: a
      // server that cannot do the batch for these keys (s3rver 3.7.1 answers
      // 500 to any key that looks like a number, i.e. every producer key).
      // Asking it again at each flush costs the call and its retries every
      // time (seconds per flush, and a 1,200-request drain ran at 11/s):
      // delete one by one for a while, then try the batch again.
      if (batch_refused && failed.empty())
        batch_delete_paused_until_ = clock::now() + batch_delete_pause;
    }
    // Deleted or not, they may be listed again: a failed delete means the
    // request is still there and is delivered again, counted as such.
    for (const auto& key : keys) {
      deleting_.erase(key);
      if (!failed.contains(key))
        receive_counts_.erase(key);
    }
  }

  aws::s3_client client_;
  std::string bucket_;
  s3_bucket_source_options options_;
  bool rejects_here_ = true;

  // Shared with the background threads.
  std::mutex mutex_;
  std::condition_variable list_wanted_;   // the lister waits
  std::condition_variable fetch_wanted_;  // the fetchers wait
  std::condition_variable progress_;      // poll() waits: a page or a body arrived
  bool stopping_ = false;
  std::uint64_t pass_ = 0;  // bumped when a pass starts or is abandoned
  bool pass_active_ = false;
  bool pass_done_ = false;  // the last page of the pass is in pages_
  std::string token_;
  std::deque<std::vector<std::string>> pages_;
  std::exception_ptr list_error_;
  std::deque<std::shared_ptr<slot>> fetch_queue_;

  // Poll thread only (fill_window and take_ready also hold mutex_).
  clock::time_point pass_started_{};
  std::size_t page_offset_ = 0;  // into pages_.front()
  std::deque<std::shared_ptr<slot>> window_;
  std::unordered_set<std::string> windowed_;
  std::unordered_set<std::string> in_flight_;
  std::unordered_set<std::string> deleting_;  // acked or rejected, delete not yet sent
  std::unordered_map<std::string, clock::time_point> delayed_;
  std::unordered_map<std::string, std::uint32_t> receive_counts_;
  std::vector<pending_delete> pending_deletes_;
  std::vector<settle_failure> failures_;
  bool batch_delete_ = true;
  static constexpr std::uint32_t unreadable_tries = 3;  // failed passes before a set-aside
  std::unordered_map<std::string, std::uint32_t> read_failures_;
  std::unordered_set<std::string> skipped_;  // unreadable and not even copyable: left in place
  std::uint64_t unreadable_ = 0;
  static constexpr std::chrono::seconds batch_delete_pause{60};
  clock::time_point batch_delete_paused_until_{};
  std::uint64_t vanished_ = 0;

  std::thread lister_;
  std::vector<std::thread> fetchers_;
};

}  // namespace widget_consumer
