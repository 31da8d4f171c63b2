// The order in which sqs_queue_source's deletes take effect on a FIFO queue
// (detail/sqs_settlement.hpp). SQS itself cannot be made to fail chosen
// entries of a batch, so the batch runner is driven here by a scripted call
// that records what reached "SQS" and refuses what the test says; the same
// runner against the real local server is covered by
// integration/sqs_queue_source_test.cpp.

#include "widget_consumer/source/detail/sqs_settlement.hpp"
#include "widget_consumer/source/detail/sqs_dead_letter.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace wc = widget_consumer;
namespace detail = widget_consumer::detail;

namespace {

detail::sqs_settlement ack(const std::string& id, const std::string& group) {
  return {.ticket = {.receipt_handle = "handle-" + id, .message_id = id, .delivery = 1},
          .action = wc::settle_action::ack,
          .group_id = group};
}

// A scripted DeleteMessageBatch: `refuse(id, attempt)` says whether the
// entry's n-th sight fails; a call naming `throw_on` throws as a whole.
struct scripted_sqs {
  std::function<bool(const std::string&, int)> refuse = [](const std::string&, int) {
    return false;
  };
  std::string throw_on;
  std::vector<std::vector<std::string>> calls;  // message ids per call
  std::vector<std::string> deleted;             // in the order they took effect
  std::map<std::string, int> seen;

  std::vector<wc::aws::sqs_batch_failure> operator()(
      std::span<const detail::sqs_settlement> chunk) {
    EXPECT_LE(chunk.size(), 10u);
    std::vector<std::string> ids;
    for (const auto& each : chunk)
      ids.push_back(each.ticket.message_id);
    calls.push_back(ids);
    for (const auto& id : ids)
      if (id == throw_on && seen[id]++ == 0)
        throw std::runtime_error("connection reset");
    std::vector<wc::aws::sqs_batch_failure> failed;
    for (std::size_t i = 0; i < chunk.size(); ++i) {
      const auto& id = chunk[i].ticket.message_id;
      if (refuse(id, ++seen[id]))
        failed.push_back({i, "InternalError", "try again", false});
      else
        deleted.push_back(id);
    }
    return failed;
  }
};

std::vector<std::string> run(std::vector<detail::sqs_settlement> entries, scripted_sqs& sqs,
                             std::vector<wc::settle_failure>& failures) {
  return detail::run_sqs_batches(
      entries, [&](std::span<const detail::sqs_settlement> chunk) { return sqs(chunk); },
      "DeleteMessageBatch", failures);
}

std::size_t position(const std::vector<std::string>& order, const std::string& id) {
  for (std::size_t i = 0; i < order.size(); ++i)
    if (order[i] == id)
      return i;
  ADD_FAILURE() << id << " was never deleted";
  return order.size();
}

}  // namespace

TEST(sqs_batches, entries_without_a_group_go_ten_at_a_time) {
  std::vector<detail::sqs_settlement> entries;
  for (int i = 0; i < 25; ++i)
    entries.push_back(ack("m" + std::to_string(i), ""));
  scripted_sqs sqs;
  std::vector<wc::settle_failure> failures;
  EXPECT_TRUE(run(entries, sqs, failures).empty());
  EXPECT_TRUE(failures.empty());
  ASSERT_EQ(sqs.calls.size(), 3u);
  EXPECT_EQ(sqs.calls[0].size(), 10u);
  EXPECT_EQ(sqs.deleted.size(), 25u);
}

TEST(sqs_batches, one_call_holds_at_most_one_entry_of_a_group) {
  // A batch is not atomic: two entries of one group in one call could see
  // the later deleted and the earlier refused.
  scripted_sqs sqs;
  std::vector<wc::settle_failure> failures;
  run({ack("a1", "a"), ack("b1", "b"), ack("a2", "a"), ack("c1", "c"), ack("a3", "a")}, sqs,
      failures);
  EXPECT_TRUE(failures.empty());
  for (const auto& call : sqs.calls) {
    std::set<char> groups;
    for (const auto& id : call)
      EXPECT_TRUE(groups.insert(id[0]).second) << "two of group " << id[0] << " in one call";
  }
  // Each group in its order; the first of every group go together.
  EXPECT_EQ(sqs.deleted, (std::vector<std::string>{"a1", "b1", "c1", "a2", "a3"}));
  EXPECT_EQ(sqs.calls.size(), 3u);
}

