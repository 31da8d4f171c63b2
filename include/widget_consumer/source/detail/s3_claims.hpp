#pragma once
// The claims that let several s3_bucket_source processes share one request
// bucket: before a consumer hands out the request under key K it owns the
// object "{claim prefix}K", made with PutObject If-None-Match: * (only one
// writer can create it). The body names the owner and counts its renewals,
// so every renewal changes the ETag.
//
// - The GET of the request follows its claim, never precedes it: a body read
//   before the claim could be of a request another consumer has applied and
//   deleted since, then given back its claim.
// - A claim that exists already is someone else's (or ours, when a retried
//   PutObject met its own first attempt: the body says whose). Once it has not
//   been renewed for a lifetime, as the server's own clock tells (the Date of
//   the answer minus the claim's Last-Modified: no clock of ours is compared
//   with the server's), its owner is taken for dead and the claim is taken
//   over with PutObject If-Match on the ETag seen. Of several consumers
//   trying at once, one wins; the others get 412.
// - A thread renews every claim held at a third of the lifetime (If-Match on
//   the ETag we wrote). A renewal refused means another consumer took the
//   claim over (we were stalled for a whole lifetime): the claim is dropped
//   and counted as lost.
// - Once the request object is deleted, its claim guards nothing: it is
//   deleted with the next DeleteObjects, without a condition.
// - give_back() deletes every claim still held (If-Match), so a graceful
//   stop hands its unfinished requests to the others at once.
// - The same thread sweeps, at start and every quarter lifetime, claims
//   whose owner stopped renewing them and whose request is gone (a consumer
//   killed between the two deletes): If-Match on the ETag seen, so a claim
//   renewed meanwhile stays. A claim is read only once it has been listed
//   for a lifetime.
// - probe() checks at start-up that the server refuses a second PutObject
//   If-None-Match: * and a PutObject If-Match with a stale ETag; one that
//   does not would let two consumers apply one request.

