// sqs_queue_source's settling as the settler thread runs it
// (source/detail/sqs_settling.hpp): the FIFO group fence across flushes, the
// order of a copy's delete and its group's acks, and a delete retried after
// an answer that was lost. The poll thread's side is done here as the source
// does it (detail/sqs_deliveries.hpp under the one lock, then queue_delete()
// and a flush), and the queue is a scripted client: SQS itself cannot be made
// to refuse chosen entries, nor to hold a call until the test lets it go.
// The same paths against real servers, through a fault proxy, are in
// tests/integration/sqs_faults_test.py.

#include "widget_consumer/source/detail/sqs_settling.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace wc = widget_consumer;
namespace aws = widget_consumer::aws;
namespace detail = widget_consumer::detail;

namespace {

// What SQS answers when it failed inside (the call may have taken effect).
aws::service_error internal_error(const std::string& operation) {
  aws::service_error::details details;
  details.service = "sqs";
  details.operation = operation;
  details.status = 500;
  details.code = "InternalError";
  return aws::service_error(details);
}

// A queue's settling calls, scripted: `refuse(handle)` fails an entry (an
// InternalError entry of the answer), `lose(handle)` deletes it and then
// throws a 500, as if the answer was lost. Calls wait while the gate is
// closed. Records what was deleted, in the order it took effect.
class scripted_queue {
 public:
  std::function<bool(const std::string&)> refuse = [](const std::string&) { return false; };
  std::function<bool(const std::string&)> lose = [](const std::string&) { return false; };

  void close_gate() {
    std::lock_guard lock(mutex_);
    open_ = false;
  }
  void open_gate() {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    changed_.notify_all();
  }
  // Bounded: a test that forgot to open the gate fails instead of hanging.
  bool wait_for_a_caller() {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds{10}, [&] { return waiting_ > 0; });
  }
  std::vector<std::string> deleted() const {
    std::lock_guard lock(mutex_);
    return deleted_;
  }

  std::vector<aws::sqs_batch_failure> delete_message_batch(const std::string&,
                                                           std::span<const std::string> handles) {
    std::unique_lock lock(mutex_);
    ++waiting_;
    changed_.notify_all();
    changed_.wait_for(lock, std::chrono::seconds{10}, [&] { return open_; });
    --waiting_;
    std::vector<aws::sqs_batch_failure> failures;
    bool lost = false;
    for (std::size_t i = 0; i < handles.size(); ++i) {
      const std::string& handle = handles[i];
      if (gone_.contains(handle)) {
        // As ElasticMQ answers a handle whose message is deleted.
        failures.push_back({i, "ReceiptHandleIsInvalid", "gone", true});
      } else if (refuse(handle)) {
        failures.push_back({i, "InternalError", "try again", false});
      } else {
        deleted_.push_back(handle);
        gone_.insert(handle);
        lost = lost || lose(handle);
      }
    }
    if (lost)
      throw internal_error("DeleteMessageBatch");
    return failures;
  }

  std::vector<aws::sqs_batch_failure> change_message_visibility_batch(
      const std::string&, std::span<const aws::sqs_visibility_change>) {
    return {};
  }

  // Every send fails when `dead_letter_down`, as a 500 after the client's
  // retries. With `answer_after_a_lost_one`, a send is answered as the
  // client's retry after an attempt that got a 500.
  bool dead_letter_down = false;
  bool answer_after_a_lost_one = false;
  int sends = 0;
  aws::sqs_sent_message send_message(std::string_view, std::string_view,
                                     const aws::sqs_send_options&) {
    std::lock_guard lock(mutex_);
    ++sends;
    if (dead_letter_down)
      throw internal_error("SendMessage");
    return {.message_id = "dead-" + std::to_string(sends),
            .sequence_number = {},
            .after_unknown_outcome = answer_after_a_lost_one};
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool open_ = true;
  int waiting_ = 0;
  std::vector<std::string> deleted_;
  std::set<std::string> gone_;
};

// One FIFO queue's source state, settled as sqs_queue_source does it.
struct fifo_source {
  scripted_queue queue;
  detail::sqs_queue_facts facts = [] {
    detail::sqs_queue_facts fifo;
    fifo.url = "q.fifo";
    fifo.dead_letter_url = "dlq.fifo";
    fifo.dead_letter_fifo = true;
    fifo.fifo = true;
    fifo.visibility_seconds = 30;
    return fifo;
  }();
  std::mutex mutex;
  std::mutex visibility;
  detail::sqs_deliveries deliveries{true, false, false};
  detail::sqs_settling<scripted_queue> settling{queue, facts, mutex, deliveries, visibility};

