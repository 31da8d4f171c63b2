#pragma once
// What sqs_queue_source sends to its dead-letter queue, so that SQS can take
// it: SQS counts a message's size as its body plus each attribute's name,
// data type and value, against the queue's MaximumMessageSize, and refuses
// the whole message if they do not fit. A body that SQS took into the source
// queue may be within a few hundred bytes of the limit; the reason we add
// would then make every send fail, and the reject would come back forever
// (on a FIFO queue, holding its group). So the reason gives way first: cut
// to what is left, or left out.

#include <widget_consumer/aws/error.hpp>
#include <widget_consumer/aws/sqs.hpp>
#include <widget_consumer/source/detail/sqs_settlement.hpp>
#include <widget_consumer/source/sqs_queue_options.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <iterator>
#include <map>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

namespace widget_consumer::detail {

// SQS's default and largest MaximumMessageSize before 2025 (256 KiB).
inline constexpr std::size_t sqs_default_message_size = 262144;

inline std::size_t sqs_attribute_size(std::string_view name, std::string_view value) {
  return name.size() + std::string_view("String").size() + value.size();
}

// The attributes of a dead letter for `body`: SourceMessageId, and the
// reason, sanitised and cut so the message fits `max_size`; the reason is left
// out when nothing of it fits, and so is the id when even that does not. A
// body over the limit on its own cannot be sent at all (the caller finds out).
inline std::map<std::string, std::string, std::less<>> sqs_dead_letter_attributes(
    std::string_view body, std::string_view message_id, std::string_view reason,
    std::size_t max_size) {
  std::map<std::string, std::string, std::less<>> attributes;
  std::size_t used = body.size();
  if (used + sqs_attribute_size("SourceMessageId", message_id) > max_size)
    return attributes;
  used += sqs_attribute_size("SourceMessageId", message_id);
  attributes.emplace("SourceMessageId", message_id);
  const std::size_t overhead = sqs_attribute_size("RejectReason", "");
  if (used + overhead >= max_size)
    return attributes;
  // 1,024 bytes of reason are plenty for a log reader.
  const std::size_t room = std::min<std::size_t>(max_size - used - overhead, 1024);
  std::string text = sqs_attribute_text(reason, room);
  if (text.size() <= room)  // "(no reason given)" may not fit
    attributes.emplace("RejectReason", std::move(text));
  return attributes;
}

// True when SQS refused the send for what it holds (a 4xx other than
// throttling: too large, a character it does not accept): sending it again
// can only fail again.
inline bool sqs_send_refused_for_good(const std::exception& error) {
  const auto* refused = dynamic_cast<const aws::service_error*>(&error);
  if (refused == nullptr || refused->status() != 400)
    return false;
  const std::string_view code = refused->code();
  // The JSON protocol's codes carry a namespace ("AWS.SimpleQueueService.X").
  for (const std::string_view name : {"InvalidParameterValue", "InvalidMessageContents",
                                      "MessageTooLong", "InvalidAttributeValue"})
    if (code == name || code.ends_with(std::string(".") + std::string(name)) ||
        code.ends_with(std::string("#") + std::string(name)))
      return true;
  return false;
}

// How long a message received at `received_ms` (epoch ms; 0 = unknown) may
// still be hidden: SQS allows 12 h in all since the receive, a minute's
// margin kept. This counted from the message's SentTimestamp once, and gave 0
// for a message sent more than 12 h ago: a reject kept in the queue came back
// at once, at the receive rate. Never less than a minute.
inline int sqs_longest_hide(std::int64_t received_ms) {
  constexpr int margin = 60;
  int hide = sqs_max_visibility_seconds - margin;
  if (received_ms > 0) {
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    hide -= static_cast<int>(std::clamp<std::int64_t>((now_ms - received_ms) / 1000, 0, hide));
  }
  return std::max(hide, margin);
}

struct sqs_dead_letter_sent {
  std::string error;      // "" = sent
  bool for_good = false;  // sending it again can only fail again
  // Sent, or failed, after an attempt that may have reached the queue (a 5xx
  // other than throttling, a connection lost after sending): the queue may
  // hold it already.
  bool may_be_there_twice = false;
};

// Whether a send that threw may have reached the queue all the same.
inline bool sqs_send_may_have_reached(const std::exception& error) {
  if (const auto* service = dynamic_cast<const aws::service_error*>(&error))
    return aws::may_have_taken_effect(*service);
  if (const auto* transport = dynamic_cast<const aws::transport_error*>(&error))
    return aws::may_have_taken_effect(*transport);
  return false;
}

// Sends one reject.
template <class Client>
sqs_dead_letter_sent sqs_send_dead_letter(Client& client, const std::string& url, bool fifo,
                                          std::size_t max_size, std::string_view body,
                                          const std::string& message_id, std::string_view group_id,
                                          std::string_view reason) {
  aws::sqs_send_options send;
  if (fifo) {
    send.message_group_id = group_id.empty() ? "rejected" : std::string(group_id);
    // A retry after a lost answer is then not sent twice.
    send.message_deduplication_id = message_id;
  }
  send.message_attributes = sqs_dead_letter_attributes(body, message_id, reason, max_size);
  // One call: the client retries what may heal, with its back-off. Tried
  // three times more on top of that (nine sends), a dead-letter queue that
  // was down held the settler for seconds per reject.
  try {
    const auto sent = client.send_message(url, body, send);
    return {.error = {}, .for_good = false, .may_be_there_twice = sent.after_unknown_outcome};
  } catch (const std::exception& e) {
    return {.error = e.what(),
            .for_good = sqs_send_refused_for_good(e),
            .may_be_there_twice = sqs_send_may_have_reached(e)};
  }
}

// What is said when a reject is sent again after a send that may have
// reached the dead-letter queue (a retry of the client's, or the message
// rejected again once it came back). A FIFO queue drops the copy by its
// deduplication id (the message id, for five minutes); a standard queue has
// no such thing and keeps both, so the resend is said: a reader of the
// dead-letter queue then knows why two messages carry one SourceMessageId.
inline std::string sqs_resent_text(std::string_view message_id, bool fifo) {
  return "reject " + std::string(message_id) +
         " was sent to the dead-letter queue again after a send that may have reached it" +
         (fifo ? "; the FIFO queue drops the copy by its deduplication id if it came within 5 "
                 "minutes"
               : "; a standard queue has no deduplication, so it may hold the message twice "
                 "(both copies carry SourceMessageId " +
                     std::string(message_id) + ")");
}

// After a dead-letter send fails (and not for what the message holds), no
// send is tried for a while: 1 s, doubled after each failure up to 30 s,
// back to none after a success. Rejects met meanwhile are reported as not
// sent; their messages come back after the visibility timeout and are
// rejected again. The settler thread's.
class sqs_dead_letter_rest {
 public:
  using clock = std::chrono::steady_clock;

