#pragma once
// What a request source hands the consumer (received_request) and what it
// reports when settling one did not take effect (settle_failure): the
// vocabulary of concepts.hpp's request_source.

#include <cstdint>
#include <string>
#include <string_view>

namespace widget_consumer {

/// One request as a source delivers it. The ticket is opaque to the consumer:
/// it only moves it back into ack/release/reject.
template <class Ticket>
struct received_request {
  std::string body;  ///< the request's JSON text
  Ticket ticket;     ///< the source's handle for settling it
  /// For logs: the S3 key, the SQS message id, the file name.
  std::string name;
  /// How many times this request has been delivered, this one included
  /// (SQS ApproximateReceiveCount). Sources that cannot tell count their own
  /// deliveries or say 1.
  std::uint32_t receive_count = 1;
  /// Where it stands in the source's order, for the store's fence
  /// (position.hpp); "" when the source cannot tell, and then it is applied
  /// unfenced.
  std::string position{};
};

/// What the consumer did with a delivery: confirmed, handed back, or moved aside.
enum class settle_action { ack, release, reject };

/// An ack, release or reject that did not take effect. The request is still
/// in the source (at-least-once), so it will be delivered again.
struct settle_failure {
  settle_action action = settle_action::ack;  ///< which settlement failed
  std::string name;                           ///< received_request::name
  std::string reason;                         ///< never holds credentials
};

/// A request this source released earlier that it will not deliver again to
/// this consumer: another consumer has it now (the S3 source's partition of
/// its widget went elsewhere). The consumer stops holding the widget's later
/// requests behind it (concepts.hpp, release_forgetting).
struct forgotten_release {
  std::string name;       ///< received_request::name
  std::string widget_id;  ///< the widget it was released for
};

/// "ack", "release" or "reject", for logs.
inline std::string_view to_string(settle_action action) noexcept {
  switch (action) {
    case settle_action::ack:
      return "ack";
    case settle_action::release:
      return "release";
    case settle_action::reject:
      return "reject";
  }
  return "unknown";
}

}  // namespace widget_consumer
