#pragma once
// sqs_queue_source's settling, apart from its receiving: what the poll
// thread queues (deletes, visibility changes, rejects bound for the
// dead-letter queue) and the settler thread that makes the calls
// (background_settler.hpp), one flush's after an earlier one's.
//
// Shared with the poll thread and the source's other threads, under the
// source's lock: the deliveries (what is in flight, what was settled), the
// FIFO group fence and the messages the dead-letter queue refused for good.
// The settler holds the source's visibility lock while it changes
// visibility, as the heartbeat does, so a release is never overtaken by an
// extension of the same message.
//
// Order: the deletes of the acks (the copies of messages deleted lately
// first), then the rejects to the dead-letter queue and the deletes of those
// sent, then the visibility changes. A copy goes first because its message
// is older than any of its group's acks: SQS delivered it again, so nothing
// of its group was in flight ahead of it. The acks go before the rejects so
// that a failing dead-letter queue cannot delay them. An ack whose FIFO group had a delete fail,
// found out after the ack was queued, is held back here (sqs_group_fence::hold_back), since its
// delete would overtake the earlier message that comes back.
//
// `Client` is aws::sqs_client; the unit tests give a scripted one.

#include <widget_consumer/concepts.hpp>

#include <widget_consumer/aws/sqs.hpp>
#include <widget_consumer/source/detail/background_settler.hpp>
#include <widget_consumer/source/detail/source_warnings.hpp>
#include <widget_consumer/source/detail/sqs_dead_letter.hpp>
#include <widget_consumer/source/detail/sqs_deliveries.hpp>
#include <widget_consumer/source/detail/sqs_queue_setup.hpp>
#include <widget_consumer/source/detail/sqs_reject_file.hpp>
#include <widget_consumer/source/detail/sqs_settlement.hpp>
#include <widget_consumer/source/sqs_ticket.hpp>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <iterator>
#include <mutex>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

namespace widget_consumer::detail {

template <class Client>
class sqs_settling {
 public:
  // Waiting work is bounded tightly (about one call's worth): acked messages
  // are no longer extended by the heartbeat, and a FIFO group stays blocked
  // at SQS until its delete lands, so deletes must not lag. The poll thread
  // waits instead, its buffer fills and the receivers pause. Against a server
  // that serves a queue's calls one at a time (ElasticMQ), a looser bound let
  // the receives crowd the deletes out: the backlog grew to hundreds of
  // entries per run, deletes came after the visibility timeout and the drain
  // slowed to a quarter (BENCHMARKS.md).
  static constexpr std::size_t max_waiting = 10;

  // `queue` is read once flushing begins (the source fills it in first).
  sqs_settling(Client& client, const sqs_queue_facts& queue, std::mutex& mutex,
               sqs_deliveries& deliveries, std::mutex& visibility)
      : client_(client),
        queue_(queue),
        mutex_(mutex),
        deliveries_(deliveries),
        visibility_(visibility) {}

  sqs_settling(const sqs_settling&) = delete;
  sqs_settling& operator=(const sqs_settling&) = delete;

  // Rejects go to this file instead of a dead-letter queue (the queue's
  // reject_mode is local_file). Before flushing begins.
  void keep_rejects_in(sqs_reject_file file) { reject_file_ = std::move(file); }

  // ---- the poll thread's -----------------------------------------------------

  void queue_delete(sqs_settlement entry) { deletes_.push_back(std::move(entry)); }
  void queue_change(sqs_settlement entry) { visibility_changes_.push_back(std::move(entry)); }
  void queue_reject(sqs_dead_letters::rejected item) { dead_letters_.queue(std::move(item)); }

  // A reject the dead-letter queue refused for good stays in the queue: to
  // the RedrivePolicy if there is one (SQS moves messages itself, whatever
  // their size), else hidden for as long as SQS allows, so it does not come
  // back every few seconds to fail again.
  sqs_settlement undeliverable_change(sqs_ticket ticket, std::int64_t received_ms) const {
    return {.ticket = std::move(ticket),
            .action = settle_action::reject,
            .visibility = redrive() ? 0 : sqs_longest_hide(received_ms)};
  }

  bool refused_for_good(const std::string& message_id) const {
    std::lock_guard lock(mutex_);
    return undeliverable_.contains(message_id);
  }

