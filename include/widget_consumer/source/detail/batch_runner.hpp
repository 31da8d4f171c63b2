#pragma once
// The one batch runner behind every source's flush(): entries go to a batch
// call (S3 DeleteObjects, SQS DeleteMessageBatch and
// ChangeMessageVisibilityBatch) in chunks; an entry the answer refuses, or
// every entry of a call that threw, is tried again on the next attempt, and
// what is still undone after the last attempt is handed back with its
// reason. A service's own rule stays with its source, as the call itself
// (S3's single-delete fallback) or as an order policy (SQS FIFO groups,
// detail/sqs_settlement.hpp).

#include <chrono>
#include <cstddef>
#include <exception>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace widget_consumer::detail {

// One entry of a call that did not take effect: its index in the call's
// span, and why (the call's own words, e.g. "DeleteObjects: AccessDenied: ...").
struct batch_entry_failure {
  std::size_t index = 0;
  std::string reason;
};

// An entry undone after the last attempt, with the last reason.
template <class Entry>
struct batch_undone {
  Entry entry;
  std::string reason;
};

struct batch_limits {
  std::size_t per_call = 10;
  int attempts = 3;
  std::string_view operation;           // names a call that threw, in its entries' reasons
  std::chrono::milliseconds pause{50};  // before attempt n+1: n times this
};

// Where an entry may go, as an order policy decides.
enum class batch_admission {
  join,       // into the call being filled
  next_call,  // into a later call than those already in this one
  hold,       // not sent in this attempt (reported with hold_reason())
};

// The policy of entries with no order between them.
struct unordered_batches {
  void begin_attempt() noexcept {}
  template <class Entry>
  batch_admission admit(const Entry&) noexcept {
    return batch_admission::join;
  }
  void call_sent() noexcept {}
  template <class Entry>
  void failed(const Entry&) noexcept {}
  std::string hold_reason() const { return {}; }
};

namespace batch_detail {

// Sends chunk (indices into entries) through call; records each failed entry's reason.
template <class Entry, class Call>
void send_chunk(const std::vector<Entry>& entries, std::vector<std::size_t>& chunk, Call& call,
                std::string_view operation, std::vector<std::string>& reasons) {
  std::vector<Entry> batch;
  batch.reserve(chunk.size());
  for (const std::size_t i : chunk)
    batch.push_back(entries[i]);
  try {
    for (auto& failure : call(std::span<const Entry>(batch)))
      if (failure.index < chunk.size())
        reasons[chunk[failure.index]] = std::move(failure.reason);
  } catch (const std::exception& e) {
    for (const std::size_t i : chunk)
      reasons[i] = std::string(operation) + ": " + e.what();
  }
}

}  // namespace batch_detail

// Runs every entry through call(std::span<const Entry>) ->
// std::vector<batch_entry_failure>, at most limits.per_call per call, in the
// order given unless `order` holds some back, for up to limits.attempts.
// Returns the entries still undone, in their order.
template <class Entry, class Call, class Order = unordered_batches>
std::vector<batch_undone<Entry>> run_batches(std::vector<Entry> entries, const batch_limits& limits,
                                             Call call, Order&& order = {}) {
  for (int attempt = 1;; ++attempt) {
    order.begin_attempt();
    std::vector<std::string> reasons(entries.size());  // empty = done
    std::vector<std::size_t> chunk;
    auto send = [&] {
      if (chunk.empty())
        return;
      batch_detail::send_chunk(entries, chunk, call, limits.operation, reasons);
      for (const std::size_t i : chunk)
        if (!reasons[i].empty())
          order.failed(entries[i]);
      chunk.clear();
      order.call_sent();
    };
    for (std::size_t i = 0; i < entries.size(); ++i) {
      auto admission = order.admit(entries[i]);
      if (admission == batch_admission::next_call) {
        send();
        admission = order.admit(entries[i]);
      }
      if (admission == batch_admission::hold) {
        reasons[i] = std::string(limits.operation) + ": " + order.hold_reason();
        continue;
      }
      chunk.push_back(i);
      if (chunk.size() >= limits.per_call)
        send();
    }
    send();

    std::vector<batch_undone<Entry>> undone;
    for (std::size_t i = 0; i < entries.size(); ++i)
      if (!reasons[i].empty())
        undone.push_back({.entry = std::move(entries[i]), .reason = std::move(reasons[i])});
    if (undone.empty() || attempt >= limits.attempts)
      return undone;
    std::this_thread::sleep_for(limits.pause * attempt);
    entries.clear();
    for (auto& each : undone)
      entries.push_back(std::move(each.entry));
  }
}

}  // namespace widget_consumer::detail