  // Received: message `id` of `group`, handle "h-<id>" (or `handle`).
  wc::received_request<wc::sqs_ticket> receive(const std::string& id, const std::string& group,
                                               std::string handle = {}) {
    aws::sqs_message message;
    message.message_id = id;
    message.receipt_handle = handle.empty() ? "h-" + id : handle;
    message.body = "{}";
    message.attributes["MessageGroupId"] = group;
    std::lock_guard lock(mutex);
    auto request = deliveries.receive(std::move(message));
    return request ? std::move(*request) : wc::received_request<wc::sqs_ticket>{};
  }

  // sqs_queue_source::reject() with a dead-letter queue.
  void reject(wc::sqs_ticket ticket) {
    std::string group;
    {
      std::lock_guard lock(mutex);
      auto entry = deliveries.settle(ticket, wc::settle_action::reject, true);
      ASSERT_TRUE(entry.has_value()) << ticket.message_id;
      group = entry->group_id;
    }
    settling.queue_reject(
        {.ticket = std::move(ticket), .reason = "invalid", .body = "{", .group_id = group});
  }

  // sqs_queue_source::ack(): false when the fence held it back.
  bool ack(wc::sqs_ticket ticket) {
    std::string group;
    {
      std::lock_guard lock(mutex);
      auto entry = deliveries.settle(ticket, wc::settle_action::ack, true);
      EXPECT_TRUE(entry.has_value()) << ticket.message_id;
      if (!entry)
        return false;
      group = entry->group_id;
      if (settling.fenced_while_locked(group, ticket.delivery)) {
        deliveries.ledger().fail(wc::settle_action::ack, ticket.message_id, "fenced");
        return false;
      }
    }
    settling.queue_delete({.ticket = std::move(ticket),
                           .action = wc::settle_action::ack,
                           .group_id = std::move(group)});
    return true;
  }
};

std::vector<std::string> names(const std::vector<wc::settle_failure>& failures) {
  std::vector<std::string> result;
  for (const auto& each : failures)
    result.push_back(each.name);
  std::ranges::sort(result);
  return result;
}

}  // namespace

// r0 (a create), r1 and r2 (its updates) of one group were received
// together. r0's ack is flushed; r1's and r2's are queued behind it before
// r0's delete has failed for good. They must not be deleted: r0 comes back
// after its visibility timeout, and applied after them it would undo them.
TEST(sqs_settling, acks_queued_behind_a_failed_delete_of_their_group_are_held_back) {
  fifo_source source;
  source.queue.refuse = [](const std::string& handle) { return handle == "h-r0"; };
  const auto r0 = source.receive("r0", "w");
  const auto r1 = source.receive("r1", "w");
  const auto r2 = source.receive("r2", "w");
  const auto other = source.receive("o0", "v");

  source.queue.close_gate();
  ASSERT_TRUE(source.ack(r0.ticket));
  EXPECT_TRUE(source.settling.begin_flush().empty());
  ASSERT_TRUE(source.queue.wait_for_a_caller());  // r0's delete has begun
  ASSERT_TRUE(source.ack(r1.ticket));
  ASSERT_TRUE(source.ack(r2.ticket));
  ASSERT_TRUE(source.ack(other.ticket));
  auto failures = source.settling.begin_flush();
  source.queue.open_gate();
  for (auto& each : source.settling.flush())
    failures.push_back(std::move(each));

  EXPECT_EQ(names(failures), (std::vector<std::string>{"r0", "r1", "r2"}));
  EXPECT_EQ(source.queue.deleted(), (std::vector<std::string>{"h-o0"}));
}

// The same fence stops an ack made after the failure was known. Both
// messages then come back: this source took them for deleted (both were
// applied), so each is a copy, deleted again in the group's order and not
// applied again.
TEST(sqs_settling, an_ack_made_after_the_failure_is_held_back_and_both_come_back_in_order) {
  fifo_source source;
  bool r0_fails = true;
  source.queue.refuse = [&](const std::string& handle) { return r0_fails && handle == "h-r0"; };
  const auto r0 = source.receive("r0", "w");
  const auto r1 = source.receive("r1", "w");
  ASSERT_TRUE(source.ack(r0.ticket));
  EXPECT_EQ(names(source.settling.flush()), (std::vector<std::string>{"r0"}));

  EXPECT_FALSE(source.ack(r1.ticket));  // fenced
  EXPECT_EQ(names(source.settling.flush()), (std::vector<std::string>{"r1"}));
  EXPECT_TRUE(source.queue.deleted().empty());

  r0_fails = false;
  EXPECT_EQ(source.receive("r0", "w", "h-r0-2").ticket.delivery, 0u);
  EXPECT_EQ(source.receive("r1", "w", "h-r1-2").ticket.delivery, 0u);
  EXPECT_TRUE(source.settling.flush().empty());
  EXPECT_EQ(source.queue.deleted(), (std::vector<std::string>{"h-r0-2", "h-r1-2"}));
}

