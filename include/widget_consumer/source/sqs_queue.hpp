#pragma once
// sqs_queue_source: the messages of one SQS queue as requests.
//
// Receiving: `receivers` threads, started once, each keep one long-polling
// ReceiveMessage (up to 10 messages) in flight and feed a bounded buffer that
// poll() drains, so a poll rarely waits for a round trip. A FIFO queue (name
// ending ".fifo" or FifoQueue=true) is ordered(): SQS hands out a message
// group only while none of its messages is in flight, so concurrent receives
// cannot reorder a group.
//
// In flight = received and not yet settled, buffered ones included, by
// message id. A heartbeat thread extends the visibility of everything in
// flight every visibility_timeout / 3, so slow work is not redelivered
// meanwhile. A message received just after one extension waits a whole
// interval plus a pass for the next; a third leaves room for slow calls
// (detail/sqs_heartbeat.hpp: how a pass keeps within it under faults). An
// extension that comes too late is refused (MessageNotInflight) and counted:
// the message may then go to another consumer while still worked on.
//
// Duplicates: a standard queue may deliver a message again while it is in
// flight (and moto's concurrent receives hand one message to two of them). A
// copy of a message in flight is not handed out again: its receipt handle
// replaces the one we hold, since SQS deletes only with the newest. A copy of
// a message we deleted lately is deleted again, silently. Settling a ticket
// whose delivery was already settled is a bug of the caller: reported by
// flush(), nothing sent.
//
// Settling is queued and done by flush(), which reports every entry that did
// not take effect after two more tries:
//   ack      -> DeleteMessageBatch
//   release  -> ChangeMessageVisibilityBatch to the delay
//   reject   -> with a dead_letter_queue: SendMessage of the body to it (with
//               the reason as the message attribute "RejectReason"), then
//               delete. Without one, if the queue has a RedrivePolicy: made
//               visible at once, and SQS moves it to the policy's dead-letter
//               queue after maxReceiveCount receives (our reason is only in
//               our log then).
//
// DECISION, no dead-letter queue and no RedrivePolicy: a reject could only
// drop the request, which the design forbids. The constructor refuses such a
// queue (std::invalid_argument) unless options.keep_rejected is set; then a
// reject hides the message for as long as SQS allows (12 h since it was
// sent) and flush() reports it as a settle_failure, so the consumer logs an
// error and counts it. The message comes back later and is rejected again.
//
// Threads: poll/ack/release/reject/flush/request_stop from one thread (the
// concept's poll thread). The receivers and the heartbeat are ours.
//
// Stopping (detail/sqs_receive_gate.hpp says why in two steps): request_stop()
// (the consumer calls it when a stop is requested) lets no new receive begin;
// the heartbeat goes on while the work in flight is settled. Destruction then
// flushes what is queued and makes every unsettled message visible at once, so
// another consumer gets it without waiting out its visibility timeout; it does
// so again for what receives still in progress bring, until they stay quiet
// for stop_grace, then aborts them. It does not wait out a long poll: a stop
// takes about stop_grace plus a round trip. At-least-once: a message SQS hands
// to an aborted poll after it was aborted stays hidden for its visibility
// timeout, then comes back.

#include "../concepts.hpp"

#include "../aws/access_check.hpp"
#include "../aws/client.hpp"
#include "../aws/sqs.hpp"
#include "detail/sqs_dead_letter.hpp"
#include "detail/sqs_heartbeat.hpp"
#include "detail/sqs_local_release.hpp"
#include "detail/sqs_receive_gate.hpp"
#include "detail/sqs_settlement.hpp"
#include "sqs_queue_options.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace widget_consumer {

enum class sqs_reject_mode { dead_letter_queue, redrive_policy, keep_in_queue };

class sqs_queue_source {
 public:
  using ticket_type = sqs_ticket;

  static constexpr std::string_view access_advice =
      "that the queue (name or URL) exists in this region and that these credentials may "
      "receive, delete and change the visibility of its messages";

  // SQS's limit on how long a message may stay hidden.
  static constexpr int max_visibility_seconds = sqs_max_visibility_seconds;

