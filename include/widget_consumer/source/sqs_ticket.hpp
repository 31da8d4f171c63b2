#pragma once
// sqs_queue_source's ticket (sqs_queue.hpp): what the consumer hands back to
// ack, release or reject a message.

#include <cstdint>
#include <string>

namespace widget_consumer {

/// The receipt handle, and the message id for logs and failures.
struct sqs_ticket {
  /// Of this delivery. SQS deletes a message only with the newest receipt
  /// handle, so the source settles with the newest one it received since.
  std::string receipt_handle{};
  std::string message_id{};  ///< for logs and settle failures
  /// Which hand-out of the source this is; 0 = not handed out by a source
  /// (built from a receipt handle got elsewhere: SQS decides what it settles).
  std::uint64_t delivery = 0;
};

}  // namespace widget_consumer
