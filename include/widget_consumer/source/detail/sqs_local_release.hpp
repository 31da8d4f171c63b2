#pragma once
// Releases sqs_queue_source keeps to itself on a queue with a RedrivePolicy.
//
// SQS counts every receive against the policy's maxReceiveCount, ours
// included: a release (ChangeMessageVisibility to the delay) and the receive
// that brings the message back burn one, so a store outage, a widget held
// behind a failure or a standard queue's not-found retries would send a
// valid request to the dead-letter queue for no reason of its own. So on such
// a queue a release keeps the message in flight (the heartbeat goes on
// extending its visibility, as for work in progress) and hands it out again
// here once its delay has passed, with its receive count plus one: no
// receive is burnt, and a FIFO group stays where it was. Only a crash, a stop
// or a heartbeat SQS refused gives it back to SQS.

#include <widget_consumer/concepts.hpp>
#include <widget_consumer/source/detail/sqs_settlement.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace widget_consumer::detail {

class sqs_local_releases {
 public:
  using clock = std::chrono::steady_clock;

  // The receive count `message_id`'s latest hand-out carried.
  void handed(const std::string& message_id, std::uint32_t receive_count) {
    counts_[message_id] = receive_count;
  }
  std::uint32_t count_of(const std::string& message_id) const {
    const auto found = counts_.find(message_id);
    return found == counts_.end() ? 1 : found->second;
  }
  void forget(const std::string& message_id) { counts_.erase(message_id); }

  void hold(received_request<sqs_ticket> request, clock::time_point due) {
    counts_[request.name] = request.receive_count;
    held_.push_back({due, std::move(request)});
    ++kept_;
  }

  // Those whose delay has passed, oldest release first, up to max.
  std::vector<received_request<sqs_ticket>> take_due(clock::time_point now, std::size_t max) {
    std::vector<received_request<sqs_ticket>> due;
    for (auto it = held_.begin(); it != held_.end() && due.size() < max;) {
      if (it->due <= now) {
        due.push_back(std::move(it->request));
        it = held_.erase(it);
      } else {
        ++it;
      }
    }
    return due;
  }

  // When the next one is due; `otherwise` when none is held.
  clock::time_point next_due(clock::time_point otherwise) const {
    for (const auto& each : held_)
      otherwise = std::min(otherwise, each.due);
    return otherwise;
  }

  void clear() {
    held_.clear();
    counts_.clear();
  }
  std::size_t held() const noexcept { return held_.size(); }
  // Releases kept here since the start: receives not burnt.
  std::uint64_t kept() const noexcept { return kept_; }

 private:
  struct entry {
    clock::time_point due;
    received_request<sqs_ticket> request;
  };
  std::deque<entry> held_;
  std::unordered_map<std::string, std::uint32_t> counts_;
  std::uint64_t kept_ = 0;
};

// maxReceiveCount of a RedrivePolicy (JSON; SQS gives it as a number or a
// string); 0 when it has none.
inline int sqs_max_receive_count(std::string_view policy) {
  boost::system::error_code error;
  const boost::json::value parsed = boost::json::parse(policy, error);
  if (error || !parsed.is_object())
    return 0;
  const auto* count = parsed.as_object().if_contains("maxReceiveCount");
  if (count == nullptr)
    return 0;
  if (count->is_int64())
    return static_cast<int>(count->as_int64());
  int value = 0;
  if (count->is_string())
    std::from_chars(count->as_string().data(),
                    count->as_string().data() + count->as_string().size(), value);
  return value;
}

// The one warning said at start-up when the queue's maxReceiveCount leaves
// too little room: every receive counts, so a request needs as many as the
// consumer may take for it. Releases kept here burn none, but a stop, a crash
// or a refused heartbeat gives a message back to SQS, and a standard queue's
// not-found retries give up only at `max_receives`. "" = none.
inline std::string sqs_redrive_warning(int max_receive_count, bool local_release,
                                       std::uint32_t max_receives, bool fifo) {
  if (max_receive_count <= 0)
    return {};
  // Releases given back to SQS: every not-found retry and every hold bounce
  // (30 s of 1 s releases on a FIFO queue) burns a receive.
  // Kept releases burn none: one receive, and one more for a stop or crash.
  const int needed = local_release ? 2 : static_cast<int>(max_receives) + (fifo ? 30 : 0);
  if (max_receive_count >= needed)
    return {};
  return "the queue's RedrivePolicy moves a message to its dead-letter queue after " +
         std::to_string(max_receive_count) + " receives; with --max-receives " +
         std::to_string(max_receives) +
         (local_release
              ? std::string(" and one receive more for a stop or a crash")
              : std::string(", the heartbeat off (releases go back to SQS) and a 30 s hold")) +
         ", a valid request may need " + std::to_string(needed) +
         ": raise maxReceiveCount, or give a dead-letter queue (--dead-letter-queue) so "
         "invalid requests are moved by the consumer";
}

}  // namespace widget_consumer::detail