  bool resting(clock::time_point now) const noexcept { return now < until_; }
  std::chrono::milliseconds left(clock::time_point now) const noexcept {
    return std::chrono::duration_cast<std::chrono::milliseconds>(until_ - now);
  }
  void failed(clock::time_point now) noexcept {
    pause_ = std::min(pause_ * 2, max_pause);
    until_ = now + pause_;
  }
  void sent() noexcept { pause_ = min_pause / 2; }

  static constexpr std::chrono::milliseconds min_pause{1000};
  static constexpr std::chrono::milliseconds max_pause{30000};

 private:
  std::chrono::milliseconds pause_ = min_pause / 2;
  clock::time_point until_{};
};

// The one error said for a reject the dead-letter queue refuses for good.
inline std::string sqs_undeliverable_text(std::string_view error, std::string_view reason,
                                          bool redrive) {
  return "the dead-letter queue refuses this message for good, so it stays in the queue (" +
         std::string(redrive ? "left to its RedrivePolicy" : "hidden for as long as SQS allows") +
         "; said once, not sent again): " + std::string(error) +
         " (reject reason: " + sqs_attribute_text(reason, 200) + ")";
}

// A bounded set of message ids, the settler's memory of what was said or
// sent: past `limit` ids it forgets them all, so a consumer that meets that
// many says some things again, and keeps no more.
class sqs_message_ids {
 public:
  bool contains(const std::string& message_id) const { return ids_.contains(message_id); }
  void add(const std::string& message_id) {
    if (ids_.size() >= limit)
      ids_.clear();
    ids_.insert(message_id);
  }
  // True (once) when `message_id` was added.
  bool take(const std::string& message_id) { return ids_.erase(message_id) > 0; }

  static constexpr std::size_t limit = 10000;

