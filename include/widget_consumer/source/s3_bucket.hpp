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
//   in `deleting_` (not listed again) until the poll thread takes its
//   outcome, and its claim goes with a DeleteObjects after that.
// - Settling a key that is not in flight is reported by flush(), never
//   thrown (concepts.hpp, the settlement contract).
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
// - Several consumers share a bucket through claims (detail/s3_claims.hpp):
//   a key is handed out only once this process holds "{claim_prefix}{key}",
//   made with a conditional PutObject before the GET of its body. A key
//   claimed elsewhere is skipped, and a key of ours waits while an older key
//   of its widget is claimed elsewhere (detail/s3_claim_order.hpp). A claim
//   is deleted with the DeleteObjects after the one that deleted its
//   request; the destructor gives back the claims still held. check_ready()
//   refuses a server that does not honour conditional writes. `claims =
//   false` is for a consumer that is alone on its bucket (or a server
//   without conditional writes): no claim is made or read.

#include <widget_consumer/concepts.hpp>

#include <widget_consumer/aws/access_check.hpp>
#include <widget_consumer/aws/client.hpp>
#include <widget_consumer/aws/error.hpp>
#include <widget_consumer/aws/s3.hpp>
#include <widget_consumer/source/detail/background_settler.hpp>
#include <widget_consumer/source/detail/batch_runner.hpp>
#include <widget_consumer/source/detail/s3_claim_order.hpp>
#include <widget_consumer/source/detail/s3_claims.hpp>
#include <widget_consumer/source/detail/s3_object_window.hpp>
#include <widget_consumer/source/detail/settlement_ledger.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
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

struct s3_bucket_source_options {
  std::string prefix;                         // only keys under it are requests; "" = all
  std::string rejected_prefix = "rejected/";  // where reject() puts a request and its reason
  std::string rejected_bucket;                // "" = the request bucket
  std::size_t fetch_concurrency = 8;          // GetObject threads, 1..64
  std::size_t read_ahead = 64;                // bodies fetched ahead of poll(), >= 1
  int page_size = 1000;                       // ListObjectsV2 max-keys, 1..1000
  // Several consumers on one bucket (see the top); false: this one is alone.
  bool claims = true;
  std::string claim_prefix = "claims/";  // in the request bucket; never requests
  // Unrenewed for this long, a claim's owner is taken for dead (>= 1 s).
  std::chrono::milliseconds claim_lifetime{std::chrono::seconds(60)};
};

class s3_bucket_source {
 public:
  using ticket_type = std::string;  // the key
  using clock = std::chrono::steady_clock;

