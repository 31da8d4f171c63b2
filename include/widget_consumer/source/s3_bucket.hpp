#pragma once
// s3_bucket_source: the objects of an S3 bucket (optionally under a prefix) as
// requests, oldest key first: the producer names them by 13-digit epoch
// milliseconds, so key order is time order.
//
// Pipeline (detail/s3_object_window.hpp): a lister thread pages through
// ListObjectsV2 ahead of poll(), fetcher threads GET up to read_ahead bodies
// at once, and poll() hands them out strictly in key order, waiting only for
// the oldest.
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
//   per call, Quiet) through the shared batch runner (detail/batch_runner.hpp:
//   three tries) and reports each key still not deleted. When the batch call
//   fails as a whole, every key is deleted on its own; a server that does not
//   implement DeleteObjects (501/405) is not asked again, one that refuses it
//   while the single deletes succeed not for a minute. begin_flush()
//   (concepts.hpp, background_flushing) makes these calls on a settler
//   thread (detail/background_settler.hpp) and returns at once; a key stays
//   in `deleting_` (not listed again), and busy in its partition (not given
//   back to other consumers), until the poll thread takes its outcome.
// - Settling a key that is not in flight is reported by flush(), never
//   thrown (concepts.hpp, the settlement contract).
// - reject queues the request like an ack; before the delete, the flush
//   writes the reason to "{rejected_prefix}{key}.reason" and copies the
//   request to "{rejected_prefix}{key}" (detail/s3_rejected_copy.hpp), up to
//   copy_threads rejects at once. Those two round trips were once made on
//   the poll thread, and a few invalid requests in a hundred then held up
//   every request behind them (BENCHMARKS.md). A failed copy keeps the
//   request where it is (no delete) and is reported. When the rejected
//   objects live in the request bucket, keys under the rejected prefix are
//   never requests.
// - Keys ending in '/' (folder markers made by consoles) are not requests.
// - An object that cannot be read (over the response cap, AccessDenied from
//   KMS or an ACL, InvalidObjectState) fails its pass like any failed GET,
//   and after unreadable_tries such passes it is set aside like an invalid
//   request: reason, copy under the rejected prefix, delete. When even the
//   copy fails the original stays where it is (nothing lost), its .reason
//   says so, this source skips it from then on, and flush() reports it.
// - Several consumers share a bucket by dividing the partitions of the
//   widget ids between them (detail/s3_partition_claims.hpp): a request is
//   handed out only while this process holds the partition of its widget,
//   claimed before the pass that listed it began. Requests of other
//   partitions are skipped, and their keys remembered so that their bodies
//   are read once (detail/s3_partition_keys.hpp). A release is kept for
//   the tenure of its partition; once the partition went elsewhere it is
//   forgotten and told to the consumer (detail/s3_released_keys.hpp). The
//   destructor gives the partitions back. check_ready() refuses a server that does not honour
//   conditional writes. `claims = false` is for a consumer alone on its
//   bucket (or a server without conditional writes): nothing is claimed.

#include <widget_consumer/concepts.hpp>
#include <widget_consumer/position.hpp>

#include <widget_consumer/aws/access_check.hpp>
#include <widget_consumer/aws/client.hpp>
#include <widget_consumer/aws/error.hpp>
#include <widget_consumer/aws/s3.hpp>
#include <widget_consumer/source/detail/background_settler.hpp>
#include <widget_consumer/source/detail/batch_runner.hpp>
#include <widget_consumer/source/detail/s3_backlog.hpp>
#include <widget_consumer/source/detail/s3_object_window.hpp>
#include <widget_consumer/source/detail/s3_partition_claims.hpp>
#include <widget_consumer/source/detail/s3_partition_keys.hpp>
#include <widget_consumer/source/detail/s3_partitions.hpp>
#include <widget_consumer/source/detail/s3_rejected_copy.hpp>
#include <widget_consumer/source/detail/s3_released_keys.hpp>
#include <widget_consumer/source/detail/s3_request_deleter.hpp>
#include <widget_consumer/source/detail/settlement_ledger.hpp>
#include <widget_consumer/source/s3_bucket_options.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <iterator>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace widget_consumer {

/// A request source of the objects in an S3 bucket, in key order; several consumers split it by
/// partition claims.
class s3_bucket_source {
 public:
  using ticket_type = std::string;  ///< the key
  /// The clock release delays and claim renewals are measured on.
  using clock = std::chrono::steady_clock;

