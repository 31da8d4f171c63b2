#pragma once
// One widget's requests in key order across consumers that share a bucket:
// a consumer does not hand out a key while an older key of the same widget
// is still listed and claimed by another consumer (detail/s3_claims.hpp).
// Bookkeeping of one pass over the bucket, on the poll thread; knows() is
// asked by the fetchers (whose GET of a body held elsewhere it spares).
//
// The pass goes through the keys in order. A key claimed elsewhere is read
// all the same (a request body never changes, so its widget id is cached by
// key) and its widget is marked for the rest of the pass; a key of ours of a
// marked widget waits (it keeps its claim) and is handed out on a later pass
// that no longer lists the older key. Waiting is only ever for an older key,
// so no two consumers wait for each other.
//
// A body that does not parse names no widget: it is rejected, never applied,
// so nothing need wait for it.

#include <widget_consumer/request.hpp>

#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <variant>

namespace widget_consumer::detail {

class s3_claim_order {
 public:
  // A new pass from the first key. The cache keeps the keys seen in the pass
  // before: a key not listed in a whole pass is gone.
  void start_pass() {
    std::lock_guard lock(mutex_);
    std::erase_if(widget_ids_, [&](const auto& entry) { return !seen_.contains(entry.first); });
    seen_.clear();
    held_elsewhere_last_pass_ = held_elsewhere_ != 0;
    held_elsewhere_ = 0;
    marked_.clear();
  }

  // Whether the widget id of `key` is known: its body need not be read.
  bool knows(const std::string& key) {
    std::lock_guard lock(mutex_);
    return widget_ids_.contains(key);
  }

  // `key` is listed and claimed by another consumer. `body` may be nullptr
  // when knows(key).
  void held_elsewhere(const std::string& key, const std::string* body) {
    ++held_elsewhere_;
    if (const auto widget = widget_of(key, body))
      marked_.insert(*widget);
  }

  // `key` is ours: true when it must wait for an older key of its widget
  // claimed elsewhere.
  bool must_wait(const std::string& key, const std::string* body) {
    if (marked_.empty())
      return false;  // nothing to wait for: no need to read the body
    const auto widget = widget_of(key, body);
    return widget && marked_.contains(*widget);
  }

  // Keys claimed elsewhere were listed in this pass or the last one: work
  // that may yet come to this consumer (a dead owner's claims expire).
  bool others_at_work() const noexcept { return held_elsewhere_ != 0 || held_elsewhere_last_pass_; }

 private:
  std::optional<std::string> widget_of(const std::string& key, const std::string* body) {
    std::lock_guard lock(mutex_);
    seen_.insert(key);
    if (const auto found = widget_ids_.find(key); found != widget_ids_.end())
      return found->second;
    if (body == nullptr)
      return std::nullopt;
    auto parsed = parse_request(*body);
    auto* request = std::get_if<widget_request>(&parsed);
    std::optional<std::string> widget;
    if (request != nullptr)
      widget = std::move(request->widget_id);
    widget_ids_.emplace(key, widget);
    return widget;
  }

  std::mutex mutex_;  // around widget_ids_ and seen_
  std::unordered_map<std::string, std::optional<std::string>> widget_ids_;  // by key
  std::unordered_set<std::string> seen_;    // keys read in this pass
  std::unordered_set<std::string> marked_;  // widgets with a key claimed elsewhere
  std::size_t held_elsewhere_ = 0;
  bool held_elsewhere_last_pass_ = false;
};

}  // namespace widget_consumer::detail