  sqs_queue_source(aws::sqs_client client, std::string_view queue, sqs_queue_options options = {})
      : client_(std::move(client)), options_(std::move(options)) {
    validate_sqs_queue_options(options_);
    // What retrying cannot fix (no such queue, credentials refused) comes out
    // as unrecoverable_error, naming the queue, region, endpoint, identity.
    const auto attributes = aws::with_access_check(
        client_.service().config(), "cannot use the SQS queue " + std::string(queue), access_advice,
        [&] {
          queue_url_ = client_.get_queue_url(queue);
          const std::vector<std::string> names{"FifoQueue", "RedrivePolicy", "VisibilityTimeout"};
          return client_.get_queue_attributes(queue_url_, names);
        });
    fifo_ = detail::sqs_is_fifo(queue_url_, attributes);
    if (const auto policy = attributes.find("RedrivePolicy"); policy != attributes.end())
      max_receive_count_ = detail::sqs_max_receive_count(policy->second);
    visibility_seconds_ = static_cast<int>(options_.visibility_timeout.count());
    if (visibility_seconds_ == 0)
      if (const auto found = attributes.find("VisibilityTimeout"); found != attributes.end())
        std::from_chars(found->second.data(), found->second.data() + found->second.size(),
                        visibility_seconds_);
    if (!options_.dead_letter_queue.empty()) {
      reject_mode_ = sqs_reject_mode::dead_letter_queue;
      aws::with_access_check(
          client_.service().config(),
          "cannot use the dead-letter queue " + options_.dead_letter_queue,
          "that the queue exists in this region and that these credentials may send to it", [&] {
            dead_letter_url_ = client_.get_queue_url(options_.dead_letter_queue);
            const std::vector<std::string> dead_letter_names{"FifoQueue", "MaximumMessageSize"};
            const auto dead_letter =
                client_.get_queue_attributes(dead_letter_url_, dead_letter_names);
            dead_letter_fifo_ = detail::sqs_is_fifo(dead_letter_url_, dead_letter);
            if (const auto size = dead_letter.find("MaximumMessageSize"); size != dead_letter.end())
              std::from_chars(size->second.data(), size->second.data() + size->second.size(),
                              dead_letter_size_);
          });
    } else if (attributes.contains("RedrivePolicy")) {
      reject_mode_ = sqs_reject_mode::redrive_policy;
    } else if (options_.keep_rejected) {
      reject_mode_ = sqs_reject_mode::keep_in_queue;
    } else {
      throw std::invalid_argument(
          "SQS queue " + queue_url_ +
          " has no RedrivePolicy and no dead-letter queue was given, so an invalid request "
          "could not be moved aside: give a dead-letter queue, add a RedrivePolicy to the "
          "queue, or allow rejects to stay in the queue (keep_rejected)");
    }
    capacity_ = options_.buffer_size != 0
                    ? options_.buffer_size
                    : options_.receivers * static_cast<std::size_t>(options_.max_messages);
    capacity_ = std::max(capacity_, static_cast<std::size_t>(options_.max_messages));
    // Without a heartbeat a message kept in flight would time out anyway.
    local_release_ = max_receive_count_ > 0 && options_.heartbeat && visibility_seconds_ > 0;
    try {
      for (std::size_t i = 0; i < options_.receivers; ++i)
        receivers_.emplace_back([this] { receive_loop(); });
      if (options_.heartbeat && visibility_seconds_ > 0) {
        // The heartbeat's own client, whose calls give up after an interval
        // (5 s at least: a slow server is not a hung one, and retries would
        // only load it more) and are not retried there: one that hangs or
        // fails is made again while its messages are still hidden.
        auto config = client_.service().config();
        config.max_attempts = 1;
        config.http.total_timeout =
            std::min(config.http.total_timeout,
                     std::max(heartbeat_interval(), std::chrono::milliseconds{5000}));
        heartbeat_client_.emplace(std::move(config));
        heartbeat_ = std::thread([this] { heartbeat_loop(); });
      }
    } catch (...) {
      stop_threads();
      throw;
    }
  }

  sqs_queue_source(aws::client_config config, std::string_view queue,
                   sqs_queue_options options = {})
      : sqs_queue_source(aws::sqs_client(std::move(config)), queue, std::move(options)) {}