  /// A source of `bucket` through `client`; throws std::invalid_argument for bad options.
  s3_bucket_source(aws::s3_client client, std::string bucket, s3_bucket_source_options options = {})
      : client_(std::move(client)),
        bucket_(std::move(bucket)),
        options_(checked_s3_bucket_source_options(bucket_, std::move(options))),
        rejects_here_(options_.rejected_bucket == bucket_),
        claims_(options_.claims
                    ? std::make_unique<detail::s3_partition_claims>(
                          client_, detail::s3_claim_settings{.bucket = bucket_,
                                                             .prefix = options_.claim_prefix,
                                                             .lifetime = options_.claim_lifetime})
                    : nullptr),
        window_(
            {.prefix = options_.prefix,
             .page_size = options_.page_size,
             .fetch_concurrency = options_.fetch_concurrency,
             .read_ahead = options_.read_ahead},
            [this](const aws::s3_list_options& request) { return list_checked(request); },
            [this](const std::string& key) { return client_.get_object(bucket_, key); }) {}

  /// A source of `bucket`, with an S3 client made from `config`.
  s3_bucket_source(aws::client_config config, std::string bucket,
                   s3_bucket_source_options options = {})
      : s3_bucket_source(aws::s3_client(std::move(config)), std::move(bucket), std::move(options)) {
  }

  s3_bucket_source(const s3_bucket_source&) = delete;
  s3_bucket_source& operator=(const s3_bucket_source&) = delete;

  // Unflushed acks are not sent: those requests are delivered again. The
  // partitions held are given back, so other consumers need not wait for
  // them to expire.
  ~s3_bucket_source() {
    finish_deletes(settler_.wait());
    window_.stop();
    if (claims_) {
      claims_->stop();
      claims_->give_back();
    }
  }

  /// Before the first poll (concepts.hpp, startup_checking): one key is listed,
  /// which needs the bucket to exist and these credentials to be let in.
  void check_ready() {
    aws::s3_list_options one_key;
    one_key.prefix = options_.prefix;
    one_key.max_keys = 1;
    list_checked(one_key);
    if (claims_)
      claims_->check_conditional_writes();
  }

  /// Never waits for new objects (S3 has no long poll), only for the oldest
  /// listed body to arrive.
  std::vector<received_request<ticket_type>> poll(std::chrono::milliseconds, std::size_t max) {
    if (claims_)
      claims_->start();
    std::vector<received_request<ticket_type>> batch;
    bool started_pass = false;
    const auto eligible = [this](const std::string& key) { return this->eligible(key); };
    while (batch.size() < max) {
      const auto item = window_.next(eligible, batch.empty());
      if (!item) {
        if (!batch.empty() || started_pass)
          return batch;  // the rest is still being fetched, or nothing now
        start_pass();
        started_pass = true;
        continue;
      }
      if (item->error && !ours_to_set_aside(item->key, item->error)) {
        window_.pop(eligible);  // its partition's owner sets it aside
        continue;
      }
      if (item->error) {
        if (!batch.empty())
          return batch;  // hand out what came before it; the next poll throws
        if (const auto why = detail::s3_unreadable_reason(item->error);
            why && ++read_failures_[item->key] >= unreadable_tries) {
          read_failures_.erase(item->key);
          window_.pop(eligible);
          set_aside(item->key, *why);
          continue;
        }
        window_.abandon_pass();
        std::rethrow_exception(item->error);
      }
      window_.pop(eligible);  // the item is ours alone from here
      if (!item->body) {
        ++vanished_;
        receive_counts_.erase(item->key);
        continue;
      }
      if (claims_ && !take(item->key, *item->body))
        continue;
      read_failures_.erase(item->key);
      released_.handed_out(item->key);
      ledger_.hand_out(item->key);
      batch.push_back({.body = std::move(*item->body),
                       .ticket = item->key,
                       .name = item->key,
                       .receive_count = ++receive_counts_[item->key],
                       .position = s3_key_position(item->key)});
    }
    return batch;
  }

  /// Queues the object's delete for the next flush (DeleteObjects).
  void ack(const ticket_type& key) {
    if (ledger_.settle(key, settle_action::ack))
      queue_delete(key, settle_action::ack);
  }