  s3_bucket_source(aws::s3_client client, std::string bucket, s3_bucket_source_options options = {})
      : client_(std::move(client)),
        bucket_(std::move(bucket)),
        options_(checked(bucket_, std::move(options))),
        rejects_here_(options_.rejected_bucket == bucket_),
        claims_(options_.claims
                    ? std::make_unique<detail::s3_claims>(
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
            [this](const std::string& key) { return client_.get_object(bucket_, key); },
            claim_function(), [this](const std::string& key) { return order_.knows(key); }) {}

  s3_bucket_source(aws::client_config config, std::string bucket,
                   s3_bucket_source_options options = {})
      : s3_bucket_source(aws::s3_client(std::move(config)), std::move(bucket), std::move(options)) {
  }

  s3_bucket_source(const s3_bucket_source&) = delete;
  s3_bucket_source& operator=(const s3_bucket_source&) = delete;

  // Unflushed acks are not sent: those requests are delivered again. The
  // claims still held are given back, so other consumers need not wait for
  // them to expire.
  ~s3_bucket_source() {
    finish_deletes(settler_.wait());
    window_.stop();
    if (claims_) {
      claims_->stop();
      claims_->give_back();
    }
  }

  // Before the first poll (concepts.hpp, startup_checking): one key is listed,
  // which needs the bucket to exist and these credentials to be let in.
  void check_ready() {
    aws::s3_list_options one_key;
    one_key.prefix = options_.prefix;
    one_key.max_keys = 1;
    list_checked(one_key);
    if (claims_)
      claims_->check_conditional_writes(client_.service().config());
  }

  // Never waits for new objects (S3 has no long poll), only for the oldest
  // listed body to arrive.
  std::vector<received_request<ticket_type>> poll(std::chrono::milliseconds, std::size_t max) {
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
      if (item->error && item->claim == detail::s3_claim_state::elsewhere &&
          unreadable_reason(item->error)) {
        window_.pop(eligible);  // its owner sets it aside; it names no widget to wait for
        continue;
      }
      if (item->error) {
        if (!batch.empty())
          return batch;  // hand out what came before it; the next poll throws
        if (const auto why = unreadable_reason(item->error);
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
      if (item->body_skipped) {
        order_.held_elsewhere(item->key, nullptr);
        continue;
      }
      if (!item->body) {
        ++vanished_;
        receive_counts_.erase(item->key);
        if (claims_)
          claims_->request_gone(item->key);
        continue;
      }
      if (item->claim == detail::s3_claim_state::elsewhere) {
        order_.held_elsewhere(item->key, &*item->body);
        continue;
      }
      if (claims_ && order_.must_wait(item->key, &*item->body))
        continue;  // keeps its claim; a later pass hands it out
      if (claims_ && !claims_->holds(item->key))
        continue;  // taken over since (renewed too late): its new owner has it
      read_failures_.erase(item->key);
      ledger_.hand_out(item->key);
      batch.push_back({.body = std::move(*item->body),
                       .ticket = item->key,
                       .name = item->key,
                       .receive_count = ++receive_counts_[item->key]});
    }
    return batch;
  }

  void ack(const ticket_type& key) {
    if (ledger_.settle(key, settle_action::ack))
      queue_delete(key, settle_action::ack);
  }

  void release(const ticket_type& key, std::chrono::milliseconds delay) {
    if (ledger_.settle(key, settle_action::release))
      delayed_[key] = clock::now() + delay;
  }

  void reject(const ticket_type& key, std::string_view reason) {
    if (!ledger_.settle(key, settle_action::reject))
      return;
    const std::string target = options_.rejected_prefix + key;
    try {
      client_.put_object(options_.rejected_bucket, target + ".reason", std::string(reason),
                         "text/plain; charset=utf-8");
      client_.copy_object(bucket_, key, options_.rejected_bucket, target);
    } catch (const std::exception& e) {
      // Not in flight any more, so it is listed and rejected again.
      ledger_.fail(
          settle_action::reject, key,
          "cannot copy to " + aws::s3_resource(options_.rejected_bucket, target) + ": " + e.what());
      return;
    }
    queue_delete(key, settle_action::reject);
  }

  std::vector<settle_failure> flush() {
    finish_deletes(settler_.wait());
    if (!pending_deletes_.empty() || (claims_ && claims_->has_gone()))
      delete_pending();
    // Nothing in flight (the end of a run, or a lull): the claims just freed
    // go now rather than with a next flush that may not come.
    if (claims_ && ledger_.size() == 0 && claims_->has_gone())
      delete_pending();
    return ledger_.take_failures();
  }

  // As flush(), but the DeleteObjects run on the settler thread while this
  // returns: their failures come with a later flush. With nothing in flight
  // there is nothing to go on with meanwhile, so it waits, as flush() does.
  std::vector<settle_failure> begin_flush() {
    if (ledger_.size() == 0)
      return flush();
    finish_deletes(settler_.take());
    if (!pending_deletes_.empty() || (claims_ && claims_->has_gone()))
      settler_.hand(take_pending());
    return ledger_.take_failures();
  }

  bool ordered() const noexcept { return true; }
  // A released key is listed again by this source only (concepts.hpp).
  bool releases_locally() const noexcept { return true; }

  // Listed and not delivered yet (being fetched, waiting behind the oldest,
  // on a page not taken yet, or a listing under way), or released and not
  // yet due: the consumer does not count such time as idle.
  // With claims, keys and claims of other consumers count too: their owner
  // may die, and its claims then come to whoever is still running (taken
  // over, or swept when their request is gone).
  bool has_pending() {
    return window_.has_pending() || !delayed_.empty() || order_.others_at_work() ||
           (claims_ && claims_->others_listed());
  }

  const std::string& bucket() const noexcept { return bucket_; }
  const s3_bucket_source_options& options() const noexcept { return options_; }
  // Listed keys that were gone when their body was fetched.
  std::uint64_t vanished() const noexcept { return vanished_; }
  // Delivered and not yet settled.
  std::size_t in_flight() const noexcept { return ledger_.size(); }
  // Objects set aside because they could not be read (see the top).
  std::uint64_t unreadable() const noexcept { return unreadable_; }
  // Claims taken over from consumers that stopped renewing them, and claims
  // of ours another consumer took over (0 without claims).
  std::uint64_t claims_taken_over() const { return claims_ ? claims_->taken_over() : 0; }
  std::uint64_t claims_lost() const { return claims_ ? claims_->lost() : 0; }

 private:
  struct pending_delete {
    std::string key;
    settle_action action = settle_action::ack;
    bool claim = false;  // a claim whose request is gone: nothing to report
  };

  // What one run of the settler did: the requests it was to delete, and
  // those (requests or claims) still there.
  struct deletes_done {
    std::vector<pending_delete> requests;
    std::vector<detail::batch_undone<pending_delete>> undone;
  };
  using settler_type =
      detail::background_settler<detail::queued_entries<pending_delete>, deletes_done>;

  static s3_bucket_source_options checked(const std::string& bucket,
                                          s3_bucket_source_options options) {
    if (bucket.empty())
      throw std::invalid_argument("s3_bucket_source: the request bucket name is empty");
    if (options.page_size < 1 || options.page_size > 1000)
      throw std::invalid_argument("s3_bucket_source: page_size must be 1..1000");
    if (options.fetch_concurrency < 1 || options.fetch_concurrency > 64)
      throw std::invalid_argument("s3_bucket_source: fetch_concurrency must be 1..64");
    options.read_ahead = std::max<std::size_t>(options.read_ahead, 1);
    if (options.rejected_bucket.empty())
      options.rejected_bucket = bucket;
    const bool rejects_here = options.rejected_bucket == bucket;
    if (rejects_here && options.rejected_prefix.empty())
      throw std::invalid_argument(
          "s3_bucket_source: rejected requests in the request bucket need a rejected prefix");
    if (rejects_here && options.prefix.starts_with(options.rejected_prefix))
      throw std::invalid_argument(
          "s3_bucket_source: the request prefix is inside the rejected one");
    if (options.claims)
      detail::check_claim_options(options.prefix, options.claim_prefix,
                                  rejects_here ? options.rejected_prefix : std::string(),
                                  options.claim_lifetime);
    return options;
  }

  detail::s3_object_window::claim_function claim_function() {
    if (!claims_)
      return {};
    return [this](const std::string& key) { return claims_->claim(key); };
  }

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
    // A release that was due before the last pass began and was not seen in
    // it is gone from the bucket: forget it.
    if (window_.start_pass()) {
      std::erase_if(delayed_, [&](const auto& entry) {
        if (entry.second >= pass_started_)
          return false;
        receive_counts_.erase(entry.first);
        if (claims_)
          claims_->request_gone(entry.first);
        return true;
      });
    }
    order_.start_pass();
    pass_started_ = now;
  }

  // Called by the window under its lock, on the poll thread.
  bool eligible(const std::string& key) {
    if (key.empty() || key.ends_with('/'))
      return false;
    if (rejects_here_ && key.starts_with(options_.rejected_prefix))
      return false;
    if (claims_ && key.starts_with(options_.claim_prefix))
      return false;
    if (ledger_.in_flight(key) || deleting_.contains(key) || skipped_.contains(key))
      return false;
    if (const auto due = delayed_.find(key); due != delayed_.end()) {
      if (due->second > clock::now())
        return false;
      delayed_.erase(due);
    }
    return true;
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

  // On the poll thread: a rare event, so poll() may take its time.
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
      ledger_.fail(settle_action::reject, key, in_place);
    }
  }

