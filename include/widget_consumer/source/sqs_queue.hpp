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
// message id (detail/settlement_ledger.hpp). A heartbeat thread extends the
// visibility of everything in flight every visibility_timeout / 3, so slow
// work is not redelivered meanwhile (detail/sqs_heartbeat.hpp: why a third,
// and how a pass keeps within it under faults). An extension that comes too
// late is refused (MessageNotInflight) and counted: the message may then go
// to another consumer while still worked on.
//
// A copy SQS delivers again of a message in flight or deleted lately is not
// handed out (detail/sqs_deliveries.hpp). Settling a ticket whose delivery
// was settled already is reported by flush(), nothing sent (concepts.hpp,
// the settlement contract).
//
// Settling is queued, and made by a settler thread of the source's own
// (detail/background_settler.hpp) once flushed: begin_flush() returns at once
// (concepts.hpp, background_flushing), flush() waits for every call begun.
// The settler makes one flush's calls after an earlier one's, through the
// shared batch runner (detail/batch_runner.hpp) in FIFO group order
// (detail/sqs_settlement.hpp), which reports every entry that did not take
// effect after two more tries:
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
// concept's poll thread). The receivers, the heartbeat and the settler are
// ours. A message acked is still in flight at SQS until its delete ends, so
// SQS hands out no later message of its FIFO group meanwhile.
//
// Stopping: request_stop() lets no new receive begin (the heartbeat goes on
// while the work in flight is settled); destruction flushes, lets the long
// polls end for up to stop_grace, aborts the rest and then gives every
// unsettled message back at once, so a stop takes at most about stop_grace
// plus a round trip (detail/sqs_receive_gate.hpp says how, and why in that
// order).

#include <widget_consumer/concepts.hpp>

#include <widget_consumer/aws/client.hpp>
#include <widget_consumer/aws/sqs.hpp>
#include <widget_consumer/source/detail/sqs_dead_letter.hpp>
#include <widget_consumer/source/detail/sqs_deliveries.hpp>
#include <widget_consumer/source/detail/sqs_heartbeat.hpp>
#include <widget_consumer/source/detail/sqs_local_release.hpp>
#include <widget_consumer/source/detail/sqs_queue_setup.hpp>
#include <widget_consumer/source/detail/sqs_receive_gate.hpp>
#include <widget_consumer/source/detail/sqs_settlement.hpp>
#include <widget_consumer/source/detail/sqs_settling.hpp>
#include <widget_consumer/source/detail/worker_threads.hpp>
#include <widget_consumer/source/sqs_queue_options.hpp>
#include <widget_consumer/source/sqs_ticket.hpp>

#include <algorithm>
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
#include <utility>
#include <vector>

namespace widget_consumer {

/// A request source of an SQS queue, standard or FIFO: receivers, a visibility heartbeat, batched
/// settlements.
class sqs_queue_source {
 public:
  /// The message id and receipt handle of a delivery.
  using ticket_type = sqs_ticket;

  /// What an access failure's message tells the user to check.
  static constexpr std::string_view access_advice =
      "that the queue (name or URL) exists in this region and that these credentials may "
      "receive, delete and change the visibility of its messages";

  /// SQS's limit on how long a message may stay hidden.
  static constexpr int max_visibility_seconds = sqs_max_visibility_seconds;

  /// A source of `queue` (a name or URL) through `client`; checks the queue and starts the
  /// receivers.
  sqs_queue_source(aws::sqs_client client, std::string_view queue, sqs_queue_options options = {})
      : client_(std::move(client)), options_(std::move(options)) {
    validate_sqs_queue_options(options_);
    queue_ = detail::sqs_open_queue(client_, queue, options_, access_advice);
    capacity_ = detail::sqs_buffer_capacity(options_);
    // Without a heartbeat a message kept in flight would time out anyway.
    local_release_ =
        queue_.max_receive_count > 0 && options_.heartbeat && queue_.visibility_seconds > 0;
    deliveries_ =
        detail::sqs_deliveries(queue_.fifo, rejects_move_aside() || local_release_, local_release_);
    if (queue_.reject_mode == sqs_reject_mode::local_file)
      settling_.keep_rejects_in(detail::sqs_reject_file(options_.rejects_file));
    receivers_.start(
        options_.receivers, [this] { receive_loop(); }, [this] { stop_threads(); });
    if (options_.heartbeat && queue_.visibility_seconds > 0) {
      try {
        start_heartbeat();
      } catch (...) {
        stop_threads();
        throw;
      }
    }
  }