  /// With claims, kept for the tenure of its partition
  /// (detail/s3_released_keys.hpp).
  void release(const ticket_type& key, std::chrono::milliseconds delay) {
    if (!ledger_.settle(key, settle_action::release))
      return;
    const auto due = clock::now() + delay;
    auto taken = finished(key);
    if (!taken) {
      released_.keep(key, due);
      return;
    }
    if (claims_->tenure(taken->partition) == taken->tenure)
      released_.keep(key, due,
                     {{.partition = taken->partition,
                       .tenure = taken->tenure,
                       .widget = std::move(taken->widget)}});
    else {  // the partition changed hands while it was worked on
      receive_counts_.erase(key);
      released_.forget(key, std::move(taken->widget));
    }
  }

  /// The copy under the rejected prefix is made by the next flush, before the
  /// delete (see the top).
  void reject(const ticket_type& key, std::string_view reason) {
    if (ledger_.settle(key, settle_action::reject))
      queue_delete(key, settle_action::reject, std::string(reason));
  }

  /// Runs the queued deletes and copies, and reports the settlements that failed.
  std::vector<settle_failure> flush() {
    finish_deletes(settler_.wait());
    if (!pending_deletes_.empty())
      delete_pending();
    return ledger_.take_failures();
  }

  /// As flush(), but the DeleteObjects run on the settler thread while this
  /// returns: their failures come with a later flush. With nothing in flight
  /// there is nothing to go on with meanwhile, so it waits, as flush() does.
  std::vector<settle_failure> begin_flush() {
    if (ledger_.size() == 0)
      return flush();
    finish_deletes(settler_.take());
    if (!pending_deletes_.empty())
      settler_.hand(take_pending());
    return ledger_.take_failures();
  }

  /// Claims found gone or overwritten (detail/s3_partition_claims.hpp).
  std::vector<std::string> take_warnings() {
    return claims_ ? claims_->take_warnings() : std::vector<std::string>{};
  }

  /// Released requests of partitions gone elsewhere since
  /// (detail/s3_released_keys.hpp).
  std::vector<forgotten_release> take_forgotten_releases() { return released_.take_forgotten(); }

  /// Key order is the order requests are applied in.
  bool ordered() const noexcept { return true; }
  /// A released key is listed again by this source only (concepts.hpp).
  bool releases_locally() const noexcept { return true; }

  /// Listed and not delivered yet (being fetched, waiting behind the oldest,
  /// on a page not taken yet, or a listing under way), or released and not
  /// yet due: the consumer does not count such time as idle.
  /// Keys of partitions held elsewhere count too: their owner may die, and
  /// its partitions then come to whoever is still running.
  bool has_pending() {
    return window_.has_pending() || !released_.empty() || (claims_ && keys_.others_at_work());
  }
  /// Listed and not started yet (detail/s3_backlog.hpp, backlog_reporting).
  std::uint64_t backlog() {
    return detail::s3_backlog(window_, request_keys(),
                              [this](const std::string& key) { return started(key); });
  }

  /// The bucket it reads.
  const std::string& bucket() const noexcept { return bucket_; }
  /// Its options, as given.
  const s3_bucket_source_options& options() const noexcept { return options_; }
  /// Listed keys that were gone when their body was fetched.
  std::uint64_t vanished() const noexcept { return vanished_; }
  /// Delivered and not yet settled.
  std::size_t in_flight() const noexcept { return ledger_.size(); }
  /// Objects set aside because they could not be read (see the top).
  std::uint64_t unreadable() const noexcept { return unreadable_; }
  /// Partitions taken over from consumers that stopped renewing them, and
  /// partitions of ours another consumer took over (0 without claims).
  std::uint64_t claims_taken_over() const { return claims_ ? claims_->taken_over() : 0; }
  /// Of those, the partitions another consumer took from us.
  std::uint64_t claims_lost() const { return claims_ ? claims_->lost() : 0; }

 private:
  struct pending_delete {
    std::string key;
    settle_action action = settle_action::ack;
    std::optional<std::string> copy_reason{};  // a reject not yet copied: copy it first
  };

  // What one run of the settler did: the requests it was to delete, and
  // those (requests or claims) still there.
  struct deletes_done {
    std::vector<pending_delete> requests;
    std::vector<detail::batch_undone<pending_delete>> undone;
  };
  using settler_type =
      detail::background_settler<detail::queued_entries<pending_delete>, deletes_done>;

