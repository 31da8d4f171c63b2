#pragma once
// The partitions one consumer holds (detail/s3_partition_claims.hpp) and
// the rules of handing out their requests, apart from the calls that claim
// them: bookkeeping under one lock, so the rules can be tested without a
// server. Times come from the caller.
//
// - usable(): a partition's requests are handed out only while it is held,
//   not being given back, claimed before the pass that listed them began,
//   and renewed within three quarters of the lifetime (by our clock: a
//   consumer that cannot renew stops before another may take it over).
// - take()/done(): requests handed out and not yet settled and deleted; a
//   partition over our share is given back only once it has none.
// - tenure(): which holding of a partition this is. Each claim made, adopted
//   or taken over starts a new one, so a request released under one tenure
//   is known to have gone elsewhere (lost, given back, or lost and regained)
//   when the tenure is no longer the same.

#include <widget_consumer/source/detail/s3_partitions.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

namespace widget_consumer::detail {

class s3_partition_table {
 public:
  using clock = std::chrono::steady_clock;

  struct claim {
    std::uint32_t partition = 0;
    std::string etag;
    std::uint64_t renewal = 0;
  };

  explicit s3_partition_table(std::chrono::milliseconds lifetime) : lifetime_(lifetime) {}

  bool usable(std::uint32_t p, clock::time_point pass_started, clock::time_point now) {
    std::lock_guard lock(mutex_);
    return usable_locked(parts_.at(p), pass_started, now);
  }

  // usable(), and then one more request of `p` is busy until done(p).
  bool take(std::uint32_t p, clock::time_point pass_started, clock::time_point now) {
    std::lock_guard lock(mutex_);
    auto& part = parts_.at(p);
    if (!usable_locked(part, pass_started, now))
      return false;
    ++part.busy;
    return true;
  }

  // True when `p` is being given back and has nothing busy any more.
  bool done(std::uint32_t p) {
    std::lock_guard lock(mutex_);
    auto& part = parts_.at(p);
    part.busy -= part.busy != 0 ? 1 : 0;
    return part.busy == 0 && part.held && part.releasing;
  }

  // Claimed (made, adopted or taken over) by a write sent at `sent` and
  // answered at `now`: its requests are handed out from the next pass that
  // starts after `now` (after the claim took effect), and it counts as
  // written at `sent`, so that a slow answer makes it stale sooner, never
  // later, than the others judge by the server's Last-Modified.
  void hold(const claim& made, clock::time_point sent, clock::time_point now) {
    std::lock_guard lock(mutex_);
    auto& part = parts_.at(made.partition);
    part.held = true;
    part.releasing = false;
    part.etag = made.etag;
    part.renewal = made.renewal;
    part.acquired = now;
    part.written = sent;
    part.tenure = ++tenures_;
    part.free_since.reset();
  }

  // The tenure of `p` while it is held here (given back or not yet), else
  // nullopt.
  std::optional<std::uint64_t> tenure(std::uint32_t p) {
    std::lock_guard lock(mutex_);
    const auto& part = parts_.at(p);
    return part.held ? std::optional(part.tenure) : std::nullopt;
  }

  // The claims written a third of the lifetime ago or earlier.
  std::vector<claim> due_for_renewal(clock::time_point now) {
    std::lock_guard lock(mutex_);
    return claims_where_locked(
        [&](const partition& part) { return part.held && part.written <= now - lifetime_ / 3; });
  }

  // The answer to renewing `seen` with a write sent at `sent`: its new ETag,
  // or nullopt when the server refused it (another consumer took the
  // partition over: it is lost).
  void renewed(const claim& seen, const std::optional<std::string>& etag, clock::time_point sent) {
    std::lock_guard lock(mutex_);
    auto& part = parts_.at(seen.partition);
    if (!part.held || part.etag != seen.etag)
      return;  // given back meanwhile
    if (!etag) {
      part.held = part.releasing = false;
      ++lost_;
      return;
    }
    part.etag = *etag;
    part.renewal = seen.renewal + 1;
    part.written = sent;
  }

  // Every claim held, as last written.
  std::vector<claim> held_claims() {
    std::lock_guard lock(mutex_);
    return claims_where_locked([](const partition& part) { return part.held; });
  }

  // The claim `seen` is gone from the bucket or another's now: not ours any
  // more, counted as lost. False when it changed here meanwhile (renewed,
  // given back).
  bool drop(const claim& seen) {
    std::lock_guard lock(mutex_);
    auto& part = parts_.at(seen.partition);
    if (!part.held || part.etag != seen.etag)
      return false;
    part.held = part.releasing = false;
    ++lost_;
    return true;
  }

