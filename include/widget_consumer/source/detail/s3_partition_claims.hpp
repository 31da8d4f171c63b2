#pragma once
// How several s3_bucket_source processes share one request bucket: they
// divide the 32 partitions of the widget ids between them
// (detail/s3_partitions.hpp), and a consumer hands out only the requests of
// the partitions it holds. A partition is held through the object
// "{claim prefix}partitions/NN", made with PutObject If-None-Match: * (one
// writer wins). One widget's requests all lie in one partition, so one
// consumer applies them, in key order; a request costs no call of its own.
//
// - Renewal: every claim held is rewritten at a third of the lifetime with
//   If-Match on the ETag we wrote (the body counts renewals, so each write
//   changes the ETag). A renewal refused means another consumer took the
//   partition over (we were stalled for a whole lifetime): it is dropped and
//   counted as lost. What is held, and when its requests may be handed out,
//   is kept by detail/s3_partition_table.hpp.
// - Membership: each consumer rewrites "{claim prefix}members/<id>" at a
//   third of the lifetime. Every balance round (a quarter lifetime, at most
//   2 s) counts the members written within a lifetime, by the server's clock
//   (Date minus Last-Modified: no clock of ours is compared with the
//   server's), and aims at its fair share, 32 / members rounded up.
// - Over its share, a consumer gives partitions back: it stops handing out
//   their requests, waits until those in flight are settled and deleted
//   (done()), then deletes the claim If-Match. Under its share, it claims
//   free partitions, then takes over those not renewed for a lifetime (by
//   the server's clock) with If-Match on the ETag seen; of several consumers
//   trying at once, one wins, the others get 412.
// - A partition claimed while a pass over the bucket is under way is handed
//   out from only in the next pass: the keys of it listed before were
//   skipped, and a younger key of a widget must not go before them. A pass
//   that starts after the claim lists only requests no other consumer is
//   applying: the one before gave it back only once its requests were
//   deleted, or stopped renewing it a lifetime ago.
// - A claim or member written by a process of this machine (same boot id and
//   pid namespace) whose pid no longer exists, and whose lock file here is
//   free, is taken for dead at once (detail/s3_claim_liveness.hpp): a
//   consumer restarted after a crash does not wait out the lifetime.
// - Every balance round checks the claims held (HeadObject): one whose ETag
//   is not ours was overwritten by another consumer, and one that is gone
//   was deleted behind our back (by hand, by a lifecycle rule, by
//   `aws s3 rm --recursive`). Either way it is not handed out from at once.
//   One gone is written again (If-None-Match) and, if that wins, held anew
//   (its requests from the next pass, as any new claim). Said once each, as a
//   warning (take_warnings()). A partition not listed counts as free only
//   once it has not been listed for two balance rounds (but at a consumer's
//   first round), in which its owner writes it again: renewals alone found such a loss only
//   a third of a lifetime later (20 s by default), while two consumers held
//   the partition.
// - give_back() deletes every claim (If-Match) and the member object, so a
//   graceful stop hands its partitions to the others at once, and the
//   member objects of consumers silent for a lifetime.

#include <widget_consumer/aws/s3.hpp>
#include <widget_consumer/source/detail/s3_claim_liveness.hpp>
#include <widget_consumer/source/detail/s3_claim_settings.hpp>
#include <widget_consumer/source/detail/s3_conditional_writes.hpp>
#include <widget_consumer/source/detail/s3_partition_table.hpp>
#include <widget_consumer/source/detail/s3_partitions.hpp>
#include <widget_consumer/source/detail/source_warnings.hpp>
#include <widget_consumer/source/detail/worker_threads.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include <unistd.h>

namespace widget_consumer::detail {

class s3_partition_claims {
 public:
  using clock = std::chrono::steady_clock;

  s3_partition_claims(aws::s3_client client, s3_claim_settings settings)
      : client_(std::move(client)),
        settings_(std::move(settings)),
        owner_(make_claim_owner()),
        marker_(owner_),
        node_(marker_.held() ? claim_node() : std::string()),
        table_(settings_.lifetime) {
    sweep_claim_markers(settings_.lifetime);
  }

  s3_partition_claims(const s3_partition_claims&) = delete;
  s3_partition_claims& operator=(const s3_partition_claims&) = delete;
  ~s3_partition_claims() { stop(); }

  void stop() noexcept {
    change_and_notify(
        mutex_, [this] { stopping_ = true; }, wake_, first_round_);
    threads_.join();
  }

  // concepts.hpp, startup_checking: nothing is claimed before it passes.
  void check_conditional_writes() { detail::check_conditional_writes(client_, settings_, owner_); }