  // A listing that retrying cannot fix (no such bucket, access denied)
  // becomes unrecoverable_error: the consumer stops at once and says why.
  aws::s3_object_list list_checked(const aws::s3_list_options& request) {
    return aws::with_access_check(
        client_.service().config(), "cannot list the request bucket " + aws::s3_resource(bucket_),
        "that the bucket exists in this region and that these credentials may list, read and "
        "delete its objects",
        [&] { return client_.list_objects_v2(bucket_, request); });
  }

  // ---- poll thread only ------------------------------------------------------

  void start_pass() {
    const auto now = clock::now();
    // Before any request of a partition regained goes out in this pass.
    released_.start_pass(
        window_.start_pass(), pass_started_, [this](std::uint32_t p) { return claims_->tenure(p); },
        [this](const std::string& key) { receive_counts_.erase(key); });
    keys_.start_pass();
    pass_started_ = now;
  }

  // Whether this consumer may hand out the request now: its partition is
  // held here since before the pass began. Until finished(key), the partition
  // is not given back.
  bool take(const std::string& key, const std::string& body) {
    // As s3_partition_of_request(), parsing the body once.
    auto widget = detail::s3_widget_id_of(body);
    const std::uint32_t p =
        detail::s3_partition_of_text(widget ? std::string_view(*widget) : std::string_view(key));
    if (!keys_.allowed(p, [&] { return claims_->take(p, pass_started_); })) {
      keys_.elsewhere(key, p);
      receive_counts_.erase(key);
      return false;
    }
    keys_.forget(key);
    keys_.taken(key, {.partition = p,
                      .tenure = claims_->tenure(p).value_or(0),
                      .widget = std::move(widget).value_or("")});
    return true;
  }

  // The request under `key` is settled, and deleted if it was to be: what
  // was taken of it, if it was (with claims).
  std::optional<detail::s3_partition_keys::taken_key> finished(const std::string& key) {
    if (!claims_)
      return std::nullopt;
    auto taken = keys_.done(key);
    if (taken)
      claims_->done(taken->partition);
    return taken;
  }

  // An object that cannot be read names no widget: the consumer holding the
  // partition of its key sets it aside. Other failures are everyone's.
  bool ours_to_set_aside(const std::string& key, const std::exception_ptr& error) {
    if (!claims_ || !detail::s3_unreadable_reason(error))
      return true;
    const std::uint32_t p = detail::s3_partition_of_text(key);
    if (keys_.allowed(p, [&] { return claims_->usable(p, pass_started_); }))
      return true;
    keys_.elsewhere(key, p);
    return false;
  }

  // Called by the window under its lock, on the poll thread.
  bool eligible(const std::string& key) {
    if (!request_keys().holds(key) || started(key))
      return false;
    // Asked first, so that a release listed is known to be still there.
    const bool waiting = released_.waiting(key, clock::now());
    if (claims_) {
      const auto p = keys_.known(key);
      if (p && !keys_.allowed(*p, [&] { return claims_->usable(*p, pass_started_); }))
        return false;  // not read again while its partition is held elsewhere
    }
    return !waiting;
  }

  detail::s3_request_keys request_keys() const noexcept {
    return {.rejected_prefix = rejects_here_ ? options_.rejected_prefix : std::string_view(),
            .claim_prefix = claims_ ? options_.claim_prefix : std::string_view()};
  }
  // Handed out and not yet deleted, or left in place for good.
  bool started(const std::string& key) const {
    return ledger_.in_flight(key) || deleting_.contains(key) || skipped_.contains(key);
  }

  // On the poll thread: a rare event, so poll() may take its time.
  void set_aside(const std::string& key, const std::string& why) {
    ++unreadable_;
    const auto left_in_place =
        detail::s3_set_aside_unreadable(client_, bucket_, key, options_.rejected_bucket,
                                        options_.rejected_prefix + key, "unreadable: " + why);
    if (!left_in_place) {
      queue_delete(key, settle_action::reject);  // copied already
      return;
    }
    skipped_.insert(key);  // no copy, so no delete: the original stays
    ledger_.fail(settle_action::reject, key, *left_in_place);
  }

  // ---- settling (poll thread, but run_deletes: settler) ---------------------