TEST(sqs_batches, groups_received_together_still_fill_their_calls) {
  // Twenty groups of two, each pair side by side as a receive hands them out:
  // two rounds of twenty firsts and twenty seconds, ten per call.
  std::vector<detail::sqs_settlement> entries;
  for (int g = 0; g < 20; ++g) {
    entries.push_back(ack("g" + std::to_string(g) + "-1", "g" + std::to_string(g)));
    entries.push_back(ack("g" + std::to_string(g) + "-2", "g" + std::to_string(g)));
  }
  scripted_sqs sqs;
  std::vector<wc::settle_failure> failures;
  EXPECT_TRUE(run(entries, sqs, failures).empty());
  EXPECT_TRUE(failures.empty());
  EXPECT_EQ(sqs.deleted.size(), 40u);
  EXPECT_EQ(sqs.calls.size(), 4u);
  for (int g = 0; g < 20; ++g)
    EXPECT_LT(position(sqs.deleted, "g" + std::to_string(g) + "-1"),
              position(sqs.deleted, "g" + std::to_string(g) + "-2"));
}

TEST(sqs_batches, after_a_refused_entry_its_group_waits_and_keeps_its_order) {
  scripted_sqs sqs;
  sqs.refuse = [](const std::string& id, int attempt) { return id == "a1" && attempt == 1; };
  std::vector<wc::settle_failure> failures;
  EXPECT_TRUE(
      run({ack("a1", "a"), ack("b1", "b"), ack("a2", "a"), ack("a3", "a")}, sqs, failures).empty());
  EXPECT_TRUE(failures.empty());
  EXPECT_LT(position(sqs.deleted, "a1"), position(sqs.deleted, "a2"));
  EXPECT_LT(position(sqs.deleted, "a2"), position(sqs.deleted, "a3"));
  // The other group did not wait.
  EXPECT_EQ(sqs.deleted.front(), "b1");
}

TEST(sqs_batches, a_call_that_throws_holds_back_the_later_entries_of_its_groups) {
  scripted_sqs sqs;
  sqs.throw_on = "a1";
  std::vector<wc::settle_failure> failures;
  std::vector<detail::sqs_settlement> entries;
  for (int i = 0; i < 10; ++i)
    entries.push_back(ack("x" + std::to_string(i), "x" + std::to_string(i)));
  entries.insert(entries.begin() + 3, ack("a1", "a"));  // first call: 10 entries, a1 among them
  entries.push_back(ack("a2", "a"));                    // later call, same group
  run(entries, sqs, failures);
  EXPECT_TRUE(failures.empty());
  EXPECT_LT(position(sqs.deleted, "a1"), position(sqs.deleted, "a2"));
}

TEST(sqs_batches, a_group_that_stays_refused_is_reported_whole_and_returned) {
  scripted_sqs sqs;
  sqs.refuse = [](const std::string& id, int) { return id == "a1"; };
  std::vector<wc::settle_failure> failures;
  const auto left =
      run({ack("a1", "a"), ack("a2", "a"), ack("b1", "b"), ack("a3", "a")}, sqs, failures);
  EXPECT_EQ(left, (std::vector<std::string>{"a"}));
  EXPECT_EQ(sqs.deleted, (std::vector<std::string>{"b1"}));  // none of a after a1
  ASSERT_EQ(failures.size(), 3u);
  EXPECT_EQ(failures[0].name, "a1");
  EXPECT_NE(failures[0].reason.find("InternalError"), std::string::npos);
  EXPECT_EQ(failures[1].name, "a2");
  EXPECT_NE(failures[1].reason.find("not sent"), std::string::npos) << failures[1].reason;
  EXPECT_EQ(failures[2].name, "a3");
}