  // On the poll thread before it hands anything out: starts the upkeep at
  // the first call and waits for its first round. Until a round has
  // succeeded, the last one's error is thrown (the consumer pauses and polls
  // again).
  void start() {
    std::unique_lock lock(mutex_);
    if (!started_) {
      started_ = true;
      lock.unlock();
      threads_.start(
          1, [this] { upkeep_loop(); }, [this] { stop(); });
      lock.lock();
    }
    first_round_.wait_for(lock, first_round_wait, [this] { return rounds_ != 0 || stopping_; });
    if (!succeeded_ && round_error_)
      std::rethrow_exception(std::exchange(round_error_, nullptr));
  }

  // Whether requests of partition `p` listed in a pass that started at
  // `pass_started` may be handed out now (detail/s3_partition_table.hpp).
  bool usable(std::uint32_t p, clock::time_point pass_started) {
    return table_.usable(p, pass_started, clock::now());
  }
  // usable(), and then one more request of `p` is busy until done(p).
  bool take(std::uint32_t p, clock::time_point pass_started) {
    return table_.take(p, pass_started, clock::now());
  }
  // Which holding of `p` this is, while held (s3_partition_table::tenure).
  std::optional<std::uint64_t> tenure(std::uint32_t p) { return table_.tenure(p); }
  // A request of `p` taken is settled, and deleted if it was to be.
  void done(std::uint32_t p) {
    if (table_.done(p))
      wake_.notify_all();  // its partition can go back now
  }

  // Deletes every claim held (If-Match: one taken over meanwhile stays with
  // its new owner), our member object and those of consumers silent for a
  // lifetime. Failures leave the claims to expire.
  void give_back() noexcept {
    const auto held = table_.take_all();
    run_concurrently(held.size(), call_threads, [&](std::size_t i) noexcept {
      try {
        (void)client_.delete_object_if_match(settings_.bucket, partition_key(held[i].partition),
                                             held[i].etag);
      } catch (const std::exception&) {
      }
    });
    try {
      if (member_written_)
        client_.delete_object(settings_.bucket, member_key(owner_));
      (void)live_members();
    } catch (const std::exception&) {
    }
  }

  // What the upkeep found worth a warning since the last call (claims gone
  // or overwritten), for the consumer's log.
  std::vector<std::string> take_warnings() {
    std::lock_guard lock(mutex_);
    return warnings_.take();
  }

  // Partitions taken over from a consumer that stopped renewing them.
  std::uint64_t taken_over() { return table_.taken_over_count(); }
  // Partitions another consumer took over from us (not renewed in time).
  std::uint64_t lost() { return table_.lost_count(); }

 private:
  using claim = s3_partition_table::claim;

  static constexpr std::size_t call_threads = 16;
  static constexpr std::chrono::seconds first_round_wait{30};

  std::string partition_key(std::uint32_t p) const {
    const char digits[] = {static_cast<char>('0' + p / 10), static_cast<char>('0' + p % 10), '\0'};
    return settings_.prefix + "partitions/" + digits;
  }
  std::string member_key(const std::string& owner) const {
    return settings_.prefix + "members/" + owner.substr(0, 16);
  }
  static std::optional<std::uint32_t> partition_number(std::string_view text) {
    if (text.size() != 2 || text[0] < '0' || text[0] > '9' || text[1] < '0' || text[1] > '9')
      return std::nullopt;
    const auto p = static_cast<std::uint32_t>((text[0] - '0') * 10 + (text[1] - '0'));
    return p < s3_partition_count ? std::optional(p) : std::nullopt;
  }

  std::string body(std::uint64_t renewal) const {
    return "owner " + owner_ + "\nnode " + node_ + "\npid " + std::to_string(getpid()) +
           "\nrenewal " + std::to_string(renewal) + "\n";
  }
  // Written by a process of this machine that no longer exists.
  bool owner_gone(std::string_view text) const {
    return claim_owner_gone(node_, field(text, "owner"), field(text, "node"), field(text, "pid"));
  }
  static std::string_view field(std::string_view text, std::string_view name) {
    for (std::size_t start = 0; start < text.size();) {
      const std::size_t end = std::min(text.find('\n', start), text.size());
      const auto line = text.substr(start, end - start);
      if (line.size() > name.size() && line.starts_with(name) && line[name.size()] == ' ')
        return line.substr(name.size() + 1);
      start = end + 1;
    }
    return {};
  }
  static std::uint64_t renewal_of(std::string_view text) {
    std::uint64_t value = 0;
    for (const char c : field(text, "renewal")) {
      if (c < '0' || c > '9')
        return 0;
      value = value * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return value;
  }

  // How long ago the object was last written, by the server's clock;
  // nullopt without its dates (then it never counts as expired: better
  // stuck, and visible, than applied twice).
  static std::optional<std::chrono::milliseconds> age(const aws::s3_object& object) {
    if (!object.server_time || !object.last_modified)
      return std::nullopt;
    return std::chrono::duration_cast<std::chrono::milliseconds>(*object.server_time -
                                                                 *object.last_modified);
  }

  // ---- the upkeep thread ----------------------------------------------------

  std::chrono::milliseconds tick() const {
    return std::clamp<std::chrono::milliseconds>(
        settings_.lifetime / 6, std::chrono::milliseconds(100), std::chrono::seconds(1));
  }
  std::chrono::milliseconds balance_every() const {
    return std::min<std::chrono::milliseconds>(settings_.lifetime / 4, std::chrono::seconds(2));
  }

  void upkeep_loop() {
    auto next_balance = clock::now();
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      lock.unlock();
      round(next_balance);
      lock.lock();
      wake_.wait_for(lock, tick(), [this] { return stopping_ || table_.any_releasable(); });
    }
  }

