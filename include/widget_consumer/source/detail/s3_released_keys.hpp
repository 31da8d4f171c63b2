#pragma once
// The requests s3_bucket_source released and keeps for a later pass
// (releases are local: concepts.hpp, local_releasing), on the poll thread.
//
// - A released key is not handed out again until its delay has passed, and
//   is kept until it is (handed_out()). One released before the last pass
//   began and not listed in it is gone from the bucket.
// - With claims, a release is kept for the tenure of its partition in which
//   it was taken (s3_partition_table::tenure). Once the partition is not
//   ours, or is ours again by a new claim, another consumer may have applied
//   the request.
// - The consumer holds a widget's later requests behind a release, for as
//   long as it takes to come back (local releases). So a release dropped in
//   any other way than handed out again is told to it (forgotten_release),
//   or that widget would wait for good and the process never go idle. If it
//   is still in the bucket, a later pass lists it again as a new delivery, in
//   key order with the widget's others. (Without claims the widget is not
//   known here: a release deleted behind the source's back is not told.)

#include <widget_consumer/delivery.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace widget_consumer::detail {

class s3_released_keys {
 public:
  using clock = std::chrono::steady_clock;

  // Where a release was made under claims: its partition, the tenure it was
  // made in, and its widget (for the consumer's hold).
  struct claimed {
    std::uint32_t partition = 0;
    std::uint64_t tenure = 0;
    std::string widget;
  };

  void keep(const std::string& key, clock::time_point due, std::optional<claimed> under = {}) {
    keys_[key] = {.due = due, .under = std::move(under), .listed = false};
  }

  // Gone elsewhere at once (its partition changed hands since it was taken).
  void forget(const std::string& key, std::string widget) {
    forgotten_.push_back({.name = key, .widget_id = std::move(widget)});
  }

  // `key` is listed: whether it waits for its delay now.
  bool waiting(const std::string& key, clock::time_point now) {
    const auto found = keys_.find(key);
    if (found == keys_.end())
      return false;
    found->second.listed = true;
    return found->second.due > now;
  }

  // Delivered again: not a release any more.
  void handed_out(const std::string& key) { keys_.erase(key); }

  // At the start of a pass: `last_pass_whole` is true when the pass before
  // was listed whole (so what was released before it began and not listed
  // in it is gone), and `tenure(p)` is the partition's tenure now (nullopt:
  // not ours). Calls dropped(key) for each key dropped.
  template <class Tenure, class Dropped>
  void start_pass(bool last_pass_whole, clock::time_point last_pass_started, Tenure&& tenure,
                  Dropped&& dropped) {
    for (auto it = keys_.begin(); it != keys_.end();) {
      auto& [key, kept] = *it;
      const bool moved = kept.under && tenure(kept.under->partition) != kept.under->tenure;
      const bool gone = last_pass_whole && !kept.listed && kept.due < last_pass_started;
      kept.listed = false;
      if (!moved && !gone) {
        ++it;
        continue;
      }
      if (kept.under)
        forget(key, kept.under->widget);
      dropped(key);
      it = keys_.erase(it);
    }
  }

  bool empty() const noexcept { return keys_.empty(); }
  std::vector<forgotten_release> take_forgotten() { return std::exchange(forgotten_, {}); }

 private:
  struct kept_key {
    clock::time_point due{};
    std::optional<claimed> under{};
    bool listed = false;  // in the pass under way
  };

  std::unordered_map<std::string, kept_key> keys_;
  std::vector<forgotten_release> forgotten_;
};

}  // namespace widget_consumer::detail