  sqs_queue_source(const sqs_queue_source&) = delete;
  sqs_queue_source& operator=(const sqs_queue_source&) = delete;

  ~sqs_queue_source() {
    request_stop();
    stop_heartbeat();
    try {
      flush();
    } catch (...) {  // nothing is lost: unsettled messages come back
    }
    gate_.give_back_until_quiet([this] { release_everything_in_flight(); }, options_.stop_grace);
    stop_threads();
    release_everything_in_flight();
  }

  // No receive begins any more; those in progress end as usual (their
  // messages are settled or given back like any). poll() still hands out
  // what was received. Does not block; the heartbeat goes on.
  void request_stop() noexcept {
    {
      std::lock_guard lock(mutex_);
      gate_.stop_receiving();
    }
    space_.notify_all();
  }

  // Takes what the receivers buffered; waits up to `wait` when there is
  // nothing. A receive that failed since the last poll is thrown here once
  // the buffer is empty, so the consumer logs and counts it.
  std::vector<received_request<ticket_type>> poll(std::chrono::milliseconds wait, std::size_t max) {
    std::unique_lock lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    if (buffer_.empty() && wait.count() > 0)
      arrived_.wait_until(lock, local_.next_due(now + wait),
                          [&] { return !buffer_.empty() || receive_error_; });
    // Kept releases first: they were received before anything buffered.
    std::vector<received_request<ticket_type>> batch =
        local_.take_due(std::chrono::steady_clock::now(), max);
    // The error waits while there is anything to hand out: thrown now, what
    // was taken above would be lost.
    if (batch.empty() && buffer_.empty() && receive_error_)
      std::rethrow_exception(std::exchange(receive_error_, nullptr));
    while (!buffer_.empty() && batch.size() < max) {
      batch.push_back(std::move(buffer_.front()));
      buffer_.pop_front();
    }
    lock.unlock();
    if (!batch.empty())
      space_.notify_all();
    return batch;
  }

  void ack(ticket_type ticket) {
    auto entry = settle_entry(ticket, settle_action::ack, true);
    if (!entry)
      return;
    if (!fifo_)
      entry->group_id.clear();  // a standard queue has no order to keep
    if (fence_.holds(entry->group_id, ticket.delivery)) {
      failures_.push_back({settle_action::ack, ticket.message_id,
                           "not deleted: an earlier message of its FIFO group could not be "
                           "deleted, so this one comes back after it and is applied again"});
      return;
    }
    deletes_.push_back(
        {std::move(ticket), settle_action::ack, 0, false, std::move(entry->group_id)});
  }

  void release(ticket_type ticket, std::chrono::milliseconds delay) {
    if (local_release_ && release_locally(ticket, delay))
      return;
    if (!settle_entry(ticket, settle_action::release, false))
      return;
    const auto seconds = (std::max<std::int64_t>(delay.count(), 0) + 999) / 1000;
    visibility_changes_.push_back(
        {std::move(ticket), settle_action::release,
         static_cast<int>(std::min<std::int64_t>(seconds, max_visibility_seconds))});
  }

  void reject(ticket_type ticket, std::string_view reason) {
    // Remembered as deleted at once, so a copy received before the delete is
    // not handed out again; send_rejects() undoes that if the send fails.
    const bool deletes = reject_mode_ == sqs_reject_mode::dead_letter_queue;
    if (ticket.delivery == 0 && deletes) {
      failures_.push_back({settle_action::reject, ticket.message_id,
                           "the message was not received by this source, so its body is "
                           "unknown: nothing sent"});
      return;
    }
    // One the dead-letter queue refused for good is not sent again (said once).
    const bool undeliverable = deletes && undeliverable_.contains(ticket.message_id);
    const auto entry = settle_entry(ticket, settle_action::reject, deletes && !undeliverable);
    if (!entry)
      return;
    if (undeliverable) {
      keep_undeliverable(std::move(ticket), entry->sent_ms);
      return;
    }
    switch (reject_mode_) {
      case sqs_reject_mode::dead_letter_queue:
        rejects_.push_back({std::move(ticket), std::string(reason), std::move(entry->body),
                            std::move(entry->group_id), entry->sent_ms});
        break;
      case sqs_reject_mode::redrive_policy:
        visibility_changes_.push_back({std::move(ticket), settle_action::reject, 0});
        break;
      case sqs_reject_mode::keep_in_queue: {
        const int hold = detail::sqs_longest_hide(entry->sent_ms);
        failures_.push_back({settle_action::reject, ticket.message_id,
                             "no dead-letter queue nor RedrivePolicy: left in the queue, hidden "
                             "for " +
                                 std::to_string(hold) + " s (" +
                                 detail::sqs_attribute_text(reason) + ")"});
        visibility_changes_.push_back({std::move(ticket), settle_action::reject, hold});
        break;
      }
    }
  }