// A fence lasts until it can stop nothing more: while a delivery it holds is
// in flight, it holds; once none is and a later flush has run, it is gone
// (it does not grow with every group that ever failed).
TEST(sqs_settling, a_fence_ends_once_no_delivery_it_holds_can_still_be_acked) {
  fifo_source source;
  source.queue.refuse = [](const std::string& handle) { return handle == "h-r0"; };
  const auto r0 = source.receive("r0", "w");
  const auto r1 = source.receive("r1", "w");
  ASSERT_TRUE(source.ack(r0.ticket));
  source.settling.flush();
  const auto o0 = source.receive("o0", "v");
  ASSERT_TRUE(source.ack(o0.ticket));
  source.settling.flush();
  {
    std::lock_guard lock(source.mutex);
    EXPECT_TRUE(source.settling.fenced_while_locked("w", r1.ticket.delivery));  // r1 in flight
  }
  EXPECT_FALSE(source.ack(r1.ticket));
  source.settling.flush();
  const auto o1 = source.receive("o1", "v");
  ASSERT_TRUE(source.ack(o1.ticket));
  source.settling.flush();
  std::lock_guard lock(source.mutex);
  EXPECT_FALSE(source.settling.fenced_while_locked("w", r1.ticket.delivery));
}

// A copy SQS delivered again of a message deleted lately is older than any
// ack of its group in the same flush, so its delete goes first, and when it
// fails the group's later acks wait (they come back after it).
TEST(sqs_settling, a_copys_delete_goes_before_its_groups_acks) {
  fifo_source source;
  const auto r0 = source.receive("r0", "w");
  ASSERT_TRUE(source.ack(r0.ticket));
  EXPECT_TRUE(source.settling.flush().empty());

  source.queue.refuse = [](const std::string& handle) { return handle == "h-r0-copy"; };
  const auto copy = source.receive("r0", "w", "h-r0-copy");
  EXPECT_EQ(copy.ticket.delivery, 0u);  // not handed out
  const auto r1 = source.receive("r1", "w");
  ASSERT_TRUE(source.ack(r1.ticket));
  const auto failures = source.settling.flush();

  EXPECT_EQ(source.queue.deleted(), (std::vector<std::string>{"h-r0"}));
  EXPECT_EQ(names(failures), (std::vector<std::string>{"r1"}));
}

// A delete whose answer was lost (a 500 after it took effect) and that the
// retry then finds gone (ElasticMQ: ReceiptHandleIsInvalid) is done: not a
// failure, and no fence on its group.
TEST(sqs_settling, a_delete_found_gone_after_a_lost_answer_is_done) {
  fifo_source source;
  bool first = true;
  source.queue.lose = [&](const std::string& handle) {
    return handle == "h-r0" && std::exchange(first, false);
  };
  const auto r0 = source.receive("r0", "w");
  const auto r1 = source.receive("r1", "w");
  ASSERT_TRUE(source.ack(r0.ticket));
  EXPECT_TRUE(source.settling.flush().empty());
  ASSERT_TRUE(source.ack(r1.ticket));
  EXPECT_TRUE(source.settling.flush().empty());
  EXPECT_EQ(source.queue.deleted(), (std::vector<std::string>{"h-r0", "h-r1"}));
}

// Found gone on the first attempt, it is a failure: the handle is stale
// (the message went to another receive), and the group is fenced.
TEST(sqs_settling, a_delete_found_gone_at_the_first_attempt_fails) {
  fifo_source source;
  const auto r0 = source.receive("r0", "w");
  ASSERT_TRUE(source.ack(r0.ticket));
  EXPECT_TRUE(source.settling.flush().empty());
  const auto again = source.receive("r0b", "w", "h-r0");  // a handle already used
  const auto r1 = source.receive("r1", "w");
  ASSERT_TRUE(source.ack(again.ticket));
  EXPECT_EQ(names(source.settling.flush()), (std::vector<std::string>{"r0b"}));
  EXPECT_FALSE(source.ack(r1.ticket));
}