  // Keeps `share` partitions; the highest of the others are given back once
  // their requests are done. Returns how many are held and kept.
  std::size_t keep(std::size_t share) {
    std::lock_guard lock(mutex_);
    std::size_t kept = 0;
    for (auto& part : parts_) {
      if (!part.held || part.releasing)
        continue;
      if (kept < share)
        ++kept;
      else
        part.releasing = true;
    }
    return kept;
  }

  // Partitions being given back with nothing busy.
  std::vector<claim> releasable() {
    std::lock_guard lock(mutex_);
    return claims_where_locked([](const partition& part) { return releasable_locked(part); });
  }
  bool any_releasable() {
    std::lock_guard lock(mutex_);
    return std::ranges::any_of(parts_,
                               [](const partition& part) { return releasable_locked(part); });
  }

  // Its claim is deleted, or was taken over: not ours any more.
  void released(const claim& gone) {
    std::lock_guard lock(mutex_);
    auto& part = parts_.at(gone.partition);
    if (part.etag == gone.etag)
      part.held = part.releasing = false;
  }

  // Every claim held, forgotten here (the caller deletes them).
  std::vector<claim> take_all() {
    std::lock_guard lock(mutex_);
    auto held = claims_where_locked([](const partition& part) { return part.held; });
    parts_ = {};
    return held;
  }

  // Not held here: free (no claim listed), or claimed elsewhere and due to
  // be read again (see look_again()). A partition not listed counts as free
  // only once it has not been listed for `quiet` (0 at a consumer's first
  // round): its claim may have been deleted behind its owner's back (by
  // hand, a lifecycle rule), and the owner, which checks its claims every
  // balance round (s3_partition_claims), writes it again meanwhile instead
  // of two consumers holding it at once. Whether this consumer saw it
  // claimed before does not tell: the deletion may come before it looked.
  std::pair<std::vector<std::uint32_t>, std::vector<std::uint32_t>> not_held(
      const std::unordered_set<std::uint32_t>& listed, clock::time_point now,
      std::chrono::milliseconds quiet = {}) {
    std::lock_guard lock(mutex_);
    std::vector<std::uint32_t> free;
    std::vector<std::uint32_t> elsewhere;
    for (std::uint32_t p = 0; p < s3_partition_count; ++p) {
      auto& part = parts_[p];
      if (part.held)
        continue;
      if (listed.contains(p)) {
        part.free_since.reset();
        if (part.look_after <= now)
          elsewhere.push_back(p);
        continue;
      }
      if (!part.free_since)
        part.free_since = now;
      if (now - *part.free_since >= quiet)
        free.push_back(p);
    }
    return {std::move(free), std::move(elsewhere)};
  }

  // Claimed elsewhere and alive: read again when it would have expired.
  void look_again(std::uint32_t p, clock::time_point when) {
    std::lock_guard lock(mutex_);
    parts_.at(p).look_after = when;
  }

  void taken_over() {
    std::lock_guard lock(mutex_);
    ++taken_over_;
  }

  std::size_t held() {
    std::lock_guard lock(mutex_);
    return static_cast<std::size_t>(
        std::ranges::count_if(parts_, [](const partition& part) { return part.held; }));
  }
  std::uint64_t taken_over_count() {
    std::lock_guard lock(mutex_);
    return taken_over_;
  }
  std::uint64_t lost_count() {
    std::lock_guard lock(mutex_);
    return lost_;
  }

 private:
  struct partition {
    bool held = false;
    bool releasing = false;  // given back once busy is 0
    std::string etag;
    std::uint64_t renewal = 0;
    clock::time_point acquired{};
    clock::time_point written{};
    std::uint32_t busy = 0;                         // requests taken and not done
    std::uint64_t tenure = 0;                       // see tenure()
    std::optional<clock::time_point> free_since{};  // not listed since (not held)
    clock::time_point look_after{};                 // another's claim: when to read it again
  };

  // The claims of the partitions that `pick` chooses, in partition order.
  template <class Pick>
  std::vector<claim> claims_where_locked(Pick&& pick) const {
    std::vector<claim> chosen;
    for (std::uint32_t p = 0; p < s3_partition_count; ++p)
      if (pick(parts_[p]))
        chosen.push_back({.partition = p, .etag = parts_[p].etag, .renewal = parts_[p].renewal});
    return chosen;
  }

  bool usable_locked(const partition& part, clock::time_point pass_started,
                     clock::time_point now) const {
    return part.held && !part.releasing && part.acquired < pass_started &&
           now - part.written < lifetime_ * 3 / 4;
  }
  static bool releasable_locked(const partition& part) {
    return part.held && part.releasing && part.busy == 0;
  }

  std::chrono::milliseconds lifetime_;
  std::mutex mutex_;
  std::array<partition, s3_partition_count> parts_{};
  std::uint64_t taken_over_ = 0;
  std::uint64_t lost_ = 0;
  std::uint64_t tenures_ = 0;
};

}  // namespace widget_consumer::detail