 private:
  std::unordered_set<std::string> ids_;
};

// Where the rejects go (sqs_queue_setup.hpp).
struct sqs_dead_letter_queue {
  std::string url;
  bool fifo = false;
  std::size_t max_size = sqs_default_message_size;
};

// The rejects bound for the dead-letter queue until a flush takes them, and
// how they are sent. The messages the dead-letter queue refused for good
// (sqs_settling::undeliverable_) are kept by the caller, under its lock: send_all()
// runs on the settler thread, reject() on the poll thread
// (sqs_settling.hpp).
class sqs_dead_letters {
 public:
  struct rejected {
    sqs_ticket ticket{};
    std::string reason{};
    std::string body{};
    std::string group_id{};
    std::int64_t received_ms = 0;
  };

  void queue(rejected item) { queued_.push_back(std::move(item)); }
  std::vector<rejected> take() { return std::exchange(queued_, {}); }
  bool empty() const noexcept { return queued_.empty(); }

  // What the settler keeps between calls of send_all().
  struct sender_state {
    sqs_dead_letter_rest rest{};
    // Ids whose send failed after it may have reached the queue: the next
    // send of one is a resend, and said (sqs_resent_text).
    sqs_message_ids unsure{};
  };

  // Sends each of `items`, unless the queue is resting after a failure
  // (sqs_dead_letter_rest). One sent goes to sent(ticket), to be deleted;
  // one not sent to not_deleted(message id) and is reported in failures; one
  // refused for good also to keep(ticket, received_ms), said once and not
  // sent again (`redrive`: the queue has a RedrivePolicy to leave it to).
  // A resend after a send that may have reached the queue goes to
  // warn(text).
  template <class Client, class Sent, class NotDeleted, class Keep, class Warn>
  static void send_all(const sqs_dead_letter_queue& to, std::vector<rejected> items, Client& client,
                       bool redrive, sender_state& state, std::vector<settle_failure>& failures,
                       Sent sent, NotDeleted not_deleted, Keep keep, Warn warn) {
    sqs_dead_letter_rest& rest = state.rest;
    for (auto& item : items) {
      const auto now = sqs_dead_letter_rest::clock::now();
      if (rest.resting(now)) {
        not_deleted(item.ticket.message_id);
        failures.push_back(
            {.action = settle_action::reject,
             .name = item.ticket.message_id,
             .reason = "not sent: the dead-letter queue failed just before; tried again in " +
                       std::to_string(rest.left(now).count()) +
                       " ms (the message comes back after its visibility timeout)"});
        continue;
      }
      const auto [error, for_good, twice] =
          sqs_send_dead_letter(client, to.url, to.fifo, to.max_size, item.body,
                               item.ticket.message_id, item.group_id, item.reason);
      if (error.empty()) {
        rest.sent();
        if (state.unsure.take(item.ticket.message_id) || twice)
          warn(sqs_resent_text(item.ticket.message_id, to.fifo));
        sent(std::move(item.ticket));
        continue;
      }
      if (twice)
        state.unsure.add(item.ticket.message_id);
      not_deleted(item.ticket.message_id);
      if (!for_good) {
        rest.failed(sqs_dead_letter_rest::clock::now());
        failures.push_back({.action = settle_action::reject,
                            .name = item.ticket.message_id,
                            .reason = "sending to the dead-letter queue failed: " + error});
        continue;
      }
      failures.push_back({.action = settle_action::reject,
                          .name = item.ticket.message_id,
                          .reason = sqs_undeliverable_text(error, item.reason, redrive)});
      keep(std::move(item.ticket), item.received_ms);
    }
  }

 private:
  std::vector<rejected> queued_;
};

// What one flush hands to sqs_queue_source's settler thread
// (background_settler.hpp): merged in order while it waits.
struct sqs_settle_work {
  std::vector<sqs_settlement> deletes{};
  std::vector<sqs_settlement> visibility_changes{};
  std::vector<sqs_dead_letters::rejected> rejects{};
  // Deletes of copies delivered again, kept only if their message is still
  // deleted once the rejects are sent (sqs_deliveries::still_deleted).
  std::vector<sqs_settlement> copies{};
  // Handed in this order (sqs_settling), 1 on; merged work has the later's.
  std::uint64_t number = 0;

  void merge(sqs_settle_work later) {
    number = later.number;
    append(deletes, later.deletes);
    append(visibility_changes, later.visibility_changes);
    append(rejects, later.rejects);
    append(copies, later.copies);
  }
  std::size_t size() const noexcept {
    return deletes.size() + visibility_changes.size() + rejects.size() + copies.size();
  }
  bool empty() const noexcept { return size() == 0; }

 private:
  template <class T>
  static void append(std::vector<T>& to, std::vector<T>& from) {
    to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
  }
};

}  // namespace widget_consumer::detail
