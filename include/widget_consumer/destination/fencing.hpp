#pragma once
// How a store fences (position.hpp, concepts.hpp's position_fencing): on by
// default; off (--no-fencing) writes exactly the course's layout, with no
// position and no tombstone, and a stalled consumer, a replayed request or a
// duplicate delivery can then move a widget backwards (RELIABILITY.md).

#include <chrono>

namespace widget_consumer {

/// Whether a store fences its writes by position, and how long deletes are remembered.
struct fencing_options {
  bool enabled = true;  ///< false: unfenced writes, the course's exact layout
  /// How long a delete's tombstone is kept (DynamoDB: the _wc_expires TTL
  /// attribute; S3: for a lifecycle rule on the tombstone prefix; PostgreSQL:
  /// the clean-up's age). A create replayed later than this after its
  /// widget's delete finds no tombstone and is applied.
  std::chrono::seconds tombstone_retention = std::chrono::hours(24 * 30);
};

}  // namespace widget_consumer