  void queue_delete(const std::string& key, settle_action action,
                    std::optional<std::string> copy_reason = std::nullopt) {
    deleting_.insert(key);
    pending_deletes_.push_back(
        {.key = key, .action = action, .copy_reason = std::move(copy_reason)});
  }

  void delete_pending() {
    settler_.hand(take_pending());
    finish_deletes(settler_.wait());
  }

  detail::queued_entries<pending_delete> take_pending() {
    std::vector<pending_delete> batch = std::exchange(pending_deletes_, {});
    return {.entries = std::move(batch)};
  }

  // On the settler thread: only the client, the options and the deleter.
  deletes_done run_deletes(detail::queued_entries<pending_delete> work) {
    deletes_done done;
    done.requests = work.entries;
    // Rejects are copied first; one whose copy failed is not deleted.
    done.undone =
        detail::s3_copy_rejected_entries(client_, bucket_, options_.rejected_bucket,
                                         options_.rejected_prefix, work.entries, copy_threads);
    std::unordered_set<std::string> not_copied;
    for (const auto& each : done.undone)
      not_copied.insert(each.entry.key);
    std::erase_if(work.entries, [&](const auto& each) { return not_copied.contains(each.key); });
    try {
      auto undeleted = detail::run_batches(
          work.entries, {.per_call = aws::s3_client::max_delete_keys, .operation = "DeleteObjects"},
          [this](std::span<const pending_delete> chunk) { return deleter_(chunk); });
      std::ranges::move(undeleted, std::back_inserter(done.undone));
    } catch (const std::exception& e) {  // none deleted for sure: all come back
      for (const auto& each : work.entries)
        done.undone.push_back({.entry = each, .reason = std::string("DeleteObjects: ") + e.what()});
    }
    return done;
  }

  void finish_deletes(std::vector<settler_type::outcome> outcomes) {
    for (auto& each : outcomes)
      if (each.result)
        finish_deletes(*each.result);  // run_deletes() does not throw
  }

  void finish_deletes(const deletes_done& done) {
    std::unordered_set<std::string> failed;
    for (const auto& each : done.undone) {
      ledger_.fail(each.entry.action, each.entry.key, each.reason);
      failed.insert(each.entry.key);
    }
    // Deleted or not, they may be listed again: a failed delete means the
    // request is still there and is delivered again, counted as such.
    for (const auto& each : done.requests) {
      deleting_.erase(each.key);
      finished(each.key);
      if (!failed.contains(each.key))
        receive_counts_.erase(each.key);
    }
  }

  aws::s3_client client_;
  std::string bucket_;
  s3_bucket_source_options options_;
  bool rejects_here_ = true;

  // The poll thread's (eligible() runs under the window's lock, on it too).
  detail::settlement_ledger<> ledger_;
  clock::time_point pass_started_{};
  std::unordered_set<std::string> deleting_;  // acked or rejected, delete not yet sent
  detail::s3_released_keys released_;
  std::unordered_map<std::string, std::uint32_t> receive_counts_;
  std::vector<pending_delete> pending_deletes_;
  detail::s3_request_deleter deleter_{client_, bucket_};  // the settler's
  static constexpr std::uint32_t unreadable_tries = 3;    // failed passes before a set-aside
  static constexpr std::size_t copy_threads = 8;          // rejects copied at once by a flush
  // Deletes waiting for the settler: two DeleteObjects calls' worth. When the
  // server deletes more slowly than we apply, the poll thread waits rather
  // than the backlog growing (to the 10,000 once allowed: 4-5 MB at the peak
  // of a long drain, and as many requests applied twice after a crash).
  static constexpr std::size_t max_waiting_deletes = 2 * aws::s3_client::max_delete_keys;
  std::unordered_map<std::string, std::uint32_t> read_failures_;
  std::unordered_set<std::string> skipped_;  // unreadable and not even copyable: left in place
  std::uint64_t unreadable_ = 0;
  std::uint64_t vanished_ = 0;

  // Before the window: eligible() asks them, under the window's lock.
  std::unique_ptr<detail::s3_partition_claims> claims_;
  detail::s3_partition_keys keys_;  // the poll thread's

  // Its thread uses the client and the deleter above.
  settler_type settler_{
      [this](detail::queued_entries<pending_delete> work) { return run_deletes(std::move(work)); },
      max_waiting_deletes};

  // Last: its threads use the members above and are joined before they go.
  detail::s3_object_window window_;
};

}  // namespace widget_consumer
