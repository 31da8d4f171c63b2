#pragma once
// The options of sqs_queue_source (sqs_queue.hpp), and their checks.

#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <string>

namespace widget_consumer {

/// SQS's limit on how long a message may stay hidden.
inline constexpr int sqs_max_visibility_seconds = 43200;

/// How sqs_queue_source rejects (sqs_queue.hpp): to the dead-letter queue
/// given, to the queue's RedrivePolicy, or hidden in the queue
/// (sqs_queue_options::keep_rejected).
enum class sqs_reject_mode { dead_letter_queue, redrive_policy, local_file, keep_in_queue };

/// How sqs_queue_source receives, hides, extends and settles messages.
struct sqs_queue_options {
  /// WaitTimeSeconds of each ReceiveMessage, 0..20 (long polling when > 0).
  std::chrono::seconds wait_time{20};
  /// VisibilityTimeout of each ReceiveMessage and of each heartbeat extension,
  /// 0..43200. 0 = the queue's VisibilityTimeout attribute.
  std::chrono::seconds visibility_timeout{30};
  /// ReceiveMessage calls in flight at once, >= 1. On a FIFO queue SQS hands
  /// a message group to one receive at a time, so several keep the order.
  std::size_t receivers = 3;
  int max_messages = 10;  ///< per ReceiveMessage, 1..10
  /// Received messages waiting for poll(); 0 = receivers * max_messages.
  std::size_t buffer_size = 0;
  /// Name or URL of the queue rejects are sent to; "" = none (see sqs_queue.hpp).
  std::string dead_letter_queue;
  /// With no dead-letter queue and no RedrivePolicy: accept rejects left in
  /// the queue (hidden for 12 h, reported by flush()) instead of refusing.
  bool keep_rejected = false;
  /// With neither a dead-letter queue nor a RedrivePolicy: each reject is
  /// appended to this file (JSON Lines, flushed to the disk) and then deleted
  /// from the queue (detail/sqs_reject_file.hpp). Opened only then; takes
  /// precedence over keep_rejected.
  std::string rejects_file;
  bool heartbeat = true;  ///< extend the visibility of messages in flight
  /// On destruction, receives still in progress are given this long to end
  /// by themselves, then aborted (sqs_queue.hpp): unsettled messages are
  /// given back at once when they all ended, else once those cut short have
  /// ended at SQS (up to wait_time).
  std::chrono::milliseconds stop_grace{1000};
};

/// Throws std::invalid_argument naming the option out of SQS's range.
inline void validate_sqs_queue_options(const sqs_queue_options& options) {
  if (options.wait_time.count() < 0 || options.wait_time.count() > 20)
    throw std::invalid_argument("SQS wait time must be 0..20 s");
  if (options.visibility_timeout.count() < 0 ||
      options.visibility_timeout.count() > sqs_max_visibility_seconds)
    throw std::invalid_argument("SQS visibility timeout must be 0..43200 s");
  if (options.receivers == 0)
    throw std::invalid_argument("SQS source needs at least one receiver");
  if (options.max_messages < 1 || options.max_messages > 10)
    throw std::invalid_argument("SQS max messages per receive must be 1..10");
}

}  // namespace widget_consumer