  // Whether the ack of `delivery` must not be sent (sqs_group_fence). The
  // caller holds the source's lock, and took the delivery out of flight in
  // the same hold: the fence is forgotten only once none it holds is in
  // flight, so this cannot fall in between.
  bool fenced_while_locked(const std::string& group, std::uint64_t delivery) const {
    return fence_.holds(group, delivery);
  }

  // What the settler found worth a warning since the last call (resends
  // to the dead-letter queue), for the consumer's log.
  std::vector<std::string> take_warnings() {
    std::lock_guard lock(mutex_);
    return warnings_.take();
  }

  // Something queued and not flushed yet, or a settler call under way.
  bool busy() const {
    return !deletes_.empty() || !visibility_changes_.empty() || !dead_letters_.empty() ||
           !settler_.idle();
  }

  // Hands what is queued to the settler and returns without waiting: the
  // failures known now (refused at once, or of calls that ended).
  std::vector<settle_failure> begin_flush() {
    hand_queued();
    return failures_of(settler_.take());
  }

  // Hands what is queued and waits for every call begun: every failure not
  // reported yet.
  std::vector<settle_failure> flush() {
    hand_queued();
    return failures_of(settler_.wait());
  }

 private:
  using settler_type = background_settler<sqs_settle_work, std::vector<settle_failure>>;

  bool redrive() const noexcept { return queue_.max_receive_count > 0; }

  void hand_queued() {
    sqs_settle_work work{.deletes = std::exchange(deletes_, {}),
                         .visibility_changes = std::exchange(visibility_changes_, {}),
                         .rejects = dead_letters_.take()};
    {
      std::lock_guard lock(mutex_);
      work.copies = deliveries_.take_copies();
      if (work.empty())
        return;
      work.number = ++handed_;
    }
    settler_.hand(std::move(work));
  }

  // Those refused at once (the ledger's) first, then those of the calls.
  std::vector<settle_failure> failures_of(std::vector<settler_type::outcome> outcomes) {
    std::vector<settle_failure> failures;
    {
      std::lock_guard lock(mutex_);
      failures = deliveries_.ledger().take_failures();
    }
    for (auto& each : outcomes) {
      if (each.result) {
        failures.insert(failures.end(), std::make_move_iterator(each.result->begin()),
                        std::make_move_iterator(each.result->end()));
        continue;
      }
      try {
        std::rethrow_exception(each.error);
      } catch (const std::exception& e) {
        failures.push_back({.action = settle_action::ack, .name = "(flush)", .reason = e.what()});
      }
    }
    return failures;
  }

  // ---- the settler thread's --------------------------------------------------

  std::vector<settle_failure> settle(sqs_settle_work work) {
    std::vector<settle_failure> failures;
    std::unordered_set<std::string> rejected;
    for (const auto& each : work.rejects)
      rejected.insert(each.ticket.message_id);
    // The acks and the copies first: a dead-letter queue that fails must not
    // hold them back, or their messages come back meanwhile and are applied
    // again (once, 10 deletes went out 43 s late behind 10 failing sends).
    // A copy of a message rejected in this run waits for the send: if it
    // fails, the copy must stay.
    std::vector<sqs_settlement> copies_of_rejected;
    {
      std::lock_guard lock(mutex_);
      std::erase_if(work.copies, [&](sqs_settlement& copy) {
        if (rejected.contains(copy.ticket.message_id)) {
          copies_of_rejected.push_back(std::move(copy));
          return true;
        }
        return !deliveries_.still_deleted(copy.ticket.message_id);
      });
      work.deletes.insert(work.deletes.begin(), std::make_move_iterator(work.copies.begin()),
                          std::make_move_iterator(work.copies.end()));
      fence_.hold_back(work.deletes, failures);
    }
    auto undeleted_groups = delete_all(work.deletes, failures);
    auto sent = send_rejects(work, failures);
    {
      std::lock_guard lock(mutex_);
      for (auto& copy : copies_of_rejected)
        if (deliveries_.still_deleted(copy.ticket.message_id))
          sent.insert(sent.begin(), std::move(copy));
    }
    for (auto& group : delete_all(sent, failures))
      undeleted_groups.push_back(std::move(group));
    {
      std::lock_guard lock(mutex_);
      for (const auto& group : undeleted_groups)
        fence_.hold(group, deliveries_.last_delivery(), handed_);
      fence_.forget_settled(deliveries_.ledger().entries(), work.number);
    }
    std::lock_guard visibility(visibility_);
    run_sqs_batches(work.visibility_changes, sqs_visibility_call(client_, queue_.url),
                    "ChangeMessageVisibilityBatch", failures);
    return failures;
  }

