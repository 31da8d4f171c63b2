#pragma once
// The bookkeeping behind sqs_queue_source's settling, apart from its threads:
// the queued entries, SQS FIFO group order over the shared batch runner
// (batch_runner.hpp), and the memory of recent settlements that tells a
// harmless duplicate delivery from a ticket settled twice.

#include <widget_consumer/concepts.hpp>
#include <widget_consumer/position.hpp>

#include <widget_consumer/aws/error.hpp>
#include <widget_consumer/aws/sqs.hpp>
#include <widget_consumer/source/detail/batch_runner.hpp>
#include <widget_consumer/source/sqs_ticket.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace widget_consumer {

namespace detail {

// The length of the well-formed UTF-8 sequence at the start of `text` and
// its code point, or {0, 0}: the rules of RFC 3629 (detail/utf8.hpp).
inline std::pair<std::size_t, char32_t> sqs_decode_utf8(std::string_view text) noexcept {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const unsigned char lead = bytes[0];
  if (lead < 0x80)
    return {1, lead};
  std::size_t length = 0;
  unsigned char low = 0x80;
  unsigned char high = 0xBF;
  char32_t point = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
    point = lead & 0x1Fu;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    point = lead & 0x0Fu;
    low = lead == 0xE0 ? 0xA0 : low;    // overlong
    high = lead == 0xED ? 0x9F : high;  // UTF-16 surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    point = lead & 0x07u;
    low = lead == 0xF0 ? 0x90 : low;    // overlong
    high = lead == 0xF4 ? 0x8F : high;  // above U+10FFFF
  } else {
    return {0, 0};
  }
  if (text.size() < length || bytes[1] < low || bytes[1] > high)
    return {0, 0};
  for (std::size_t k = 1; k < length; ++k) {
    if ((bytes[k] & 0xC0) != 0x80)
      return {0, 0};
    point = (point << 6) | (bytes[k] & 0x3Fu);
  }
  return {length, point};
}

// SQS refuses a message whose body or attribute holds anything outside
// #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF, so a reject
// reason quoting such a character (reasons quote request bodies) would make
// its dead-letter send fail every time. Each refused character, and each
// byte of malformed UTF-8, becomes '?'; the result is cut to at most `limit`
// bytes at a character boundary.
inline std::string sqs_attribute_text(std::string_view text, std::size_t limit = 1024) {
  std::string result;
  result.reserve(std::min(text.size(), limit));
  for (std::size_t i = 0; i < text.size();) {
    const auto [length, point] = sqs_decode_utf8(text.substr(i));
    const bool allowed = length > 0 && (point == 0x9 || point == 0xA || point == 0xD ||
                                        (point >= 0x20 && point <= 0xD7FF) ||
                                        (point >= 0xE000 && point <= 0xFFFD) || point >= 0x10000);
    const std::string_view piece = allowed ? text.substr(i, length) : std::string_view("?");
    if (result.size() + piece.size() > limit)
      break;
    result += piece;
    i += length > 0 ? length : 1;
  }
  return result.empty() ? std::string("(no reason given)") : result;
}

inline bool sqs_is_fifo(std::string_view url,
                        const std::map<std::string, std::string, std::less<>>& attributes) {
  const auto fifo = attributes.find("FifoQueue");
  return (fifo != attributes.end() && fifo->second == "true") || url.ends_with(".fifo");
}

// A message received and not yet settled, by message id.
struct sqs_in_flight {
  std::string receipt_handle{};  // the newest received
  std::uint64_t delivery = 0;    // the ticket handed out
  std::string body{};            // kept only for a dead-letter queue
  std::string group_id{};
  // When this delivery was received (epoch ms): SQS's 12 h limit on how
  // long a message stays hidden counts from its receive (sqs_longest_hide).
  std::int64_t received_ms = 0;
  std::string position{};  // received_request::position, for a local release
};

// Where the message stands (position.hpp): its SequenceNumber on a FIFO
// queue, SentTimestamp and the message id on a standard one. A FIFO message
// without its SequenceNumber (moto leaves it out of ReceiveMessage) gets
// none, and is applied unfenced: its SentTimestamp would not order a batch
// sent within one millisecond, and the FIFO order is the group's.
inline std::string sqs_position(const aws::sqs_message& message, bool fifo) {
  if (fifo) {
    const auto sequence = message.attribute("SequenceNumber");
    return sequence ? fifo_position(*sequence) : std::string{};
  }
  if (const auto sent = message.attribute("SentTimestamp"))
    return standard_position(*sent, message.message_id);
  return {};
}

