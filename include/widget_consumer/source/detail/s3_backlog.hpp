#pragma once
// The S3 source's backlog (concepts.hpp, backlog_reporting): the requests it
// has listed and not started yet, for an autoscaler to scale consumers on
// (the metrics' widget_consumer_source_backlog). The source lists at most a
// page ahead of the keys it hands out, so the count stops growing at about
// two pages (page_size, 1,000 by default) plus the read-ahead: a bucket
// holding more shows as that much. Each consumer sharing a bucket counts
// the keys of every partition (their owner may stop), so an autoscaler
// takes the largest of the consumers' backlogs, not their sum.

#include <widget_consumer/source/detail/s3_object_window.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace widget_consumer::detail {

// Which keys of the request bucket are requests: not folder markers (keys
// ending in '/', made by consoles), not the rejected copies when they live
// in the request bucket, not the partition claims. An empty prefix is one
// the bucket does not have.
struct s3_request_keys {
  std::string_view rejected_prefix;
  std::string_view claim_prefix;

  bool holds(std::string_view key) const noexcept {
    if (key.empty() || key.ends_with('/'))
      return false;
    if (!rejected_prefix.empty() && key.starts_with(rejected_prefix))
      return false;
    return claim_prefix.empty() || !key.starts_with(claim_prefix);
  }
};

// The requests of the window's listing that started(key) does not call
// started already (handed out and not yet deleted, or left in place).
// started is called under the window's lock.
template <class Started>
std::uint64_t s3_backlog(s3_object_window& window, const s3_request_keys& requests,
                         Started&& started) {
  std::uint64_t count = 0;
  window.for_each_listed([&](const std::string& key) {
    if (requests.holds(key) && !started(key))
      ++count;
  });
  return count;
}

}  // namespace widget_consumer::detail