  std::vector<settle_failure> flush() {
    std::vector<settle_failure> failures = std::move(failures_);
    failures_.clear();
    send_rejects(failures);
    {
      // After send_rejects(): a copy of a reject whose send failed must stay.
      std::lock_guard lock(mutex_);
      for (auto& copy : duplicate_deletes_)
        if (const auto* settled = settled_.find(copy.ticket.message_id);
            settled && settled->deleted)
          deletes_.push_back(std::move(copy));
      duplicate_deletes_.clear();
    }
    auto deletes = std::move(deletes_);
    deletes_.clear();
    const auto undeleted_groups = detail::run_sqs_batches(
        deletes,
        [this](std::span<const detail::sqs_settlement> chunk) {
          std::vector<std::string> handles;
          for (const auto& each : chunk)
            handles.push_back(each.ticket.receipt_handle);
          return client_.delete_message_batch(queue_url_, handles);
        },
        "DeleteMessageBatch", failures);
    if (!undeleted_groups.empty() || !fence_.empty()) {
      std::lock_guard lock(mutex_);
      for (const auto& group : undeleted_groups)
        fence_.hold(group, next_delivery_);
      fence_.forget_settled(in_flight_);
    }
    auto changes = std::move(visibility_changes_);
    visibility_changes_.clear();
    {
      // Not while a heartbeat may be extending the same messages.
      std::lock_guard visibility(visibility_mutex_);
      detail::run_sqs_batches(
          changes,
          [this](std::span<const detail::sqs_settlement> chunk) {
            std::vector<aws::sqs_visibility_change> entries;
            for (const auto& each : chunk)
              entries.push_back({each.ticket.receipt_handle, each.visibility});
            return client_.change_message_visibility_batch(queue_url_, entries);
          },
          "ChangeMessageVisibilityBatch", failures);
    }
    return failures;
  }

  bool ordered() const noexcept { return fifo_; }

  // The queue's RedrivePolicy maxReceiveCount; 0 = none.
  int max_receive_count() const noexcept { return max_receive_count_; }
  // Releases kept in flight instead of given back to SQS (detail/sqs_local_release.hpp).
  std::uint64_t releases_kept() const {
    std::lock_guard lock(mutex_);
    return local_.kept();
  }
  // Said once at start-up: maxReceiveCount too low for the consumer's own
  // receives (detail::sqs_redrive_warning). "" = none.
  std::string redrive_warning(std::uint32_t max_receives) const {
    return detail::sqs_redrive_warning(max_receive_count_, local_release_, max_receives, fifo_);
  }

  const std::string& queue_url() const noexcept { return queue_url_; }
  const std::string& dead_letter_queue_url() const noexcept { return dead_letter_url_; }
  sqs_reject_mode reject_mode() const noexcept { return reject_mode_; }
  int visibility_timeout_seconds() const noexcept { return visibility_seconds_; }
  // Received and not yet settled (buffered included).
  std::size_t in_flight() const {
    std::lock_guard lock(mutex_);
    return in_flight_.size();
  }
  // Visibility extensions SQS refused for messages still in flight (they
  // may be delivered again meanwhile). Calls that failed are made again.
  std::uint64_t heartbeat_failures() const {
    std::lock_guard lock(mutex_);
    return heartbeat_failures_;
  }
  // Copies received of messages in flight or deleted lately: not handed out.
  std::uint64_t duplicates() const {
    std::lock_guard lock(mutex_);
    return duplicates_;
  }

 private:
  using in_flight_entry = detail::sqs_in_flight;