  // ---- settling (poll thread, but delete_keys and run_deletes: settler) ------

  void queue_delete(const std::string& key, settle_action action) {
    deleting_.insert(key);
    pending_deletes_.push_back({.key = key, .action = action});
  }

  static bool batch_delete_unsupported(const aws::service_error& error) {
    return error.status() == 501 || error.status() == 405 || error.code() == "NotImplemented";
  }

  // One call of the batch runner: DeleteObjects, or each key on its own when
  // the batch call fails as a whole or is not asked (see the top).
  std::vector<detail::batch_entry_failure> delete_keys(std::span<const pending_delete> chunk) {
    std::vector<detail::batch_entry_failure> failed;
    std::unordered_map<std::string, std::size_t> index;
    std::vector<std::string> keys;
    for (std::size_t i = 0; i < chunk.size(); ++i) {
      index.emplace(chunk[i].key, i);
      keys.push_back(chunk[i].key);
    }
    bool batch_refused = false;  // the server answered DeleteObjects with an error
    if (batch_delete_ && clock::now() >= batch_delete_paused_until_) {
      try {
        for (const auto& failure : client_.delete_objects(bucket_, keys))
          if (const auto found = index.find(failure.key); found != index.end())
            failed.push_back({.index = found->second,
                              .reason = "DeleteObjects: " + failure.code + ": " + failure.message});
        return failed;
      } catch (const aws::service_error& e) {
        batch_delete_ = !batch_delete_unsupported(e);
        batch_refused = true;
      } catch (const std::exception&) {
        // Whatever it was, the single deletes below will say it per key.
      }
    }
    for (std::size_t i = 0; i < chunk.size(); ++i) {
      try {
        client_.delete_object(bucket_, chunk[i].key);
      } catch (const std::exception& e) {
        failed.push_back({.index = i, .reason = e.what()});
      }
    }
    // DeleteObjects refused while every key deletes fine on its own: a server
    // that cannot do the batch for these keys (some S3-compatible servers
    // answer 500 to a key that looks like a number, i.e. every producer key).
    // Asking it again at each flush costs the call and its retries every time
    // (seconds per flush): delete one by one for a while, then try the batch
    // again.
    if (batch_refused && failed.empty())
      batch_delete_paused_until_ = clock::now() + batch_delete_pause;
    return failed;
  }