// A message received, as the source keeps it in flight and hands it out as
// `delivery`.
inline std::pair<sqs_in_flight, received_request<sqs_ticket>> sqs_hand_out(aws::sqs_message message,
                                                                           std::uint64_t delivery,
                                                                           bool keep_body,
                                                                           bool fifo) {
  sqs_in_flight entry{.receipt_handle = message.receipt_handle, .delivery = delivery};
  if (const auto group = message.attribute("MessageGroupId"))
    entry.group_id = std::string(*group);
  entry.received_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  if (keep_body)
    entry.body = message.body;
  entry.position = sqs_position(message, fifo);
  received_request<sqs_ticket> request;
  request.position = entry.position;
  request.name = message.message_id;
  request.receive_count = static_cast<std::uint32_t>(std::max(message.receive_count(), 1));
  request.ticket = {.receipt_handle = message.receipt_handle,
                    .message_id = message.message_id,
                    .delivery = delivery};
  request.body = std::move(message.body);
  return {std::move(entry), std::move(request)};
}

// One queued DeleteMessageBatch or ChangeMessageVisibilityBatch entry.
struct sqs_settlement {
  sqs_ticket ticket{};
  settle_action action = settle_action::ack;
  int visibility = 0;
  // The delete of a copy delivered again after its message was settled:
  // if it fails the copy just comes back, so it is not reported.
  bool duplicate = false;
  // The message group of an ack on a FIFO queue: the group's deletes take
  // effect in order (run_sqs_batches), empty = any order.
  std::string group_id{};
};

inline constexpr int sqs_settle_attempts = 3;

// The order SQS must see a FIFO group's settlements in, as an order policy
// of run_batches. On a FIFO queue a message left undeleted comes back, and is
// applied again, after its visibility timeout: if a later message of its
// group were deleted meanwhile, the older request would end up applied last
// (a widget's update undone, a deleted widget back). So a call holds at most
// one entry of a group (a batch is not atomic), and once one fails, the
// group's later entries are not sent in that attempt.
class sqs_group_order {
 public:
  void begin_attempt() {
    broken_.clear();
    in_call_.clear();
  }
  batch_admission admit(const sqs_settlement& entry) {
    const std::string& group = entry.group_id;
    if (group.empty())
      return batch_admission::join;
    if (in_call_.contains(group))
      return batch_admission::next_call;
    if (broken_.contains(group))
      return batch_admission::hold;
    in_call_.insert(group);
    return batch_admission::join;
  }
  void call_sent() { in_call_.clear(); }
  void failed(const sqs_settlement& entry) {
    if (!entry.group_id.empty())
      broken_.insert(entry.group_id);
  }
  std::string hold_reason() const {
    return "not sent: an earlier message of its group was not settled, and SQS must see them in "
           "order";
  }
  // The groups with an entry undone in the last attempt.
  std::vector<std::string> broken() const { return {broken_.begin(), broken_.end()}; }

 private:
  std::unordered_set<std::string> broken_;
  std::unordered_set<std::string> in_call_;
};