  void round(clock::time_point& next_balance) noexcept {
    std::exception_ptr error;
    try {
      heartbeat();
      renew_due();
      if (clock::now() >= next_balance) {
        check_held();
        balance();
        next_balance = clock::now() + balance_every();
      }
      release_idle();
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard lock(mutex_);
      ++rounds_;
      round_error_ = error;
      succeeded_ = succeeded_ || !error;
    }
    first_round_.notify_all();
  }

  void heartbeat() {
    const auto now = clock::now();
    if (member_written_ && now - *member_written_ < settings_.lifetime / 3)
      return;
    client_.put_object(settings_.bucket, member_key(owner_), body(0), "text/plain");
    member_written_ = now;
    marker_.touch();
  }

  void renew_due() {
    const auto due = table_.due_for_renewal(clock::now());
    run_concurrently(due.size(), call_threads, [&](std::size_t i) noexcept {
      try {
        const auto sent = clock::now();
        const auto etag = client_.put_object_if(settings_.bucket, partition_key(due[i].partition),
                                                body(due[i].renewal + 1),
                                                {.if_match = due[i].etag, .if_none_match = false});
        table_.renewed(due[i], etag, sent);
      } catch (const std::exception&) {
        // Tried again at the next tick; the table stops handing out meanwhile.
      }
    });
  }

  // See the top: a claim held that is gone, or another's now.
  void check_held() {
    const auto held = table_.held_claims();
    run_concurrently(held.size(), call_threads, [&](std::size_t i) noexcept {
      try {
        const std::string key = partition_key(held[i].partition);
        const auto found = client_.head_object(settings_.bucket, key);
        if ((found && found->etag == held[i].etag) || !table_.drop(held[i]))
          return;
        const std::string name = "the claim of partition " + key.substr(key.size() - 2);
        if (found) {
          warn(name +
               " was overwritten by another consumer; its requests are not handed out "
               "here until it is held again");
          return;
        }
        const auto sent = clock::now();
        const auto etag = client_.put_object_if(settings_.bucket, key, body(held[i].renewal + 1),
                                                {.if_match = {}, .if_none_match = true});
        if (!etag) {
          warn(name +
               " was deleted (by hand or by a lifecycle rule?), and another consumer "
               "claimed it first; its requests are not handed out here any more");
          return;
        }
        table_.hold({.partition = held[i].partition, .etag = *etag, .renewal = held[i].renewal + 1},
                    sent, clock::now());
        warn(name +
             " was deleted (by hand or by a lifecycle rule?) and is written again; its "
             "requests are handed out from the next pass");
      } catch (const std::exception&) {
        // Checked again at the next balance round.
      }
    });
  }

  void warn(std::string text) {
    std::lock_guard lock(mutex_);
    warnings_.add(std::move(text));
  }

  std::vector<std::string> list_under(const std::string& prefix) {
    std::vector<std::string> keys;
    aws::s3_list_options request;
    request.prefix = prefix;
    for (int page = 0; page < 10; ++page) {
      auto listed = client_.list_objects_v2(settings_.bucket, request);
      keys.insert(keys.end(), std::make_move_iterator(listed.keys.begin()),
                  std::make_move_iterator(listed.keys.end()));
      if (!listed.has_more())
        break;
      request.continuation_token = listed.next_continuation_token;
    }
    return keys;
  }

  // Members written within a lifetime, this one included. A member silent
  // for longer is deleted (If-Match: unless it spoke meanwhile); were its
  // owner only slow, its next heartbeat writes it again.
  std::size_t live_members() {
    std::size_t live = 1;
    const std::string self = member_key(owner_);
    for (const auto& key : list_under(settings_.prefix + "members/")) {
      if (key == self)
        continue;
      const auto member = client_.get_object_with_info(settings_.bucket, key);
      if (!member)
        continue;
      const auto written = age(*member);
      if (!owner_gone(member->body) && (!written || *written <= settings_.lifetime))
        ++live;
      else
        (void)client_.delete_object_if_match(settings_.bucket, key, member->etag);
    }
    return live;
  }