  void delete_pending() {
    settler_.hand(take_pending());
    finish_deletes(settler_.wait());
  }

  detail::queued_entries<pending_delete> take_pending() {
    std::vector<pending_delete> batch = std::exchange(pending_deletes_, {});
    // The claims of requests deleted by an earlier call ride along: their
    // requests are gone for sure, so no condition is needed.
    if (claims_)
      for (auto& claim : claims_->take_gone())
        batch.push_back({.key = std::move(claim), .action = settle_action::ack, .claim = true});
    return {.entries = std::move(batch)};
  }

  // On the settler thread: only the client and delete_keys()' own state.
  deletes_done run_deletes(detail::queued_entries<pending_delete> work) {
    deletes_done done;
    for (const auto& each : work.entries)
      if (!each.claim)
        done.requests.push_back(each);
    try {
      done.undone = detail::run_batches(
          std::move(work.entries),
          {.per_call = aws::s3_client::max_delete_keys, .operation = "DeleteObjects"},
          [this](std::span<const pending_delete> chunk) { return delete_keys(chunk); });
    } catch (const std::exception& e) {  // none deleted for sure: all come back
      done.undone.clear();
      for (const auto& each : done.requests)
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
      if (each.entry.claim)
        continue;  // left to the sweep (detail/s3_claims.hpp)
      ledger_.fail(each.entry.action, each.entry.key, each.reason);
      failed.insert(each.entry.key);
    }
    // Deleted or not, they may be listed again: a failed delete means the
    // request is still there and is delivered again, counted as such.
    for (const auto& each : done.requests) {
      deleting_.erase(each.key);
      if (failed.contains(each.key))
        continue;
      receive_counts_.erase(each.key);
      if (claims_)
        claims_->request_gone(each.key);
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
  std::unordered_map<std::string, clock::time_point> delayed_;
  std::unordered_map<std::string, std::uint32_t> receive_counts_;
  std::vector<pending_delete> pending_deletes_;
  bool batch_delete_ = true;
  static constexpr std::chrono::seconds batch_delete_pause{60};
  clock::time_point batch_delete_paused_until_{};
  static constexpr std::uint32_t unreadable_tries = 3;  // failed passes before a set-aside
  std::unordered_map<std::string, std::uint32_t> read_failures_;
  std::unordered_set<std::string> skipped_;  // unreadable and not even copyable: left in place
  std::uint64_t unreadable_ = 0;
  std::uint64_t vanished_ = 0;

  // Before the window: its fetchers claim.
  std::unique_ptr<detail::s3_claims> claims_;
  detail::s3_claim_order order_;  // the poll thread's; the fetchers ask knows()

  // Its thread uses the client and delete_keys()' state above.
  settler_type settler_{
      [this](detail::queued_entries<pending_delete> work) { return run_deletes(std::move(work)); }};

  // Last: its threads use the members above and are joined before they go.
  detail::s3_object_window window_;
};

}  // namespace widget_consumer
