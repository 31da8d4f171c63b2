#pragma once
// What sqs_queue_source knows of the messages it received, apart from its
// threads: those in flight (the shared settlement ledger, by message id),
// the deliveries it numbered, the releases it keeps (sqs_local_release.hpp),
// and the settlements it remembers, which tell a copy SQS delivered again
// from a ticket settled twice.
//
// Duplicates: a standard queue may deliver a message again while it is in
// flight, and concurrent receives may each be handed the same message. A
// copy of a message in flight is not handed out again: its receipt handle
// replaces the one held, since SQS deletes only with the newest. A copy of a
// message deleted lately is deleted again, silently.
//
// Not thread-safe: the source holds its lock around every call.

#include <widget_consumer/aws/sqs.hpp>
#include <widget_consumer/source/detail/settlement_ledger.hpp>
#include <widget_consumer/source/detail/sqs_heartbeat.hpp>
#include <widget_consumer/source/detail/sqs_local_release.hpp>
#include <widget_consumer/source/detail/sqs_settlement.hpp>
#include <widget_consumer/source/sqs_ticket.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace widget_consumer::detail {

class sqs_deliveries {
 public:
  using clock = std::chrono::steady_clock;
  using request = received_request<sqs_ticket>;

  // `fifo`: copies' deletes keep their group's order. `keep_body`: bodies
  // are kept for the dead-letter queue or for local releases. `count_local`:
  // releases are kept here, so receive counts are too.
  sqs_deliveries() = default;
  sqs_deliveries(bool fifo, bool keep_body, bool count_local)
      : fifo_(fifo), keep_body_(keep_body), count_local_(count_local) {}

  // The request to hand out, or nullopt for a copy.
  std::optional<request> receive(aws::sqs_message message) {
    if (copy(message))
      return std::nullopt;
    auto [entry, handed] = sqs_hand_out(std::move(message), ++next_delivery_, keep_body_, fifo_);
    if (count_local_)
      local_.handed(handed.name, handed.receive_count);
    ledger_.hand_out(handed.name, std::move(entry));
    return std::move(handed);
  }

  // Takes the ticket's delivery out of flight and points the ticket at the
  // newest receipt handle. A delivery not in flight (only settling takes one
  // out, so: settled already) is reported by the ledger and nullopt
  // returned, so nothing is sent; a ticket not handed out by the source
  // keeps its own handle and SQS decides.
  std::optional<sqs_in_flight> settle(sqs_ticket& ticket, settle_action action, bool deletes) {
    if (ticket.delivery == 0)
      return sqs_in_flight{.receipt_handle = ticket.receipt_handle};
    auto entry = ledger_.settle(ticket.message_id, action, [&](const sqs_in_flight& held) {
      return held.delivery == ticket.delivery;
    });
    if (entry) {
      local_.forget(ticket.message_id);
      ticket.receipt_handle = entry->receipt_handle;
      settled_.remember(ticket.message_id, ticket.delivery, deletes);
    }
    return entry;
  }

  // Keeps the delivery in flight and hands it out again at `due` with a new
  // ticket; false when the ticket is not the delivery in flight.
  bool release_locally(const sqs_ticket& ticket, clock::time_point due) {
    auto* entry = ledger_.find(ticket.message_id);
    if (ticket.delivery == 0 || entry == nullptr || entry->delivery != ticket.delivery)
      return false;
    entry->delivery = ++next_delivery_;
    local_.hold({.body = entry->body,
                 .ticket = {.receipt_handle = entry->receipt_handle,
                            .message_id = ticket.message_id,
                            .delivery = entry->delivery},
                 .name = ticket.message_id,
                 .receive_count = local_.count_of(ticket.message_id) + 1,
                 .position = entry->position},
                due);
    return true;
  }

  // The deletes of copies received since the last call. Each is sent only
  // if its message is still_deleted() by then: a reject whose dead-letter
  // send failed is not (not_deleted()), and its copy must stay.
  std::vector<sqs_settlement> take_copies() { return std::exchange(copy_deletes_, {}); }
  bool still_deleted(const std::string& message_id) const {
    const auto* settled = settled_.find(message_id);
    return settled != nullptr && settled->deleted;
  }
  void not_deleted(const std::string& message_id) { settled_.not_deleted(message_id); }

  // Forgets everything in flight; returns their receipt handles, to be made
  // visible at once.
  std::vector<aws::sqs_visibility_change> give_back_all() {
    std::vector<aws::sqs_visibility_change> changes;
    for (const auto& [id, entry] : ledger_.entries())
      changes.push_back({.receipt_handle = entry.receipt_handle});
    ledger_.clear();
    local_.clear();
    return changes;
  }

  // For the heartbeat (sqs_heartbeat.hpp): what is in flight, and how many
  // of the refused are still held with that receipt handle (one settled or
  // received again meanwhile is no failure of ours).
  std::vector<sqs_heartbeat::message> in_flight_handles() const {
    std::vector<sqs_heartbeat::message> messages;
    for (const auto& [id, entry] : ledger_.entries())
      messages.push_back({.id = id, .receipt_handle = entry.receipt_handle});
    return messages;
  }
  std::uint64_t still_held(const std::vector<sqs_heartbeat::message>& refused) const {
    std::uint64_t held = 0;
    for (const auto& each : refused)
      if (const auto found = ledger_.entries().find(each.id);
          found != ledger_.entries().end() && found->second.receipt_handle == each.receipt_handle)
        ++held;
    return held;
  }

  settlement_ledger<sqs_in_flight>& ledger() noexcept { return ledger_; }
  const settlement_ledger<sqs_in_flight>& ledger() const noexcept { return ledger_; }
  sqs_local_releases& local() noexcept { return local_; }
  const sqs_local_releases& local() const noexcept { return local_; }
  std::uint64_t last_delivery() const noexcept { return next_delivery_; }
  std::uint64_t duplicates() const noexcept { return duplicates_; }

 private:
  // A copy of a message in flight or deleted lately: keeps its receipt
  // handle, the newest, for the delete, and is not handed out.
  bool copy(const aws::sqs_message& message) {
    if (auto* held = ledger_.find(message.message_id)) {
      held->receipt_handle = message.receipt_handle;
      ++duplicates_;
      return true;
    }
    if (const auto* settled = settled_.find(message.message_id); settled && settled->deleted) {
      const auto group = fifo_ ? message.attribute("MessageGroupId") : std::nullopt;
      copy_deletes_.push_back(
          {.ticket = {.receipt_handle = message.receipt_handle, .message_id = message.message_id},
           .action = settle_action::ack,
           .duplicate = true,
           .group_id = std::string(group.value_or(""))});
      ++duplicates_;
      return true;
    }
    return false;
  }

  bool fifo_ = false;
  bool keep_body_ = false;
  bool count_local_ = false;
  settlement_ledger<sqs_in_flight> ledger_;
  sqs_settled_memory settled_;
  std::vector<sqs_settlement> copy_deletes_;
  std::uint64_t next_delivery_ = 0;
  std::uint64_t duplicates_ = 0;
  sqs_local_releases local_;
};

}  // namespace widget_consumer::detail
