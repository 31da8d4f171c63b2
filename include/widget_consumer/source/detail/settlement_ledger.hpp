#pragma once
// The bookkeeping every source shares for the settlement contract
// (concepts.hpp, request_settling): which tickets are in flight, and the
// settlements that did not take effect since the last flush(). A ticket that
// is not in flight is reported here, never thrown.
//
// Not thread-safe: a source with threads of its own (sqs_queue.hpp) holds its
// lock around every call.

#include <widget_consumer/concepts.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace widget_consumer::detail {

// Entry: what a source keeps of a request in flight, by the request's name
// (std::monostate when the name is all it needs).
template <class Entry = std::monostate>
class settlement_ledger {
 public:
  struct any_delivery {
    bool operator()(const Entry&) const noexcept { return true; }
  };

  static constexpr const char* not_in_flight =
      "not in flight (settled twice, or not handed out by this source): nothing done";

  // In flight from now on; a newer delivery of the same name replaces the entry.
  Entry& hand_out(const std::string& name, Entry entry = {}) {
    return in_flight_.insert_or_assign(name, std::move(entry)).first->second;
  }

  bool in_flight(const std::string& name) const { return in_flight_.contains(name); }
  Entry* find(const std::string& name) {
    const auto found = in_flight_.find(name);
    return found == in_flight_.end() ? nullptr : &found->second;
  }
  std::size_t size() const noexcept { return in_flight_.size(); }
  const std::unordered_map<std::string, Entry>& entries() const noexcept { return in_flight_; }
  void clear() noexcept { in_flight_.clear(); }

  // Takes `name` out of flight when its entry is the delivery the ticket
  // names (`same_delivery(entry)`), and returns the entry. Otherwise nothing
  // changes, the ticket is reported for flush(), and nullopt is returned.
  template <class SameDelivery = any_delivery>
  std::optional<Entry> settle(const std::string& name, settle_action action,
                              SameDelivery same_delivery = {}) {
    const auto found = in_flight_.find(name);
    if (found == in_flight_.end() || !same_delivery(found->second)) {
      fail(action, name, not_in_flight);
      return std::nullopt;
    }
    Entry entry = std::move(found->second);
    in_flight_.erase(found);
    return entry;
  }

  void fail(settle_action action, std::string name, std::string reason) {
    failures_.push_back({.action = action, .name = std::move(name), .reason = std::move(reason)});
  }

  // What flush() reports: every failure since the last call, once.
  std::vector<settle_failure> take_failures() { return std::exchange(failures_, {}); }

 private:
  std::unordered_map<std::string, Entry> in_flight_;
  std::vector<settle_failure> failures_;
};

}  // namespace widget_consumer::detail