// A dead-letter queue that is down holds nothing else back: the acks of the
// same flush are deleted, one send is tried and the other rejects are
// reported not sent at once (their messages come back later), so the run
// ends in one send's time instead of ten sends' retries.
TEST(sqs_settling, a_failing_dead_letter_queue_delays_no_ack) {
  fifo_source source;
  source.queue.dead_letter_down = true;
  std::vector<wc::received_request<wc::sqs_ticket>> valid;
  for (int i = 0; i < 10; ++i) {
    valid.push_back(source.receive("ok" + std::to_string(i), "g" + std::to_string(i)));
    source.reject(source.receive("bad" + std::to_string(i), "b" + std::to_string(i)).ticket);
  }
  for (auto& each : valid)
    ASSERT_TRUE(source.ack(each.ticket));
  const auto failures = source.settling.flush();

  EXPECT_EQ(source.queue.deleted().size(), 10u);
  EXPECT_EQ(source.queue.sends, 1);
  ASSERT_EQ(failures.size(), 10u);
  for (const auto& each : failures) {
    EXPECT_EQ(each.action, wc::settle_action::reject);
    EXPECT_EQ(each.name.substr(0, 3), "bad");
  }
  EXPECT_NE(failures[1].reason.find("tried again in"), std::string::npos) << failures[1].reason;

  // Up again, after its rest: the next flush sends.
  source.queue.dead_letter_down = false;
  std::this_thread::sleep_for(detail::sqs_dead_letter_rest::min_pause);
  source.reject(source.receive("bad-late", "b-late").ticket);
  EXPECT_TRUE(source.settling.flush().empty());
  EXPECT_EQ(source.queue.sends, 2);
}

// A reject whose send may have reached the dead-letter queue before it was
// sent again: the client's retry after a 500, or the message rejected again
// once it came back. A standard queue keeps both copies, so each resend is
// said (once), naming the message; a send without doubt is not.
TEST(sqs_settling, a_resend_to_the_dead_letter_queue_is_said) {
  fifo_source source;
  source.facts.dead_letter_fifo = false;

  source.reject(source.receive("plain", "g1").ticket);
  EXPECT_TRUE(source.settling.flush().empty());
  EXPECT_TRUE(source.settling.take_warnings().empty());

  source.queue.answer_after_a_lost_one = true;
  source.reject(source.receive("retried", "g2").ticket);
  EXPECT_TRUE(source.settling.flush().empty());
  auto said = source.settling.take_warnings();
  ASSERT_EQ(said.size(), 1u);
  EXPECT_NE(said[0].find("reject retried "), std::string::npos) << said[0];
  EXPECT_NE(said[0].find("may hold the message twice"), std::string::npos) << said[0];
  EXPECT_TRUE(source.settling.take_warnings().empty());

  // Failed with a 500 (it may be there), then rejected again once back.
  source.queue.answer_after_a_lost_one = false;
  source.queue.dead_letter_down = true;
  source.reject(source.receive("came-back", "g3").ticket);
  EXPECT_EQ(names(source.settling.flush()), std::vector<std::string>{"came-back"});
  EXPECT_TRUE(source.settling.take_warnings().empty());
  source.queue.dead_letter_down = false;
  std::this_thread::sleep_for(detail::sqs_dead_letter_rest::min_pause);
  source.reject(source.receive("came-back", "g3", "h-came-back-2").ticket);
  EXPECT_TRUE(source.settling.flush().empty());
  said = source.settling.take_warnings();
  ASSERT_EQ(said.size(), 1u);
  EXPECT_NE(said[0].find("reject came-back "), std::string::npos) << said[0];

  // Said once: its next send is not a resend.
  source.reject(source.receive("came-back", "g3", "h-came-back-3").ticket);
  EXPECT_TRUE(source.settling.flush().empty());
  EXPECT_TRUE(source.settling.take_warnings().empty());
}

// A FIFO dead-letter queue drops the copy by its deduplication id: still
// said, as such.
TEST(sqs_settling, a_resend_to_a_fifo_dead_letter_queue_says_it_is_deduplicated) {
  fifo_source source;
  source.queue.answer_after_a_lost_one = true;
  source.reject(source.receive("retried", "g").ticket);
  EXPECT_TRUE(source.settling.flush().empty());
  const auto said = source.settling.take_warnings();
  ASSERT_EQ(said.size(), 1u);
  EXPECT_NE(said[0].find("deduplication id"), std::string::npos) << said[0];
}