  struct rejected {
    ticket_type ticket;
    std::string reason;
    std::string body;
    std::string group_id;
    std::int64_t sent_ms = 0;
  };

  // A reject the dead-letter queue refused for good stays in the queue: to
  // the RedrivePolicy if there is one (SQS moves messages itself, whatever
  // their size), else hidden for as long as SQS allows, so it does not come
  // back every few seconds to fail again.
  void keep_undeliverable(ticket_type ticket, std::int64_t sent_ms) {
    visibility_changes_.push_back({std::move(ticket), settle_action::reject,
                                   redrive() ? 0 : detail::sqs_longest_hide(sent_ms)});
  }

  bool redrive() const noexcept { return max_receive_count_ > 0; }

  // Keeps the delivery in flight and hands it out again after `delay` with a
  // new ticket; false when the ticket is not the delivery in flight.
  bool release_locally(const ticket_type& ticket, std::chrono::milliseconds delay) {
    std::lock_guard lock(mutex_);
    const auto found = in_flight_.find(ticket.message_id);
    if (ticket.delivery == 0 || found == in_flight_.end() ||
        found->second.delivery != ticket.delivery)
      return false;
    auto& entry = found->second;
    entry.delivery = ++next_delivery_;
    received_request<ticket_type> again{entry.body,
                                        {entry.receipt_handle, ticket.message_id, entry.delivery},
                                        ticket.message_id,
                                        entry.group_id,
                                        local_.count_of(ticket.message_id) + 1};
    local_.hold(std::move(again), std::chrono::steady_clock::now() + delay);
    return true;
  }

  // Takes the ticket's delivery out of flight and points the ticket at the
  // newest receipt handle. A delivery settled already is reported and
  // nullopt returned, so nothing is sent; a ticket this source did not hand
  // out keeps its own handle and SQS decides.
  std::optional<in_flight_entry> settle_entry(ticket_type& ticket, settle_action action,
                                              bool deletes) {
    std::lock_guard lock(mutex_);
    const auto found = in_flight_.find(ticket.message_id);
    if (found != in_flight_.end() && found->second.delivery == ticket.delivery) {
      auto entry = std::move(found->second);
      in_flight_.erase(found);
      local_.forget(ticket.message_id);
      ticket.receipt_handle = entry.receipt_handle;
      settled_.remember(ticket.message_id, ticket.delivery, deletes);
      return entry;
    }
    // Only settling takes a delivery out of flight.
    if (ticket.delivery != 0) {
      failures_.push_back({action, ticket.message_id,
                           "this delivery was settled already (settled twice?): nothing sent"});
      return std::nullopt;
    }
    return in_flight_entry{ticket.receipt_handle, ticket.delivery, {}, {}, 0};
  }

  void receive_loop() {
    aws::sqs_receive_options receive;
    receive.max_messages = options_.max_messages;
    receive.wait_time_seconds = static_cast<int>(options_.wait_time.count());
    if (visibility_seconds_ > 0)
      receive.visibility_timeout = visibility_seconds_;
    auto backoff = std::chrono::milliseconds{500};
    for (;;) {
      {
        std::unique_lock lock(mutex_);
        space_.wait(lock, [&] {
          return gate_.receiving_stopped() ||
                 buffer_.size() + static_cast<std::size_t>(options_.max_messages) <= capacity_;
        });
        if (!gate_.begin())
          return;
      }
      // Ends the receive only once its messages are registered (below).
      std::optional<detail::sqs_receive_gate::ending> receiving(std::in_place, gate_);
      std::vector<aws::sqs_message> messages;
      try {
        messages = client_.receive_message(queue_url_, receive, gate_.token());
        backoff = std::chrono::milliseconds{500};
      } catch (const std::exception& e) {
        receiving.reset();
        if (gate_.cancelled())
          return;  // aborted by the destructor: no error of the queue's
        std::unique_lock lock(mutex_);
        // One that retrying cannot fix (the queue deleted, the credentials
        // expired for good) stops the consumer; any other is counted.
        receive_error_ =
            aws::retrying_cannot_fix(e)
                ? std::make_exception_ptr(aws::unrecoverable(
                      client_.service().config(), "cannot receive from the SQS queue " + queue_url_,
                      e, access_advice))
                : std::make_exception_ptr(
                      std::runtime_error("SQS receive from " + queue_url_ + ": " + e.what()));
        arrived_.notify_all();
        // A queue that is gone or refuses us would otherwise be hammered.
        space_.wait_for(lock, backoff, [&] { return gate_.receiving_stopped(); });
        backoff = std::min(backoff * 2, std::chrono::milliseconds{10000});
        continue;
      }
      if (messages.empty())
        continue;
      {
        // Registered even when stopping, so the destructor gives them back.
        std::lock_guard lock(mutex_);
        for (auto& message : messages) {
          if (duplicate(message))
            continue;
          auto [entry, request] = detail::sqs_hand_out(
              std::move(message), ++next_delivery_,
              reject_mode_ == sqs_reject_mode::dead_letter_queue || local_release_);
          if (local_release_)
            local_.handed(request.name, request.receive_count);
          in_flight_.insert_or_assign(request.name, std::move(entry));
          buffer_.push_back(std::move(request));
        }
      }
      arrived_.notify_all();
    }
  }