  void balance() {
    const std::size_t share = s3_fair_share(live_members());
    std::unordered_set<std::uint32_t> listed;
    const std::string under = settings_.prefix + "partitions/";
    for (const auto& key : list_under(under))
      if (const auto p = partition_number(std::string_view(key).substr(under.size())))
        listed.insert(*p);
    const std::size_t kept = table_.keep(share);
    // At the first round nothing was listed before: what is free is free.
    const auto quiet = balanced_once_ ? 2 * balance_every() : std::chrono::milliseconds(0);
    balanced_once_ = true;
    if (kept < share)
      gather(share - kept, listed, quiet);
  }

  // Claims up to `wanted` partitions: free ones first (all at once), then
  // those of others that have expired (one at a time, each read only when
  // it would have expired unless renewed since it was last read).
  void gather(std::size_t wanted, const std::unordered_set<std::uint32_t>& listed,
              std::chrono::milliseconds quiet) {
    auto [free, elsewhere] = table_.not_held(listed, clock::now(), quiet);
    // In a different order in each consumer, so that consumers starting
    // together seldom reach for the same ones.
    std::ranges::shuffle(free, random_);
    std::ranges::shuffle(elsewhere, random_);
    free.resize(std::min(free.size(), wanted));
    std::atomic<std::size_t> won{0};
    run_concurrently(free.size(), call_threads, [&](std::size_t i) noexcept {
      try {
        const auto sent = clock::now();
        if (const auto etag =
                client_.put_object_if(settings_.bucket, partition_key(free[i]), body(0),
                                      {.if_match = {}, .if_none_match = true})) {
          table_.hold({.partition = free[i], .etag = *etag, .renewal = 0}, sent, clock::now());
          ++won;
        }
      } catch (const std::exception&) {
        // Another round tries again.
      }
    });
    for (std::size_t i = 0; i < elsewhere.size() && won < wanted; ++i)
      won += take_over(elsewhere[i]) ? 1 : 0;
  }

  bool take_over(std::uint32_t p) {
    const std::string key = partition_key(p);
    const auto read = clock::now();
    const auto current = client_.get_object_with_info(settings_.bucket, key);
    if (!current)
      return false;  // given back: free at the next round
    const auto written = age(*current);
    if (field(current->body, "owner") == owner_) {
      // A retried write that met its own first attempt; written that long
      // before we asked (without the dates: as good as stale, renewed soon).
      table_.hold({.partition = p, .etag = current->etag, .renewal = renewal_of(current->body)},
                  read - written.value_or(settings_.lifetime), clock::now());
      return true;
    }
    if (!owner_gone(current->body) && (!written || *written <= settings_.lifetime)) {
      const auto left = settings_.lifetime - written.value_or(std::chrono::milliseconds(0));
      table_.look_again(p, clock::now() + std::max<std::chrono::milliseconds>(
                                              left, std::chrono::milliseconds(200)));
      return false;
    }
    const std::uint64_t renewal = renewal_of(current->body) + 1;
    const auto sent = clock::now();
    const auto etag = client_.put_object_if(settings_.bucket, key, body(renewal),
                                            {.if_match = current->etag, .if_none_match = false});
    if (!etag)
      return false;  // another consumer took it over first
    table_.hold({.partition = p, .etag = *etag, .renewal = renewal}, sent, clock::now());
    table_.taken_over();
    return true;
  }

  // Gives back the partitions over our share whose requests are all done.
  void release_idle() {
    for (const auto& idle : table_.releasable()) {
      // Refused (412): taken over meanwhile; either way it is not ours.
      (void)client_.delete_object_if_match(settings_.bucket, partition_key(idle.partition),
                                           idle.etag);
      table_.released(idle);
    }
  }

  aws::s3_client client_;
  s3_claim_settings settings_;
  std::string owner_;
  s3_claim_marker marker_;  // held while we live: a dead owner of this machine
  std::string node_;        // claim_node(), "" without a marker
  s3_partition_table table_;
  std::mt19937_64 random_{std::random_device{}()};
  std::optional<clock::time_point> member_written_;  // the upkeep thread's
  bool balanced_once_ = false;                       // the upkeep thread's

  std::mutex mutex_;                     // around what follows
  std::condition_variable wake_;         // the upkeep thread waits
  std::condition_variable first_round_;  // start() waits
  bool stopping_ = false;
  bool started_ = false;
  std::uint64_t rounds_ = 0;
  bool succeeded_ = false;
  std::exception_ptr round_error_;
  source_warnings warnings_;

  worker_threads threads_;  // last: joined before the rest goes
};

}  // namespace widget_consumer::detail
