#pragma once
// In-memory doubles of the three policies (the idea of spdlog's
// tests/test_sink.h): the consumer is tested without any server. Each one
// records what it saw so tests can check order, counts and timing.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "widget_consumer/concepts.hpp"
#include "widget_consumer/log/basic_log.hpp"
#include "widget_consumer/position.hpp"

namespace widget_consumer::testing {

// Hands out pushed bodies in push order. Not thread-safe, like the sources
// the concept describes; it checks that it is only used from one thread.
class memory_source {
 public:
  using ticket_type = std::uint64_t;
  using clock = std::chrono::steady_clock;

  explicit memory_source(bool ordered = true) : ordered_(ordered) {}

  // Safe to call while the consumer runs (tests feed it from outside).
  // position: received_request::position ("" = none).
  void push(std::string body, std::string position = {}) {
    std::lock_guard lock(mutex_);
    const ticket_type id = next_id_++;
    entries_.emplace(id, entry{std::move(body), name_of(id), std::move(position)});
  }

  std::vector<received_request<ticket_type>> poll(std::chrono::milliseconds, std::size_t max) {
    std::lock_guard lock(mutex_);
    check_thread();
    ++polls_;
    std::vector<received_request<ticket_type>> batch;
    const auto now = clock::now();
    for (auto& [id, each] : entries_) {
      if (batch.size() >= max)
        break;
      if (each.in_flight || each.available_at > now)
        continue;
      each.in_flight = true;
      ++each.receive_count;
      batch.push_back({.body = each.body,
                       .ticket = id,
                       .name = each.name,
                       .receive_count = each.receive_count,
                       .position = each.position});
    }
    in_flight_ += batch.size();
    max_in_flight_ = std::max(max_in_flight_, in_flight_);
    return batch;
  }

  void ack(ticket_type ticket) {
    std::string body;
    {
      std::lock_guard lock(mutex_);
      check_thread();
      auto found = settle(ticket);
      acked_.push_back(found->second.name);
      body = found->second.body;
      entries_.erase(found);
    }
    if (on_ack)
      on_ack(body);
  }

  void release(ticket_type ticket, std::chrono::milliseconds delay) {
    std::lock_guard lock(mutex_);
    check_thread();
    auto found = settle(ticket);
    found->second.in_flight = false;
    found->second.available_at = clock::now() + delay;
    ++released_;
  }

  void reject(ticket_type ticket, std::string_view reason) {
    std::lock_guard lock(mutex_);
    check_thread();
    auto found = settle(ticket);
    rejected_.push_back({found->second.name, std::string(reason)});
    entries_.erase(found);
  }

  std::vector<settle_failure> flush() {
    std::lock_guard lock(mutex_);
    check_thread();
    ++flushes_;
    return std::exchange(failures_to_report, {});
  }

  bool ordered() const { return ordered_; }

  // Called after each ack with the acked body (outside the lock).
  std::function<void(const std::string& body)> on_ack;
  // Reported by the next flush().
  std::vector<settle_failure> failures_to_report;

  std::vector<std::string> acked() const {
    std::lock_guard lock(mutex_);
    return acked_;
  }
  std::vector<std::pair<std::string, std::string>> rejected() const {
    std::lock_guard lock(mutex_);
    return rejected_;
  }
  std::size_t released() const {
    std::lock_guard lock(mutex_);
    return released_;
  }
  std::size_t remaining() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
  }
  std::size_t max_in_flight() const {
    std::lock_guard lock(mutex_);
    return max_in_flight_;
  }
  std::size_t polls() const {
    std::lock_guard lock(mutex_);
    return polls_;
  }
  bool used_from_one_thread() const {
    std::lock_guard lock(mutex_);
    return one_thread_;
  }

  static std::string name_of(ticket_type id) {
    std::string digits = std::to_string(id);
    return std::string(6 - std::min<std::size_t>(digits.size(), 6), '0') + digits;
  }

 private:
  struct entry {
    std::string body;
    std::string name;
    std::string position;
    bool in_flight = false;
    std::uint32_t receive_count = 0;
    clock::time_point available_at{};
  };

  std::map<ticket_type, entry>::iterator settle(ticket_type ticket) {
    auto found = entries_.find(ticket);
    if (found == entries_.end() || !found->second.in_flight)
      throw std::logic_error("settled a ticket that is not in flight: " + name_of(ticket));
    --in_flight_;
    return found;
  }

  void check_thread() {
    if (!user_)
      user_ = std::this_thread::get_id();
    else if (*user_ != std::this_thread::get_id())
      one_thread_ = false;
  }

  mutable std::mutex mutex_;
  bool ordered_;
  ticket_type next_id_ = 1;
  std::map<ticket_type, entry> entries_;  // ordered by id = push order
  std::vector<std::string> acked_;
  std::vector<std::pair<std::string, std::string>> rejected_;
  std::size_t released_ = 0;
  std::size_t in_flight_ = 0;
  std::size_t max_in_flight_ = 0;
  std::size_t polls_ = 0;
  std::size_t flushes_ = 0;
  std::optional<std::thread::id> user_;
  bool one_thread_ = true;
};