  // A copy of a message in flight or deleted lately (under mutex_): keeps
  // its receipt handle, the newest, for the delete, and is not handed out.
  bool duplicate(const aws::sqs_message& message) {
    if (const auto found = in_flight_.find(message.message_id); found != in_flight_.end()) {
      found->second.receipt_handle = message.receipt_handle;
      ++duplicates_;
      return true;
    }
    if (const auto* settled = settled_.find(message.message_id); settled && settled->deleted) {
      const auto group = fifo_ ? message.attribute("MessageGroupId") : std::nullopt;
      duplicate_deletes_.push_back({{message.receipt_handle, message.message_id, 0},
                                    settle_action::ack,
                                    0,
                                    true,
                                    std::string(group.value_or(""))});
      ++duplicates_;
      return true;
    }
    return false;
  }

  // A third of the visibility timeout (see the top of this file); when the
  // passes begin: detail::heartbeat_schedule.
  std::chrono::milliseconds heartbeat_interval() const {
    return std::chrono::milliseconds{visibility_seconds_ * 1000 / 3};
  }

  void heartbeat_loop() {
    detail::heartbeat_schedule schedule(heartbeat_interval(), std::chrono::steady_clock::now());
    for (;;) {
      {
        std::unique_lock lock(mutex_);
        if (space_.wait_until(lock, schedule.next(), [&] { return heartbeat_stopping_; }))
          return;
      }
      schedule.began(std::chrono::steady_clock::now());
      std::lock_guard visibility(visibility_mutex_);
      std::vector<aws::sqs_visibility_change> changes;
      std::vector<std::string> ids;
      {
        std::lock_guard lock(mutex_);
        for (const auto& [id, entry] : in_flight_) {
          changes.push_back({entry.receipt_handle, visibility_seconds_});
          ids.push_back(id);
        }
      }
      const auto failed = detail::extend_visibility(*heartbeat_client_, queue_url_, changes);
      bool calls_failed = false;
      std::lock_guard lock(mutex_);
      for (const auto& failure : failed) {
        calls_failed = calls_failed || !failure.sender_fault;
        // Counted are refusals. One settled meanwhile (deleted), or received
        // again with a newer handle, is no failure of ours.
        if (!failure.sender_fault || failure.index >= changes.size())
          continue;
        const auto found = in_flight_.find(ids[failure.index]);
        if (found != in_flight_.end() &&
            found->second.receipt_handle == changes[failure.index].receipt_handle)
          ++heartbeat_failures_;
      }
      schedule.ended(calls_failed, std::chrono::steady_clock::now());
    }
  }

  void stop_heartbeat() noexcept {
    {
      std::lock_guard lock(mutex_);
      heartbeat_stopping_ = true;
    }
    space_.notify_all();
    if (heartbeat_.joinable())
      heartbeat_.join();
  }

  // Aborts the receives in progress and joins every thread of ours.
  void stop_threads() noexcept {
    {
      std::lock_guard lock(mutex_);
      gate_.cancel();
    }
    space_.notify_all();
    for (auto& receiver : receivers_)
      if (receiver.joinable())
        receiver.join();
    stop_heartbeat();
  }