TEST(sqs_batches, without_groups_a_refused_entry_does_not_hold_back_the_rest) {
  scripted_sqs sqs;
  sqs.refuse = [](const std::string& id, int) { return id == "m0"; };
  std::vector<wc::settle_failure> failures;
  EXPECT_TRUE(run({ack("m0", ""), ack("m1", ""), ack("m2", "")}, sqs, failures).empty());
  EXPECT_EQ(sqs.deleted, (std::vector<std::string>{"m1", "m2"}));
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].name, "m0");
}

TEST(sqs_group_fence, holds_the_deliveries_handed_out_before_the_failure_only) {
  detail::sqs_group_fence fence;
  EXPECT_FALSE(fence.holds("a", 5));
  fence.hold("a", 7, 3);
  EXPECT_TRUE(fence.holds("a", 5));
  EXPECT_TRUE(fence.holds("a", 7));
  EXPECT_FALSE(fence.holds("a", 8));  // received after: its predecessor came back first
  EXPECT_FALSE(fence.holds("b", 5));
  EXPECT_FALSE(fence.holds("", 5));
  EXPECT_FALSE(fence.holds("a", 0));  // not handed out by the source
}

// Forgotten only once it can stop nothing more: no delivery it holds is in
// flight, and settle work handed after it was set (number 3 here) has run,
// so that every ack queued before the failure was known met hold_back().
TEST(sqs_group_fence, is_forgotten_once_no_ack_it_holds_can_still_come) {
  detail::sqs_group_fence fence;
  fence.hold("a", 7, 3);
  std::unordered_map<std::string, detail::sqs_in_flight> in_flight;
  fence.forget_settled(in_flight, 3);  // the work that found the failure
  EXPECT_TRUE(fence.holds("a", 6));    // acks queued before it may still be waiting
  in_flight["m6"] = {.receipt_handle = "h", .delivery = 6, .group_id = "a"};
  fence.forget_settled(in_flight, 4);
  EXPECT_TRUE(fence.holds("a", 6));  // still waiting for m6's ack
  in_flight.clear();
  in_flight["m9"] = {.receipt_handle = "h", .delivery = 9, .group_id = "a"};
  fence.forget_settled(in_flight, 5);
  EXPECT_TRUE(fence.empty());
}

// An ack queued before its group's earlier delete was known to have failed
// (flushed in the background, the failure comes later) is held back when its
// call would be made, and reported; other groups, copies delivered again
// (delivery 0) and rejects go on.
TEST(sqs_group_fence, holds_back_the_acks_it_holds_and_reports_them) {
  detail::sqs_group_fence fence;
  fence.hold("a", 7, 1);
  const auto entry = [](std::string id, std::string group, std::uint64_t delivery,
                        widget_consumer::settle_action action =
                            widget_consumer::settle_action::ack) {
    return detail::sqs_settlement{
        .ticket = {.receipt_handle = "h-" + id, .message_id = id, .delivery = delivery},
        .action = action,
        .group_id = std::move(group)};
  };
  std::vector<detail::sqs_settlement> deletes{
      entry("m5", "a", 5),   entry("m6", "b", 6),
      entry("m7", "a", 7),   entry("m8", "a", 8),
      entry("copy", "a", 0), entry("r4", "a", 4, widget_consumer::settle_action::reject)};
  std::vector<widget_consumer::settle_failure> failures;
  fence.hold_back(deletes, failures);
  std::vector<std::string> left;
  for (const auto& each : deletes)
    left.push_back(each.ticket.message_id);
  EXPECT_EQ(left, (std::vector<std::string>{"m6", "m8", "copy", "r4"}));
  ASSERT_EQ(failures.size(), 2u);
  EXPECT_EQ(failures[0].name, "m5");
  EXPECT_EQ(failures[1].name, "m7");
  EXPECT_EQ(failures[0].action, widget_consumer::settle_action::ack);
  EXPECT_NE(failures[0].reason.find("earlier message of its FIFO group"), std::string::npos);
}

