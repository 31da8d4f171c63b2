#pragma once
// What a bucket or a queue on the local AWS servers holds, as the
// integration tests read it back to compare with their expectations.

#include <widget_consumer/aws/s3.hpp>
#include <widget_consumer/aws/sqs.hpp>

#include <stdexcept>
#include <string>
#include <vector>

namespace widget_consumer::testing {

// Every key in `bucket` that `options` selects, across all pages, in S3's
// order. Bounded: a listing that never ends is an error, not a hang.
inline std::vector<std::string> list_all(aws::s3_client& s3, const std::string& bucket,
                                         aws::s3_list_options options = {}) {
  std::vector<std::string> keys;
  for (int page = 0; page < 1000; ++page) {
    auto listed = s3.list_objects_v2(bucket, options);
    keys.insert(keys.end(), listed.keys.begin(), listed.keys.end());
    if (!listed.has_more())
      return keys;
    options.continuation_token = listed.next_continuation_token;
  }
  throw std::runtime_error("listing " + bucket + " did not end after 1000 pages");
}

// The messages in the queue, visible and in flight, as SQS counts them.
inline int messages_in(aws::sqs_client& sqs, const std::string& url) {
  const std::vector<std::string> names{"ApproximateNumberOfMessages",
                                       "ApproximateNumberOfMessagesNotVisible"};
  const auto attributes = sqs.get_queue_attributes(url, names);
  return std::stoi(attributes.at("ApproximateNumberOfMessages")) +
         std::stoi(attributes.at("ApproximateNumberOfMessagesNotVisible"));
}

}  // namespace widget_consumer::testing