  // Makes every message received and not settled visible at once. Receivers
  // may still be running (the destructor's rounds): what they register after
  // the snapshot is given back in a later round.
  void release_everything_in_flight() noexcept {
    try {
      std::vector<aws::sqs_visibility_change> changes;
      {
        std::lock_guard lock(mutex_);
        for (const auto& [id, entry] : in_flight_)
          changes.push_back({entry.receipt_handle, 0});
        in_flight_.clear();
        buffer_.clear();
        local_.clear();
      }
      if (!changes.empty())
        client_.change_message_visibility_batch(queue_url_, changes);
    } catch (...) {  // they come back after their visibility timeout anyway
    }
  }

  // Sends each reject to the dead-letter queue; those sent are deleted with
  // the acks, those not sent are reported (and reappear when their
  // visibility times out).
  void send_rejects(std::vector<settle_failure>& failures) {
    auto rejects = std::move(rejects_);
    rejects_.clear();
    for (auto& item : rejects) {
      const auto [error, for_good] = detail::sqs_send_dead_letter(
          client_, dead_letter_url_, dead_letter_fifo_, dead_letter_size_, item.body,
          item.ticket.message_id, item.group_id, item.reason);
      if (!error.empty()) {
        {
          std::lock_guard lock(mutex_);
          settled_.not_deleted(item.ticket.message_id);
        }
        if (!for_good) {
          failures.push_back({settle_action::reject, item.ticket.message_id,
                              "sending to the dead-letter queue failed: " + error});
          continue;
        }
        undeliverable_.add(item.ticket.message_id);
        failures.push_back({settle_action::reject, item.ticket.message_id,
                            detail::sqs_undeliverable_text(error, item.reason, redrive())});
        keep_undeliverable(std::move(item.ticket), item.sent_ms);
        continue;
      }
      deletes_.push_back({std::move(item.ticket), settle_action::reject, 0});
    }
  }

  aws::sqs_client client_;
  std::optional<aws::sqs_client> heartbeat_client_;
  sqs_queue_options options_;
  std::string queue_url_;
  std::string dead_letter_url_;
  bool fifo_ = false;
  bool dead_letter_fifo_ = false;
  std::size_t dead_letter_size_ = detail::sqs_default_message_size;
  int max_receive_count_ = 0;  // of the queue's RedrivePolicy; 0 = none
  bool local_release_ = false;
  int visibility_seconds_ = 0;
  sqs_reject_mode reject_mode_ = sqs_reject_mode::dead_letter_queue;
  std::size_t capacity_ = 0;

  // Shared with the receivers and the heartbeat.
  mutable std::mutex mutex_;
  std::condition_variable arrived_;  // buffer got messages, or a receive failed
  std::condition_variable space_;    // buffer has room, or stopping
  std::deque<received_request<ticket_type>> buffer_;
  std::unordered_map<std::string, in_flight_entry> in_flight_;  // by message id
  detail::sqs_settled_memory settled_;
  std::vector<detail::sqs_settlement> duplicate_deletes_;  // copies of deleted messages
  std::uint64_t next_delivery_ = 0;
  std::exception_ptr receive_error_;
  std::uint64_t heartbeat_failures_ = 0;
  std::uint64_t duplicates_ = 0;
  bool heartbeat_stopping_ = false;
  detail::sqs_local_releases local_;  // releases kept in flight
  detail::sqs_receive_gate gate_;     // the receivers' stop (its own lock, taken after mutex_)
  // Orders visibility changes: a release is never overtaken by a heartbeat
  // extension of the same message.
  std::mutex visibility_mutex_;

  // The poll thread's; changed under mutex_, as it reads in_flight_ then.
  detail::sqs_group_fence fence_;

  // The poll thread's own.
  std::vector<detail::sqs_settlement> deletes_;
  std::vector<detail::sqs_settlement> visibility_changes_;
  std::vector<rejected> rejects_;
  std::vector<settle_failure> failures_;
  detail::sqs_undeliverable undeliverable_;

  std::vector<std::thread> receivers_;
  std::thread heartbeat_;
};

}  // namespace widget_consumer