#include <widget_consumer/aws/access_check.hpp>
#include <widget_consumer/aws/s3.hpp>
#include <widget_consumer/source/detail/s3_claim_settings.hpp>
#include <widget_consumer/source/detail/worker_threads.hpp>
#include <widget_consumer/unrecoverable_error.hpp>

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
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace widget_consumer::detail {

class s3_claims {
 public:
  using clock = std::chrono::steady_clock;

  s3_claims(aws::s3_client client, s3_claim_settings settings)
      : client_(std::move(client)), settings_(std::move(settings)), owner_(make_claim_owner()) {
    threads_.start(
        1, [this] { upkeep_loop(); }, [this] { stop(); });
  }

  s3_claims(const s3_claims&) = delete;
  s3_claims& operator=(const s3_claims&) = delete;
  ~s3_claims() { stop(); }

  void stop() noexcept {
    change_and_notify(
        mutex_, [this] { stopping_ = true; }, wake_);
    threads_.join();
  }

  // The start-up check (concepts.hpp, startup_checking): a server that lets
  // a second If-None-Match: * write through would let two consumers apply
  // one request, so it is refused with unrecoverable_error before anything
  // is claimed. Errors retrying cannot fix become unrecoverable_error too;
  // others pass as they are (the consumer warns and starts).
  void check_conditional_writes(const aws::client_config& config) {
    const std::string where = aws::s3_resource(settings_.bucket, settings_.prefix) + " (endpoint " +
                              config.endpoint + ")";
    std::string failure;
    aws::with_access_check(
        config, "cannot write claims under " + where,
        "that these credentials may put and delete objects under the claim prefix",
        [&] { failure = probe(); });
    if (!failure.empty())
      throw unrecoverable_error(
          "the S3 server of " + where + " does not honour conditional writes (" + failure +
          "), so several consumers on this bucket could apply one request twice; if this "
          "consumer is alone on the bucket, run it with claims off (--single-consumer)");
  }

  // What the server let through that it must refuse, or "".
  std::string probe() {
    const std::string key = settings_.prefix + ".probe-" + owner_.substr(0, 16);
    const auto first = client_.put_object_if(settings_.bucket, key, "probe",
                                             {.if_match = {}, .if_none_match = true});
    std::string failure;
    if (!first) {
      failure = "a PutObject with If-None-Match: * on a new key was refused";
    } else if (client_.put_object_if(settings_.bucket, key, "probe 2",
                                     {.if_match = {}, .if_none_match = true})) {
      failure = "a second PutObject with If-None-Match: * on one key succeeded";
    } else if (client_.put_object_if(settings_.bucket, key, "probe 3",
                                     {.if_match = "\"0\"", .if_none_match = false})) {
      failure = "a PutObject with If-Match on a stale ETag succeeded";
    }
    client_.delete_object(settings_.bucket, key);
    return failure;
  }

  // From the fetcher threads: true when the claim on `key` is ours (held
  // already, made now, or taken over from a dead owner). A claim held
  // elsewhere is read only when it would have expired: seeing it held costs
  // one call, or none for a moment after.
  bool claim(const std::string& key) {
    {
      std::lock_guard lock(mutex_);
      if (held_.contains(key))
        return true;
    }
    if (recently_held_elsewhere(key))
      return false;
    const std::string claim_key = settings_.prefix + key;
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (const auto etag = client_.put_object_if(settings_.bucket, claim_key, body(0),
                                                  {.if_match = {}, .if_none_match = true}))
        return hold(key, *etag, 0);
      if (!time_to_look(key))
        return false;
      const auto current = client_.get_object_with_info(settings_.bucket, claim_key);
      if (!current)
        continue;  // given back meanwhile: try again
      if (owner_of(current->body) == owner_)
        return hold(key, current->etag, renewal_of(current->body));
      if (!expired(*current)) {
        look_again(key, *current);
        return false;
      }
      const std::uint64_t renewal = renewal_of(current->body) + 1;
      const auto etag = client_.put_object_if(settings_.bucket, claim_key, body(renewal),
                                              {.if_match = current->etag, .if_none_match = false});
      if (!etag)
        return false;  // another consumer took it over first
      std::lock_guard lock(mutex_);
      ++taken_over_;
      look_after_.erase(key);
      ask_after_.erase(key);
      held_[key] = {.etag = *etag, .renewal = renewal, .written = clock::now()};
      return true;
    }
    return false;
  }

  // The request under `key` is gone (deleted by us, or vanished): its claim
  // is deleted without a condition by the next DeleteObjects.
  void request_gone(const std::string& key) {
    std::lock_guard lock(mutex_);
    if (held_.erase(key) != 0)
      gone_.push_back(settings_.prefix + key);
  }

  bool has_gone() {
    std::lock_guard lock(mutex_);
    return !gone_.empty();
  }

  // The claim keys to delete with the next DeleteObjects.
  std::vector<std::string> take_gone() {
    std::lock_guard lock(mutex_);
    return std::exchange(gone_, {});
  }

  // Deletes every claim: those of requests that are gone as they are, the
  // others If-Match (a claim taken over meanwhile stays with its new owner).
  // Failures are left to the sweep of whoever sees the claims later.
  void give_back() noexcept {
    std::unordered_map<std::string, held_claim> held;
    std::vector<std::string> gone;
    {
      std::lock_guard lock(mutex_);
      held = std::exchange(held_, {});
      gone = std::exchange(gone_, {});
    }
    try {
      if (!gone.empty())
        (void)client_.delete_objects(settings_.bucket, gone);
    } catch (const std::exception&) {
    }
    for (const auto& [key, claim] : held) {
      try {
        (void)client_.delete_object_if_match(settings_.bucket, settings_.prefix + key, claim.etag);
      } catch (const std::exception&) {
      }
    }
  }

  bool holds(const std::string& key) {
    std::lock_guard lock(mutex_);
    return held_.contains(key);
  }
  std::size_t held() {
    std::lock_guard lock(mutex_);
    return held_.size();
  }
  // Claims taken over from an owner that stopped renewing them.
  std::uint64_t taken_over() {
    std::lock_guard lock(mutex_);
    return taken_over_;
  }
  // Claims another consumer took over from us (we did not renew in time).
  std::uint64_t lost() {
    std::lock_guard lock(mutex_);
    return lost_;
  }
  // Claims of other consumers under the prefix at the last sweep: while
  // there are, a dead owner's may yet need taking over or sweeping.
  bool others_listed() {
    std::lock_guard lock(mutex_);
    return others_listed_ != 0;
  }
  // Stale claims of gone requests deleted by the sweep.
  std::uint64_t swept() {
    std::lock_guard lock(mutex_);
    return swept_;
  }
  const std::string& owner() const noexcept { return owner_; }

 private:
  struct held_claim {
    std::string etag;
    std::uint64_t renewal = 0;
    clock::time_point written;
  };

  bool hold(const std::string& key, const std::string& etag, std::uint64_t renewal) {
    std::lock_guard lock(mutex_);
    look_after_.erase(key);
    ask_after_.erase(key);
    held_[key] = {.etag = etag, .renewal = renewal, .written = clock::now()};
    return true;
  }

  // Seen held elsewhere less than a moment ago: not asked again yet, so a
  // consumer going through keys others hold does not flood the server with
  // claims bound to fail. A moment, not a lifetime: a claim given back at a
  // graceful stop is taken soon.
  bool recently_held_elsewhere(const std::string& key) {
    std::lock_guard lock(mutex_);
    const auto found = ask_after_.find(key);
    return found != ask_after_.end() && clock::now() < found->second;
  }

  // Whether to read the claim on `key`: a lifetime after it was first seen
  // held, then when it would have expired unless renewed (by our steady
  // clock, which needs no agreement with the server's; look_again() sets
  // when). Not at first sight: a consumer starting among others would read
  // every claim in the bucket. A claim of our own that we do not know of (a
  // retried PutObject that met its first attempt) is found at that look.
  bool time_to_look(const std::string& key) {
    const auto now = clock::now();
    std::lock_guard lock(mutex_);
    ask_after_[key] =
        now + std::min<std::chrono::milliseconds>(settings_.lifetime / 4, std::chrono::seconds(5));
    const auto [found, first] = look_after_.try_emplace(key, now + settings_.lifetime);
    return !first && found->second <= now;
  }

  // Alive: look again when it would expire if its owner stopped renewing now.
  void look_again(const std::string& key, const aws::s3_object& claim) {
    auto wait = settings_.lifetime;
    if (claim.server_time && claim.last_modified)
      wait -= std::chrono::duration_cast<std::chrono::milliseconds>(*claim.server_time -
                                                                    *claim.last_modified);
    std::lock_guard lock(mutex_);
    look_after_[key] =
        clock::now() + std::max<std::chrono::milliseconds>(wait, std::chrono::milliseconds(500));
  }

  std::string body(std::uint64_t renewal) const {
    return "owner " + owner_ + "\nrenewal " + std::to_string(renewal) + "\n";
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
  static std::string owner_of(std::string_view text) { return std::string(field(text, "owner")); }
  static std::uint64_t renewal_of(std::string_view text) {
    std::uint64_t value = 0;
    for (const char c : field(text, "renewal")) {
      if (c < '0' || c > '9')
        return 0;
      value = value * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return value;
  }

  // Not renewed for a lifetime, by the server's clock. Without its dates a
  // claim never expires: better stuck (and visible) than applied twice.
  bool expired(const aws::s3_object& claim) const {
    return claim.server_time && claim.last_modified &&
           *claim.server_time - *claim.last_modified > settings_.lifetime;
  }

  // The upkeep thread: renewals at a sixth of the lifetime's pace (a claim is
  // renewed once a third of it has passed), the sweep soon after the start
  // and then every quarter lifetime.
  void upkeep_loop() {
    const auto tick =
        std::max<std::chrono::milliseconds>(settings_.lifetime / 6, std::chrono::milliseconds(100));
    auto next_sweep = clock::now();  // first at start: a predecessor may have died
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait_for(lock, tick, [this] { return stopping_; });
      if (stopping_)
        return;
      lock.unlock();
      renew_due();
      if (clock::now() >= next_sweep) {
        forget_old_looks();
        sweep();
        next_sweep = clock::now() + settings_.lifetime / 4;
      }
      lock.lock();
    }
  }

  // A key not tried for two lifetimes is gone or taken: forget it.
  void forget_old_looks() {
    const auto limit = clock::now() - 2 * settings_.lifetime;
    std::lock_guard lock(mutex_);
    std::erase_if(look_after_, [&](const auto& entry) { return entry.second < limit; });
    std::erase_if(ask_after_, [&](const auto& entry) { return entry.second < limit; });
  }

  void renew_due() {
    std::vector<std::pair<std::string, held_claim>> due;
    {
      std::lock_guard lock(mutex_);
      const auto limit = clock::now() - settings_.lifetime / 3;
      for (const auto& [key, claim] : held_)
        if (claim.written <= limit)
          due.emplace_back(key, claim);
    }
    // A consumer holds about read_ahead + concurrency claims: renewed one at
    // a time, a slow server could make the last one late.
    std::atomic<std::size_t> next{0};
    auto work = [&]() noexcept {
      for (std::size_t i = next++; i < due.size(); i = next++)
        renew(due[i].first, due[i].second);
    };
    std::vector<std::thread> helpers;
    try {
      for (std::size_t i = 1; i < std::min<std::size_t>(renewal_threads, due.size()); ++i)
        helpers.emplace_back(work);
    } catch (const std::system_error&) {
      // Fewer threads: the work is shared all the same.
    }
    work();
    for (auto& helper : helpers)
      helper.join();
  }

  void renew(const std::string& key, const held_claim& claim) noexcept {
    try {
      const auto etag =
          client_.put_object_if(settings_.bucket, settings_.prefix + key, body(claim.renewal + 1),
                                {.if_match = claim.etag, .if_none_match = false});
      std::lock_guard lock(mutex_);
      const auto found = held_.find(key);
      if (found == held_.end() || found->second.etag != claim.etag)
        return;  // gone or given back meanwhile
      if (!etag) {
        held_.erase(found);
        ++lost_;
        return;
      }
      found->second = {.etag = *etag, .renewal = claim.renewal + 1, .written = clock::now()};
    } catch (const std::exception&) {
      // Tried again at the next tick.
    }
  }

  // Lists the claim prefix; a claim of another consumer listed for a
  // lifetime (by our clock) is read, and deleted if expired with its request
  // gone. What stays listed counts as others' claims (others_listed()).
  void sweep() noexcept {
    std::unordered_map<std::string, clock::time_point> seen;
    std::size_t others = 0;
    try {
      aws::s3_list_options request;
      request.prefix = settings_.prefix;
      for (int page = 0; page < 10; ++page) {
        const auto listed = client_.list_objects_v2(settings_.bucket, request);
        for (const auto& claim_key : listed.keys)
          others += sweep_one(claim_key, seen) ? 1 : 0;
        if (!listed.has_more())
          break;
        request.continuation_token = listed.next_continuation_token;
      }
    } catch (const std::exception&) {
      return;  // the next sweep tries again
    }
    std::lock_guard lock(mutex_);
    sweep_seen_ = std::move(seen);
    others_listed_ = others;
  }

  // True when the claim counts as another consumer's: not ours, and listed
  // by the sweep before too (ours come and go between two sweeps), and not
  // swept now.
  bool sweep_one(const std::string& claim_key,
                 std::unordered_map<std::string, clock::time_point>& seen) {
    const std::string key = claim_key.substr(settings_.prefix.size());
    if (key.empty() || holds(key))
      return false;
    const auto now = clock::now();
    std::optional<clock::time_point> first;
    {
      std::lock_guard lock(mutex_);
      if (const auto found = sweep_seen_.find(claim_key); found != sweep_seen_.end())
        first = found->second;
    }
    seen.emplace(claim_key, first.value_or(now));
    if (!first)
      return false;
    if (now - *first < settings_.lifetime)
      return true;
    const auto claim = client_.get_object_with_info(settings_.bucket, claim_key);
    if (!claim)
      return false;
    if (!expired(*claim) || client_.head_object(settings_.bucket, key))
      return true;  // alive, or its request is still there to be taken over
    if (!client_.delete_object_if_match(settings_.bucket, claim_key, claim->etag))
      return true;
    std::lock_guard lock(mutex_);
    ++swept_;
    return false;
  }

  aws::s3_client client_;
  s3_claim_settings settings_;
  std::string owner_;

  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::unordered_map<std::string, held_claim> held_;  // by request key
  std::vector<std::string> gone_;                     // claim keys
  // Claim keys of others listed by the sweeps, since when (our clock).
  std::unordered_map<std::string, clock::time_point> sweep_seen_;
  std::size_t others_listed_ = 0;
  // Keys seen held elsewhere: when to read their claim (see claim()).
  std::unordered_map<std::string, clock::time_point> look_after_;
  std::unordered_map<std::string, clock::time_point> ask_after_;
  std::uint64_t taken_over_ = 0;
  std::uint64_t lost_ = 0;
  std::uint64_t swept_ = 0;
  static constexpr std::size_t renewal_threads = 8;

  worker_threads threads_;  // last: joined before the rest goes
};

}  // namespace widget_consumer::detail