  // The FIFO groups left with an entry undone (run_sqs_batches).
  std::vector<std::string> delete_all(std::vector<sqs_settlement>& deletes,
                                      std::vector<settle_failure>& failures) {
    if (deletes.empty())
      return {};
    return run_sqs_batches(deletes, sqs_delete_call(client_, queue_.url), "DeleteMessageBatch",
                           failures);
  }

  // Returns the deletes of those sent; those not sent are reported (and
  // reappear when their visibility times out). After a send that failed, the
  // dead-letter queue is given a rest (sqs_dead_letter_rest) in which no
  // send is tried: the settler does not spend a client's retries on each
  // reject of a queue that is down, and the acks behind it go out.
  std::vector<sqs_settlement> send_rejects(sqs_settle_work& work,
                                           std::vector<settle_failure>& failures) {
    std::vector<sqs_settlement> sent;
    if (work.rejects.empty())
      return sent;
    if (reject_file_.is_open()) {
      write_rejects(work, sent, failures);
      return sent;
    }
    sqs_dead_letters::send_all(
        {.url = queue_.dead_letter_url,
         .fifo = queue_.dead_letter_fifo,
         .max_size = queue_.dead_letter_size},
        std::move(work.rejects), client_, redrive(), dead_letter_sender_, failures,
        [&sent](sqs_ticket ticket) {
          sent.push_back({.ticket = std::move(ticket), .action = settle_action::reject});
        },
        [this](const std::string& message_id) {
          std::lock_guard lock(mutex_);
          deliveries_.not_deleted(message_id);
        },
        [this, &work](sqs_ticket ticket, std::int64_t received_ms) {
          {
            std::lock_guard lock(mutex_);
            undeliverable_.add(ticket.message_id);
          }
          work.visibility_changes.push_back(undeliverable_change(std::move(ticket), received_ms));
        },
        [this](std::string text) {
          std::lock_guard lock(mutex_);
          warnings_.add(std::move(text));
        });
    return sent;
  }

  void write_rejects(sqs_settle_work& work, std::vector<sqs_settlement>& written,
                     std::vector<settle_failure>& failures) {
    for (auto& item : work.rejects) {
      if (auto error = reject_file_.write(queue_.url, item); !error.empty()) {
        {
          std::lock_guard lock(mutex_);
          deliveries_.not_deleted(item.ticket.message_id);
        }
        failures.push_back({.action = settle_action::reject,
                            .name = item.ticket.message_id,
                            .reason = "not kept, so not deleted: " + error});
        continue;
      }
      written.push_back({.ticket = std::move(item.ticket), .action = settle_action::reject});
    }
  }

  Client& client_;
  const sqs_queue_facts& queue_;
  std::mutex& mutex_;
  sqs_deliveries& deliveries_;  // under mutex_
  std::mutex& visibility_;

  // Under mutex_: changed by the settler, read by the poll thread.
  sqs_group_fence fence_;
  // Messages whose dead-letter send was refused for good: their reject is
  // said once, as an error, then they are left in the queue (to its
  // RedrivePolicy, or hidden for as long as SQS allows) without another try.
  sqs_message_ids undeliverable_;
  source_warnings warnings_;
  std::uint64_t handed_ = 0;  // settle work handed to the settler, numbered

  // The settler's.
  sqs_dead_letters::sender_state dead_letter_sender_;
  sqs_reject_file reject_file_;

  // The poll thread's.
  std::vector<sqs_settlement> deletes_;
  std::vector<sqs_settlement> visibility_changes_;
  sqs_dead_letters dead_letters_;

  // Last: joined before what it uses goes.
  settler_type settler_{[this](sqs_settle_work work) { return settle(std::move(work)); },
                        max_waiting};
};

}  // namespace widget_consumer::detail