// Widgets as (widgetId -> owner), with the store semantics of DESIGN.md.
// Records every applied request per widget, and checks that no widget is
// ever applied from two threads at once.
class memory_store {
 public:
  apply_outcome apply(const widget_request& request) {
    {
      std::lock_guard lock(mutex_);
      if (++busy_[request.widget_id] > 1)
        overlapped_ = true;
      concurrent_ = std::max(concurrent_, ++active_);
    }
    struct leave {
      memory_store& store;
      const std::string& id;
      ~leave() {
        std::lock_guard lock(store.mutex_);
        --store.busy_[id];
        --store.active_;
      }
    } guard{*this, request.widget_id};

    if (delay.count() > 0)
      std::this_thread::sleep_for(delay);
    if (before_apply)
      before_apply(request);  // may throw

    std::lock_guard lock(mutex_);
    apply_outcome outcome = apply_outcome::applied;
    auto found = owners_.find(request.widget_id);
    switch (request.type) {
      case request_type::create:
        owners_[request.widget_id] = request.owner;
        break;
      case request_type::update:
        if (found == owners_.end() || found->second != request.owner)
          outcome = apply_outcome::not_found;
        break;
      case request_type::remove:
        if (found == owners_.end())
          outcome = apply_outcome::not_found;
        else
          owners_.erase(found);
        break;
    }
    history_[request.widget_id].push_back(request.request_id);
    confirmed_.push_back(request.request_id);
    return outcome;
  }

  // Fenced (concepts.hpp, position_fencing): the rule of position.hpp over a
  // position per widget, kept through deletes. The positions it was given
  // are recorded.
  fenced_outcome apply(const widget_request& request, std::string_view position) {
    std::string stored;
    {
      std::lock_guard lock(mutex_);
      given_positions_.emplace_back(position);
      stored = positions_[request.widget_id];
      if (!moves_forward(position, stored))
        return {apply_outcome::stale, stored};
    }
    const apply_outcome outcome = apply(request);
    if (outcome == apply_outcome::applied) {
      std::lock_guard lock(mutex_);
      positions_[request.widget_id] = std::string(position);
    }
    return {outcome};
  }
  std::vector<std::string> given_positions() const {
    std::lock_guard lock(mutex_);
    return given_positions_;
  }

  // Runs inside apply() before the change; throw from it to inject failures.
  std::function<void(const widget_request&)> before_apply;
  std::chrono::microseconds delay{0};

  std::vector<std::string> history(const std::string& widget_id) const {
    std::lock_guard lock(mutex_);
    auto found = history_.find(widget_id);
    return found == history_.end() ? std::vector<std::string>{} : found->second;
  }
  bool confirmed(const std::string& request_id) const {
    std::lock_guard lock(mutex_);
    return std::find(confirmed_.begin(), confirmed_.end(), request_id) != confirmed_.end();
  }
  bool contains(const std::string& widget_id) const {
    std::lock_guard lock(mutex_);
    return owners_.contains(widget_id);
  }
  bool overlapped() const {
    std::lock_guard lock(mutex_);
    return overlapped_;
  }
  int max_concurrency() const {
    std::lock_guard lock(mutex_);
    return concurrent_;
  }

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::string> owners_;
  std::unordered_map<std::string, std::vector<std::string>> history_;
  std::unordered_map<std::string, std::string> positions_;
  std::vector<std::string> given_positions_;
  std::vector<std::string> confirmed_;
  std::unordered_map<std::string, int> busy_;
  int active_ = 0;
  int concurrent_ = 0;
  bool overlapped_ = false;
};

// Owning copies of what a log was told.
struct captured_request {
  std::string name;
  std::string request_id;
  std::string widget_id;
  request_type type = request_type::create;
  bool parsed = false;
  request_outcome outcome = request_outcome::applied;
  std::uint32_t attempts = 0;
  std::string detail;
};

struct captured_message {
  log_level level = log_level::info;
  std::string text;
};

struct capturing_sink {
  std::vector<captured_request> requests;
  std::vector<captured_message> messages;
  std::vector<progress_event> progress;
  std::vector<consumer_summary> summaries;
  std::size_t flushes = 0;

  void write(const request_event& event) {
    requests.push_back({std::string(event.name), std::string(event.request_id),
                        std::string(event.widget_id), event.type, event.parsed, event.outcome,
                        event.attempts, std::string(event.detail)});
  }
  void write(const log_message& message) {
    messages.push_back({message.level, std::string(message.text)});
  }
  void write(const progress_event& event) { progress.push_back(event); }
  void write(const consumer_summary& summary) { summaries.push_back(summary); }
  void flush() { ++flushes; }
};

using capturing_log = basic_log<capturing_sink>;

}  // namespace widget_consumer::testing
