#pragma once
// The bookkeeping behind sqs_queue_source's settling, apart from its threads:
// the queued entries, the batch runner with its retries, and the memory of
// recent settlements that tells a harmless duplicate delivery from a ticket
// settled twice.

#include "../../concepts.hpp"

#include "../../aws/sqs.hpp"

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

// The receipt handle, and the message id for logs and failures.
struct sqs_ticket {
  // Of this delivery. SQS deletes a message only with the newest receipt
  // handle, so the source settles with the newest one it received since.
  std::string receipt_handle;
  std::string message_id;
  // Which hand-out of the source this is; 0 = not handed out by a source.
  std::uint64_t delivery = 0;
};

namespace detail {

// SQS limits message attribute values to XML-safe characters; reasons quote
// request bodies, so control characters become '?' and the length is capped
// at a UTF-8 boundary.
inline std::string sqs_attribute_text(std::string_view text, std::size_t limit = 1024) {
  std::string result;
  result.reserve(std::min(text.size(), limit));
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    result.push_back(byte < 0x20 && c != '\t' && c != '\n' && c != '\r' ? '?' : c);
  }
  if (result.size() > limit) {
    std::size_t cut = limit;
    while (cut > 0 && (static_cast<unsigned char>(result[cut]) & 0xC0) == 0x80)
      --cut;
    result.resize(cut);
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
  std::string receipt_handle;  // the newest received
  std::uint64_t delivery = 0;  // the ticket handed out
  std::string body;            // kept only for a dead-letter queue
  std::string group_id;
  std::int64_t sent_ms = 0;  // SentTimestamp
};

// A message received, as the source keeps it in flight and hands it out as
// `delivery`.
inline std::pair<sqs_in_flight, received_request<sqs_ticket>> sqs_hand_out(aws::sqs_message message,
                                                                           std::uint64_t delivery,
                                                                           bool keep_body) {
  sqs_in_flight entry{message.receipt_handle, delivery, {}, {}, 0};
  if (const auto group = message.attribute("MessageGroupId"))
    entry.group_id = std::string(*group);
  if (const auto sent = message.attribute("SentTimestamp"))
    std::from_chars(sent->data(), sent->data() + sent->size(), entry.sent_ms);
  if (keep_body)
    entry.body = message.body;
  received_request<sqs_ticket> request;
  request.name = message.message_id;
  request.ordering_key = entry.group_id;
  request.receive_count = static_cast<std::uint32_t>(std::max(message.receive_count(), 1));
  request.ticket = {message.receipt_handle, message.message_id, delivery};
  request.body = std::move(message.body);
  return {std::move(entry), std::move(request)};
}

// One queued DeleteMessageBatch or ChangeMessageVisibilityBatch entry.
struct sqs_settlement {
  sqs_ticket ticket;
  settle_action action = settle_action::ack;
  int visibility = 0;
  // The delete of a copy delivered again after its message was settled:
  // if it fails the copy just comes back, so it is not reported.
  bool duplicate = false;
};

inline constexpr int sqs_settle_attempts = 3;

// Runs `call` over `entries` in chunks of 10; entries that fail (in the
// answer or because the whole call threw) are tried again, twice, then
// reported.
template <class Call>
void run_sqs_batches(std::vector<sqs_settlement>& entries, Call call, std::string_view operation,
                     std::vector<settle_failure>& failures) {
  {
    // SQS refuses a whole batch that names one receipt handle twice.
    std::unordered_set<std::string> seen;
    std::erase_if(entries, [&](const sqs_settlement& each) {
      return !seen.insert(each.ticket.receipt_handle).second;
    });
  }
  std::vector<std::string> reasons;
  for (int attempt = 1; !entries.empty(); ++attempt) {
    std::vector<sqs_settlement> failed;
    reasons.clear();
    for (std::size_t begin = 0; begin < entries.size();
         begin += aws::sqs_client::max_batch_entries) {
      const auto end = std::min(entries.size(), begin + aws::sqs_client::max_batch_entries);
      const std::span<const sqs_settlement> chunk(entries.data() + begin, end - begin);
      try {
        for (const auto& failure : call(chunk)) {
          if (failure.index >= chunk.size())
            continue;
          failed.push_back(chunk[failure.index]);
          reasons.push_back(std::string(operation) + ": " + failure.code + ": " + failure.message);
        }
      } catch (const std::exception& e) {
        for (const auto& each : chunk) {
          failed.push_back(each);
          reasons.push_back(std::string(operation) + ": " + e.what());
        }
      }
    }
    if (failed.empty() || attempt >= sqs_settle_attempts) {
      for (std::size_t i = 0; i < failed.size(); ++i)
        if (!failed[i].duplicate)
          failures.push_back({failed[i].action, failed[i].ticket.message_id, reasons[i]});
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{50 * attempt});
    entries = std::move(failed);
  }
}

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