// SQS refuses a message whose attribute holds a character outside
// #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF: a reason
// quoting such a character would make the dead-letter send fail every time.
TEST(sqs_attribute_text, keeps_only_the_characters_sqs_accepts) {
  EXPECT_EQ(detail::sqs_attribute_text("a\xEF\xBF\xBF"
                                       "b\xEF\xBF\xBE"
                                       "c"),
            "a?b?c");                                                // U+FFFF, U+FFFE
  EXPECT_EQ(detail::sqs_attribute_text("x\x01y\x7Fz"), "x?y\x7Fz");  // C0 control; DEL is allowed
  EXPECT_EQ(detail::sqs_attribute_text("bad \xFF\xC0\x80 utf-8"), "bad ??? utf-8");
  EXPECT_EQ(detail::sqs_attribute_text("surrogate \xED\xA0\x80."), "surrogate ???.");
  const std::string allowed =
      "tab\tnl\ncr\r \xEF\xBF\xBD \xED\x9F\xBF \xEE\x80\x80 \xF0\x9F\x98\x80";
  EXPECT_EQ(detail::sqs_attribute_text(allowed), allowed);  // U+FFFD, U+D7FF, U+E000, U+1F600
}

TEST(sqs_attribute_text, is_cut_at_a_character_boundary) {
  EXPECT_EQ(detail::sqs_attribute_text("ab\xC3\xA9", 3), "ab");
  EXPECT_EQ(detail::sqs_attribute_text("", 10), "(no reason given)");
}

// SQS's 12 h limit on hiding a message counts from its receive, not its
// send: a message sent 13 h ago and received now may still be hidden for
// about 12 h (this once gave 0, and a reject kept in the queue came straight
// back, again and again).
TEST(sqs_longest_hide, counts_from_the_receive_and_never_falls_to_zero) {
  using namespace std::chrono;
  const auto now_ms = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  wc::aws::sqs_message message;
  message.message_id = "m";
  message.receipt_handle = "h";
  message.attributes["SentTimestamp"] = std::to_string(now_ms - 13 * 3600 * 1000);
  const auto [entry, request] = detail::sqs_hand_out(message, 1, false, false);
  EXPECT_GE(detail::sqs_longest_hide(entry.received_ms), 43200 - 60 - 5);
  EXPECT_LE(detail::sqs_longest_hide(entry.received_ms), 43200 - 60);

  EXPECT_EQ(detail::sqs_longest_hide(now_ms - 13 * 3600 * 1000), 60);
  EXPECT_EQ(detail::sqs_longest_hide(0), 43200 - 60);
}

// The fence's position (position.hpp): SequenceNumber on a FIFO queue,
// SentTimestamp and the id on a standard one, kept for a local release. A
// FIFO message without its SequenceNumber (moto's receive leaves it out)
// gets none: a batch sent within one millisecond is not ordered by time.
TEST(sqs_position, is_the_sequence_number_on_fifo_and_the_sent_time_on_standard) {
  wc::aws::sqs_message message;
  message.message_id = "m-1";
  message.receipt_handle = "h";
  message.attributes["SentTimestamp"] = "1700000000000";
  EXPECT_EQ(detail::sqs_position(message, false), wc::standard_position("1700000000000", "m-1"));
  EXPECT_EQ(detail::sqs_position(message, true), "");
  message.attributes["SequenceNumber"] = "18850000000000000001";
  EXPECT_EQ(detail::sqs_position(message, true), wc::fifo_position("18850000000000000001"));
  const auto [entry, request] = detail::sqs_hand_out(message, 1, false, true);
  EXPECT_EQ(request.position, wc::fifo_position("18850000000000000001"));
  EXPECT_EQ(entry.position, request.position);
}