  /// A source of `queue`, with an SQS client made from `config`.
  sqs_queue_source(aws::client_config config, std::string_view queue,
                   sqs_queue_options options = {})
      : sqs_queue_source(aws::sqs_client(std::move(config)), queue, std::move(options)) {}

  sqs_queue_source(const sqs_queue_source&) = delete;
  sqs_queue_source& operator=(const sqs_queue_source&) = delete;

  ~sqs_queue_source() {
    request_stop();
    heartbeat_.reset();
    try {
      flush();
    } catch (...) {  // nothing is lost: unsettled messages come back
    }
    // Given back only once no receive is open (detail/sqs_receive_gate.hpp).
    // Receives cut short go on at SQS for up to their wait: hidden until
    // then, what is given back cannot go to them.
    const auto hidden = gate_.wait_quiet(options_.stop_grace, options_.wait_time);
    stop_threads();
    release_everything_in_flight(static_cast<int>(hidden.count()));
  }

  /// No receive begins any more; those in progress end as usual (their
  /// messages are settled or given back like any). poll() still hands out
  /// what was received. Does not block; the heartbeat goes on.
  void request_stop() noexcept {
    detail::change_and_notify(
        mutex_, [this] { gate_.stop_receiving(); }, space_);
  }

  /// Takes what the receivers buffered; waits up to `wait` when there is
  /// nothing. A receive that failed since the last poll is thrown here once
  /// the buffer is empty, so the consumer logs and counts it.
  std::vector<received_request<ticket_type>> poll(std::chrono::milliseconds wait, std::size_t max) {
    std::unique_lock lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    if (buffer_.empty() && wait.count() > 0)
      arrived_.wait_until(lock, deliveries_.local().next_due(now + wait),
                          [&] { return !buffer_.empty() || receive_error_; });
    // Kept releases first: they were received before anything buffered.
    std::vector<received_request<ticket_type>> batch =
        deliveries_.local().take_due(std::chrono::steady_clock::now(), max);
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

  /// Queues the message's delete for the next flush (DeleteMessageBatch).
  void ack(ticket_type ticket) {
    std::string group;
    {
      std::lock_guard lock(mutex_);
      auto entry = deliveries_.settle(ticket, settle_action::ack, true);
      if (!entry)
        return;
      if (queue_.fifo)  // a standard queue has no order to keep
        group = std::move(entry->group_id);
      // In the same hold as the settle (sqs_settling::fenced_while_locked).
      if (settling_.fenced_while_locked(group, ticket.delivery)) {
        deliveries_.ledger().fail(settle_action::ack, ticket.message_id,
                                  std::string(detail::sqs_group_fence::held_reason));
        return;
      }
    }
    settling_.queue_delete(
        {.ticket = std::move(ticket), .action = settle_action::ack, .group_id = std::move(group)});
  }

  /// Hides the message for `delay` (rounded up to seconds), or keeps it in flight to deliver again.
  void release(ticket_type ticket, std::chrono::milliseconds delay) {
    if (local_release_ && release_locally(ticket, delay))
      return;
    if (!settle_entry(ticket, settle_action::release, false))
      return;
    const auto seconds = (std::max<std::int64_t>(delay.count(), 0) + 999) / 1000;
    expect_back_after(std::chrono::seconds{seconds});
    settling_.queue_change(
        {.ticket = std::move(ticket),
         .action = settle_action::release,
         .visibility = static_cast<int>(std::min<std::int64_t>(seconds, max_visibility_seconds))});
  }

  /// Moves the message aside as reject_mode() says (dead-letter queue, redrive, file, or hidden).
  void reject(ticket_type ticket, std::string_view reason) {
    // Remembered as deleted at once, so a copy received before the delete is
    // not handed out again; the settler undoes that if the send fails.
    const bool deletes = rejects_move_aside();
    if (ticket.delivery == 0 && deletes) {
      fail(settle_action::reject, ticket.message_id,
           "the message was not received by this source, so its body is unknown: "
           "nothing sent");
      return;
    }
    // One the dead-letter queue refused for good is not sent again (said once).
    const bool undeliverable = deletes && settling_.refused_for_good(ticket.message_id);
    const auto entry = settle_entry(ticket, settle_action::reject, deletes && !undeliverable);
    if (!entry)
      return;
    if (undeliverable) {
      settling_.queue_change(settling_.undeliverable_change(std::move(ticket), entry->received_ms));
      return;
    }
    switch (queue_.reject_mode) {
      case sqs_reject_mode::dead_letter_queue:
      case sqs_reject_mode::local_file:
        settling_.queue_reject({.ticket = std::move(ticket),
                                .reason = std::string(reason),
                                .body = std::move(entry->body),
                                .group_id = std::move(entry->group_id),
                                .received_ms = entry->received_ms});
        break;
      case sqs_reject_mode::redrive_policy:
        settling_.queue_change({.ticket = std::move(ticket), .action = settle_action::reject});
        break;
      case sqs_reject_mode::keep_in_queue: {
        const int hold = detail::sqs_longest_hide(entry->received_ms);
        fail(settle_action::reject, ticket.message_id,
             "no dead-letter queue nor RedrivePolicy: left in the queue, hidden for " +
                 std::to_string(hold) + " s (" + detail::sqs_attribute_text(reason) + ")");
        settling_.queue_change(
            {.ticket = std::move(ticket), .action = settle_action::reject, .visibility = hold});
        break;
      }
    }
  }

  /// Hands what is queued to the settler thread and returns without waiting:
  /// the failures known now (refused at once, or of calls that ended).
  std::vector<settle_failure> begin_flush() { return expect_back(settling_.begin_flush()); }

  /// Hands what is queued and waits for every call begun: every failure not
  /// reported yet.
  std::vector<settle_failure> flush() { return expect_back(settling_.flush()); }

  /// Work still to come (concepts.hpp, pending_reporting), so that the
  /// consumer's max_idle does not end a run while this source hides some:
  /// messages received and not settled (buffered, kept releases), settling
  /// not yet done, and messages given back to the queue or left in it by a
  /// failed settlement, until they are due back there. Messages hidden by
  /// other consumers, or by an earlier run that died, are not counted.
  bool has_pending() const {
    std::lock_guard lock(mutex_);
    return deliveries_.ledger().size() > 0 || settling_.busy() ||
           std::chrono::steady_clock::now() < back_by_;
  }

  /// A FIFO queue delivers each group (widget) in order; a standard one does not.
  bool ordered() const noexcept { return queue_.fifo; }

  /// The queue's RedrivePolicy maxReceiveCount; 0 = none.
  int max_receive_count() const noexcept { return queue_.max_receive_count; }
  /// Releases kept in flight instead of given back to SQS (detail/sqs_local_release.hpp).
  std::uint64_t releases_kept() const {
    std::lock_guard lock(mutex_);
    return deliveries_.local().kept();
  }
  /// Said once at start-up: maxReceiveCount too low for the consumer's own
  /// receives (detail::sqs_redrive_warning). "" = none.
  std::string redrive_warning(std::uint32_t max_receives) const {
    return detail::sqs_redrive_warning(queue_.max_receive_count, local_release_, max_receives,
                                       queue_.fifo);
  }

  /// The queue's URL.
  const std::string& queue_url() const noexcept { return queue_.url; }
  /// Where a reject goes, in words, for the start-up line.
  std::string rejects_go_to() const {
    switch (queue_.reject_mode) {
      case sqs_reject_mode::dead_letter_queue:
        return "the dead-letter queue " + queue_.dead_letter_url;
      case sqs_reject_mode::redrive_policy:
        return "the queue's RedrivePolicy dead-letter queue, after " +
               std::to_string(queue_.max_receive_count) + " receives";
      case sqs_reject_mode::local_file:
        return "the file " + options_.rejects_file +
               " (the queue has no RedrivePolicy and no dead-letter queue was given)";
      case sqs_reject_mode::keep_in_queue:
        break;
    }
    return "nowhere: they stay hidden in the queue (no RedrivePolicy, no dead-letter queue)";
  }
  /// The dead-letter queue's URL; "" without one.
  const std::string& dead_letter_queue_url() const noexcept { return queue_.dead_letter_url; }
  /// How rejects are moved aside.
  sqs_reject_mode reject_mode() const noexcept { return queue_.reject_mode; }
  /// The queue's visibility timeout, read at start-up.
  int visibility_timeout_seconds() const noexcept { return queue_.visibility_seconds; }
  /// Received and not yet settled (buffered included).
  std::size_t in_flight() const {
    std::lock_guard lock(mutex_);
    return deliveries_.ledger().size();
  }
  /// What the settler found worth a warning since the last call: a reject
  /// sent to the dead-letter queue again after a send that may have reached
  /// it (a standard queue then holds it twice).
  std::vector<std::string> take_warnings() { return settling_.take_warnings(); }
  /// Visibility extensions SQS refused for messages still in flight (they
  /// may be delivered again meanwhile). Calls that failed are made again.
  std::uint64_t heartbeat_failures() const {
    std::lock_guard lock(mutex_);
    return heartbeat_failures_;
  }
  /// Copies received of messages in flight or deleted lately: not handed out.
  std::uint64_t duplicates() const {
    std::lock_guard lock(mutex_);
    return deliveries_.duplicates();
  }

 private:
  using in_flight_entry = detail::sqs_in_flight;

  // A message given back (or left hidden by a settlement that failed) is
  // visible again after `hidden`, and a receive takes up to the long poll's
  // wait to bring it: until then has_pending() says so.
  void expect_back_after(std::chrono::seconds hidden) {
    const auto due =
        std::chrono::steady_clock::now() + hidden + options_.wait_time + std::chrono::seconds{1};
    std::lock_guard lock(mutex_);
    back_by_ = std::max(back_by_, due);
  }

  // An ack or release that did not take effect leaves its message hidden
  // for up to a visibility timeout, and so does a reject whose dead-letter
  // send failed (one refused for good, or kept in a queue with neither a
  // dead-letter queue nor a RedrivePolicy, stays hidden for hours: that is
  // no work to wait for).
  std::vector<settle_failure> expect_back(std::vector<settle_failure> failures) {
    const bool parked = queue_.reject_mode == sqs_reject_mode::keep_in_queue;
    for (const auto& each : failures)
      if (each.action != settle_action::reject ||
          (!parked && !settling_.refused_for_good(each.name))) {
        expect_back_after(std::chrono::seconds{queue_.visibility_seconds});
        break;
      }
    return failures;
  }

  // A reject leaves the queue (deleted once kept elsewhere): its body is kept.
  bool rejects_move_aside() const noexcept {
    return queue_.reject_mode == sqs_reject_mode::dead_letter_queue ||
           queue_.reject_mode == sqs_reject_mode::local_file;
  }

  // Kept in flight and handed out again after `delay` (detail/sqs_deliveries.hpp).
  bool release_locally(const ticket_type& ticket, std::chrono::milliseconds delay) {
    std::lock_guard lock(mutex_);
    return deliveries_.release_locally(ticket, std::chrono::steady_clock::now() + delay);
  }

  std::optional<in_flight_entry> settle_entry(ticket_type& ticket, settle_action action,
                                              bool deletes) {
    std::lock_guard lock(mutex_);
    return deliveries_.settle(ticket, action, deletes);
  }

  void fail(settle_action action, const std::string& message_id, std::string reason) {
    std::lock_guard lock(mutex_);
    deliveries_.ledger().fail(action, message_id, std::move(reason));
  }

  void receive_loop() {
    auto receive = detail::sqs_receive_options_for(options_, queue_.visibility_seconds);
    auto backoff = std::chrono::milliseconds{500};
    // On a FIFO queue a receive is made again with its attempt id after it
    // failed (the client's own retries send the same body): the messages an
    // answer that was lost brought come back to it.
    detail::sqs_attempt_ids attempt_ids;
    for (;;) {
      {
        std::unique_lock lock(mutex_);
        // Releases kept here count with the buffer: during a store outage
        // every request comes back released, and a consumer that went on
        // receiving hid the whole backlog from the others (300 of 300
        // messages in 8 s) and extended them all on every heartbeat pass.
        space_.wait(lock, [&] {
          return gate_.receiving_stopped() ||
                 buffer_.size() + deliveries_.local().held() +
                         static_cast<std::size_t>(options_.max_messages) <=
                     capacity_;
        });
        if (!gate_.begin())
          return;
      }
      // Ends the receive only once its messages are registered (below).
      std::optional<detail::sqs_receive_gate::ending> receiving(std::in_place, gate_);
      std::vector<aws::sqs_message> messages;
      if (queue_.fifo && receive.receive_request_attempt_id.empty())
        receive.receive_request_attempt_id = attempt_ids.next();
      try {
        messages = client_.receive_message(queue_.url, receive, gate_.token());
        receive.receive_request_attempt_id.clear();  // answered: the next is a new receive
        backoff = std::chrono::milliseconds{500};
      } catch (const std::exception& e) {
        receiving.reset();
        if (gate_.cancelled())
          return;  // aborted by the destructor: no error of the queue's
        receive_failed(e, backoff);
        continue;
      }
      if (!messages.empty())
        hand_out(messages);
    }
  }

  // One that retrying cannot fix (the queue deleted, the credentials expired
  // for good) stops the consumer; any other is counted. Either way poll()
  // throws it, and this receiver waits before the next try.
  void receive_failed(const std::exception& e, std::chrono::milliseconds& backoff) {
    std::unique_lock lock(mutex_);
    receive_error_ =
        detail::sqs_receive_error(client_.service().config(), queue_.url, e, access_advice);
    arrived_.notify_all();
    // A queue that is gone or refuses us would otherwise be hammered.
    space_.wait_for(lock, backoff, [&] { return gate_.receiving_stopped(); });
    backoff = std::min(backoff * 2, std::chrono::milliseconds{10000});
  }

  // Registered even when stopping, so the destructor gives them back.
  void hand_out(std::vector<aws::sqs_message>& messages) {
    {
      std::lock_guard lock(mutex_);
      for (auto& message : messages)
        if (auto request = deliveries_.receive(std::move(message)))
          buffer_.push_back(std::move(*request));
    }
    arrived_.notify_all();
  }

  // One pass per third of the visibility timeout over what is in flight
  // (detail/sqs_heartbeat.hpp).
  void start_heartbeat() {
    heartbeat_.emplace(
        client_.service().config(), queue_.url, queue_.visibility_seconds, visibility_mutex_,
        [this] {
          std::lock_guard lock(mutex_);
          return deliveries_.in_flight_handles();
        },
        [this](const std::vector<detail::sqs_heartbeat::message>& refused) {
          std::lock_guard lock(mutex_);
          heartbeat_failures_ += deliveries_.still_held(refused);
        });
  }

  // Aborts the receives in progress and joins every thread of ours.
  void stop_threads() noexcept {
    detail::change_and_notify(
        mutex_, [this] { gate_.cancel(); }, space_);
    receivers_.join();
    heartbeat_.reset();
  }

  // Makes every message received and not settled visible after `seconds`;
  // the receivers have ended.
  void release_everything_in_flight(int seconds) noexcept {
    try {
      std::vector<aws::sqs_visibility_change> changes;
      {
        std::lock_guard lock(mutex_);
        changes = deliveries_.give_back_all();
        buffer_.clear();
      }
      for (auto& each : changes)
        each.visibility_timeout = seconds;
      if (!changes.empty())
        client_.change_message_visibility_batch(queue_.url, changes);
    } catch (...) {  // they come back after their visibility timeout anyway
    }
  }

  aws::sqs_client client_;
  sqs_queue_options options_;
  detail::sqs_queue_facts queue_;
  bool local_release_ = false;
  std::size_t capacity_ = 0;

  // Shared with the receivers, the heartbeat and the settler (settling_).
  mutable std::mutex mutex_;
  std::condition_variable arrived_;  // buffer got messages, or a receive failed
  std::condition_variable space_;    // buffer has room, or stopping
  std::deque<received_request<ticket_type>> buffer_;
  detail::sqs_deliveries deliveries_;  // in flight, and what was settled lately
  std::exception_ptr receive_error_;
  std::uint64_t heartbeat_failures_ = 0;
  // Until when a message given back or left hidden may come back (has_pending()).
  std::chrono::steady_clock::time_point back_by_{};
  detail::sqs_receive_gate gate_;  // the receivers' stop (its own lock, taken after mutex_)
  // Orders visibility changes: a release is never overtaken by a heartbeat
  // extension of the same message.
  std::mutex visibility_mutex_;

  // Last: joined before what they use goes (the settler too, in settling_).
  detail::sqs_settling<aws::sqs_client> settling_{client_, queue_, mutex_, deliveries_,
                                                  visibility_mutex_};
  detail::worker_threads receivers_;
  std::optional<detail::sqs_heartbeat> heartbeat_;
};

}  // namespace widget_consumer