// Puts the first entry of every group first, then the second of each, and so
// on; entries without a group count as firsts. Each group keeps its order.
// The batch runner cuts a call short whenever the next entry's group is in
// it already, so in arrival order a flush holding several entries of a few
// groups (a receive of ten often brings several of one group) went out in
// many small calls, one round trip each, while the poll thread waited.
inline void sqs_rank_by_group(std::vector<sqs_settlement>& entries) {
  std::unordered_map<std::string_view, std::size_t> taken;
  std::vector<std::size_t> rank;
  rank.reserve(entries.size());
  for (const auto& each : entries)
    rank.push_back(each.group_id.empty() ? 0 : taken[each.group_id]++);
  if (std::ranges::all_of(rank, [](std::size_t each) { return each == 0; }))
    return;  // one entry per group: nothing to move
  std::vector<std::size_t> order(entries.size());
  for (std::size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::ranges::stable_sort(order, [&](std::size_t a, std::size_t b) { return rank[a] < rank[b]; });
  std::vector<sqs_settlement> ranked;
  ranked.reserve(entries.size());
  for (const std::size_t i : order)
    ranked.push_back(std::move(entries[i]));
  entries = std::move(ranked);
}

// Runs `call` (an SQS batch call: span of entries -> aws::sqs_batch_failure
// per refused entry) over `entries` through the shared batch runner, ten per
// call, three tries, in FIFO group order (sqs_group_order); reports what is
// still undone in `failures`, except the deletes of duplicate copies (such a
// copy just comes back). If a group's entry never succeeds, its later
// entries are reported with it and all come back in order. Returns the
// groups left so.
template <class Call>
std::vector<std::string> run_sqs_batches(std::vector<sqs_settlement>& entries, Call call,
                                         std::string_view operation,
                                         std::vector<settle_failure>& failures) {
  {
    // SQS refuses a whole batch that names one receipt handle twice.
    std::unordered_set<std::string> seen;
    std::erase_if(entries, [&](const sqs_settlement& each) {
      return !seen.insert(each.ticket.receipt_handle).second;
    });
  }
  sqs_rank_by_group(entries);
  sqs_group_order order;
  const auto undone = run_batches(
      std::exchange(entries, {}),
      {.per_call = aws::sqs_client::max_batch_entries,
       .attempts = sqs_settle_attempts,
       .operation = operation},
      [&](std::span<const sqs_settlement> chunk) {
        std::vector<batch_entry_failure> failed;
        for (const auto& failure : call(chunk))
          failed.push_back(
              {.index = failure.index,
               .reason = std::string(operation) + ": " + failure.code + ": " + failure.message});
        return failed;
      },
      order);
  for (const auto& each : undone)
    if (!each.entry.duplicate)
      failures.push_back({.action = each.entry.action,
                          .name = each.entry.ticket.message_id,
                          .reason = each.reason});
  return order.broken();
}

// The batch calls run_sqs_batches makes for flush(): DeleteMessageBatch and
// ChangeMessageVisibilityBatch (to each entry's visibility).
//
// A delete retried after an attempt that may have taken effect (a 500, a
// connection lost after sending, a timeout: aws::may_have_taken_effect),
// whether the client retried it or an earlier run_batches attempt did, and
// then answered ReceiptHandleIsInvalid, is done: the first attempt deleted
// the message. AWS and moto accept a deleted message's handle again, but
// ElasticMQ forgets it, and taking that answer for a failure held the
// message's FIFO group back for a redelivery that never came. A first
// attempt answered so is still a failure: the handle is stale (the message
// went to another receive) or was never valid.
template <class Client>
auto sqs_delete_call(Client& client, const std::string& queue_url) {
  return [&client, &queue_url, maybe_deleted = std::unordered_set<std::string>()](
             std::span<const sqs_settlement> chunk) mutable {
    std::vector<std::string> handles;
    for (const auto& each : chunk)
      handles.push_back(each.ticket.receipt_handle);
    std::vector<aws::sqs_batch_failure> failures;
    try {
      failures = client.delete_message_batch(queue_url, handles);
    } catch (const aws::service_error& e) {
      if (aws::may_have_taken_effect(e))
        maybe_deleted.insert(handles.begin(), handles.end());
      throw;
    } catch (const aws::transport_error& e) {
      if (aws::may_have_taken_effect(e))
        maybe_deleted.insert(handles.begin(), handles.end());
      throw;
    }
    std::erase_if(failures, [&](const aws::sqs_batch_failure& failure) {
      return failure.code == "ReceiptHandleIsInvalid" && failure.index < handles.size() &&
             (failure.after_unknown_outcome || maybe_deleted.contains(handles[failure.index]));
    });
    return failures;
  };
}

template <class Client>
auto sqs_visibility_call(Client& client, const std::string& queue_url) {
  return [&client, &queue_url](std::span<const sqs_settlement> chunk) {
    std::vector<aws::sqs_visibility_change> entries;
    for (const auto& each : chunk)
      entries.push_back(
          {.receipt_handle = each.ticket.receipt_handle, .visibility_timeout = each.visibility});
    return client.change_message_visibility_batch(queue_url, entries);
  };
}

// FIFO groups with a message acked but not deleted (run_sqs_batches gave up).
// That message comes back after its visibility timeout and is applied again,
// so no later message of its group may be deleted before it: the acks of the
// group's deliveries handed out up to then (`through`) are not sent either,
// and come back after it. SQS hands out nothing later of the group while that
// message is in flight, so later deliveries need no fence.
//
// A fence may be forgotten only when it can stop nothing more: no delivery
// it holds is in flight (the source checks the fence in the same step that
// takes an ack's delivery out of flight), and every ack queued before the
// fence was set has met hold_back(), which is so once a piece of settle work
// handed after it (`handed`, numbered by the settler's owner) has run.
// Forgetting a fence as soon as its deliveries had left flight, as this did,
// lost it in the same step that set it: the group's later acks, queued
// meanwhile, went out, and the failed message came back after them.
class sqs_group_fence {
 public:
  // `through`: the last delivery handed out; `handed`: the last settle work
  // handed to the settler, both when the failure was found.
  void hold(const std::string& group, std::uint64_t through, std::uint64_t handed) {
    auto& at = held_[group];
    at.through = std::max(at.through, through);
    at.handed = std::max(at.handed, handed);
  }

  bool holds(const std::string& group, std::uint64_t delivery) const {
    const auto found = held_.find(group);
    return found != held_.end() && delivery != 0 && delivery <= found->second.through;
  }

  // After settle work number `finished` has run: forgets the fences that
  // can stop nothing more (above).
  template <class InFlight>
  void forget_settled(const InFlight& in_flight, std::uint64_t finished) {
    if (held_.empty())
      return;
    std::unordered_set<std::string> waiting;
    for (const auto& [id, entry] : in_flight)
      if (holds(entry.group_id, entry.delivery))
        waiting.insert(entry.group_id);
    std::erase_if(held_, [&](const auto& each) {
      return each.second.handed < finished && !waiting.contains(each.first);
    });
  }

  bool empty() const noexcept { return held_.empty(); }

  static constexpr std::string_view held_reason =
      "not deleted: an earlier message of its FIFO group could not be deleted, so this one comes "
      "back after it and is applied again";

  // Takes the acks this fence holds out of `deletes`, each reported in
  // failures: an ack queued before its group's earlier delete was known to
  // have failed.
  void hold_back(std::vector<sqs_settlement>& deletes,
                 std::vector<settle_failure>& failures) const {
    if (held_.empty())
      return;
    std::erase_if(deletes, [&](const sqs_settlement& each) {
      if (each.action != settle_action::ack || !holds(each.group_id, each.ticket.delivery))
        return false;
      failures.push_back({.action = settle_action::ack,
                          .name = each.ticket.message_id,
                          .reason = std::string(held_reason)});
      return true;
    });
  }

 private:
  struct fence {
    std::uint64_t through = 0;
    std::uint64_t handed = 0;
  };
  std::unordered_map<std::string, fence> held_;
};

// The messages settled lately, by message id: which delivery settled each
// and whether that settlement deletes it. SQS may deliver a message again
// after it was settled (a standard queue's copies are not all deleted at
// once); such a copy of a deleted message is deleted again rather than
// handed out, and a ticket of a settled delivery is a ticket settled twice.
// Bounded: the oldest are forgotten first.
class sqs_settled_memory {
 public:
  struct settled {
    std::uint64_t delivery = 0;
    bool deleted = false;
  };

  explicit sqs_settled_memory(std::size_t capacity = 16384) : capacity_(capacity) {}

  void remember(const std::string& message_id, std::uint64_t delivery, bool deleted) {
    by_id_[message_id] = {delivery, deleted};
    order_.emplace_back(message_id, delivery);
    while (order_.size() > capacity_) {
      // A message settled again since is remembered by its later delivery.
      const auto& [oldest, when] = order_.front();
      if (const auto found = by_id_.find(oldest);
          found != by_id_.end() && found->second.delivery == when)
        by_id_.erase(found);
      order_.pop_front();
    }
  }

  const settled* find(const std::string& message_id) const {
    const auto found = by_id_.find(message_id);
    return found == by_id_.end() ? nullptr : &found->second;
  }

  // Its delete will not happen (the dead-letter queue refused the body): a
  // later delivery is a new one.
  void not_deleted(const std::string& message_id) {
    if (const auto found = by_id_.find(message_id); found != by_id_.end())
      found->second.deleted = false;
  }

 private:
  std::size_t capacity_;
  std::unordered_map<std::string, settled> by_id_;
  std::deque<std::pair<std::string, std::uint64_t>> order_;
};

}  // namespace detail
}  // namespace widget_consumer
