#pragma once
// What sqs_queue_source learns of its queues before it starts: the queue's
// URL and attributes, the dead-letter queue's, and so how a reject is done.
// What retrying cannot fix (no such queue, credentials refused) comes out as
// unrecoverable_error, naming the queue, region, endpoint and identity.

#include <widget_consumer/aws/access_check.hpp>
#include <widget_consumer/aws/sqs.hpp>
#include <widget_consumer/source/detail/sqs_dead_letter.hpp>
#include <widget_consumer/source/detail/sqs_local_release.hpp>
#include <widget_consumer/source/detail/sqs_settlement.hpp>
#include <widget_consumer/source/sqs_queue_options.hpp>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <exception>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace widget_consumer::detail {

struct sqs_queue_facts {
  std::string url;
  bool fifo = false;
  int max_receive_count = 0;   // of the queue's RedrivePolicy; 0 = none
  int visibility_seconds = 0;  // the option, or the queue's attribute
  sqs_reject_mode reject_mode = sqs_reject_mode::dead_letter_queue;
  std::string dead_letter_url;
  bool dead_letter_fifo = false;
  std::size_t dead_letter_size = sqs_default_message_size;
};

template <class Number>
void sqs_read_number(std::string_view text, Number& number) {
  std::from_chars(text.data(), text.data() + text.size(), number);
}

inline void sqs_open_dead_letter_queue(aws::sqs_client& client, const std::string& queue,
                                       sqs_queue_facts& facts) {
  aws::with_access_check(
      client.service().config(), "cannot use the dead-letter queue " + queue,
      "that the queue exists in this region and that these credentials may send to it", [&] {
        facts.dead_letter_url = client.get_queue_url(queue);
        const std::vector<std::string> names{"FifoQueue", "MaximumMessageSize"};
        const auto attributes = client.get_queue_attributes(facts.dead_letter_url, names);
        facts.dead_letter_fifo = sqs_is_fifo(facts.dead_letter_url, attributes);
        if (const auto size = attributes.find("MaximumMessageSize"); size != attributes.end())
          sqs_read_number(size->second, facts.dead_letter_size);
      });
}

// DECISION, no dead-letter queue and no RedrivePolicy: a reject could only
// drop the request, which the design forbids, so such a queue is refused
// (std::invalid_argument) unless options.rejects_file names a file to keep
// the rejects in, or options.keep_rejected leaves them in the queue.
inline sqs_queue_facts sqs_open_queue(aws::sqs_client& client, std::string_view queue,
                                      const sqs_queue_options& options,
                                      std::string_view access_advice) {
  sqs_queue_facts facts;
  const auto attributes = aws::with_access_check(
      client.service().config(), "cannot use the SQS queue " + std::string(queue), access_advice,
      [&] {
        facts.url = client.get_queue_url(queue);
        const std::vector<std::string> names{"FifoQueue", "RedrivePolicy", "VisibilityTimeout"};
        return client.get_queue_attributes(facts.url, names);
      });
  facts.fifo = sqs_is_fifo(facts.url, attributes);
  if (const auto policy = attributes.find("RedrivePolicy"); policy != attributes.end())
    facts.max_receive_count = sqs_max_receive_count(policy->second);
  facts.visibility_seconds = static_cast<int>(options.visibility_timeout.count());
  if (facts.visibility_seconds == 0)
    if (const auto found = attributes.find("VisibilityTimeout"); found != attributes.end())
      sqs_read_number(found->second, facts.visibility_seconds);
  if (!options.dead_letter_queue.empty()) {
    facts.reject_mode = sqs_reject_mode::dead_letter_queue;
    sqs_open_dead_letter_queue(client, options.dead_letter_queue, facts);
  } else if (attributes.contains("RedrivePolicy")) {
    facts.reject_mode = sqs_reject_mode::redrive_policy;
  } else if (!options.rejects_file.empty()) {
    facts.reject_mode = sqs_reject_mode::local_file;
  } else if (options.keep_rejected) {
    facts.reject_mode = sqs_reject_mode::keep_in_queue;
  } else {
    throw std::invalid_argument(
        "SQS queue " + facts.url +
        " has no RedrivePolicy and no dead-letter queue was given, so an invalid request "
        "could not be moved aside: give a dead-letter queue (sqs_queue_options::"
        "dead_letter_queue), add a RedrivePolicy to the queue, or name a file for rejected "
        "requests (sqs_queue_options::rejects_file)");
  }
  return facts;
}

// Received messages waiting for poll(): options.buffer_size, or one full
// receive per receiver; at least one full receive.
inline std::size_t sqs_buffer_capacity(const sqs_queue_options& options) {
  const auto per_receive = static_cast<std::size_t>(options.max_messages);
  return std::max(options.buffer_size != 0 ? options.buffer_size : options.receivers * per_receive,
                  per_receive);
}

// Ids for ReceiveRequestAttemptId (aws/sqs.hpp): 32 random hex digits,
// one generator per receiver thread.
class sqs_attempt_ids {
 public:
  std::string next() {
    static constexpr char digits[] = "0123456789abcdef";
    std::string id;
    for (int half = 0; half < 2; ++half) {
      auto bits = engine_();
      for (int i = 0; i < 16; ++i, bits >>= 4)
        id += digits[bits & 0xF];
    }
    return id;
  }

 private:
  std::mt19937_64 engine_{std::random_device{}()};
};

inline aws::sqs_receive_options sqs_receive_options_for(const sqs_queue_options& options,
                                                        int visibility_seconds) {
  aws::sqs_receive_options receive;
  receive.max_messages = options.max_messages;
  receive.wait_time_seconds = static_cast<int>(options.wait_time.count());
  if (visibility_seconds > 0)
    receive.visibility_timeout = visibility_seconds;
  return receive;
}

// What poll() throws for a failed receive: unrecoverable_error for what
// retrying cannot fix (the queue deleted, the credentials expired for good),
// which stops the consumer; any other is counted.
inline std::exception_ptr sqs_receive_error(const aws::client_config& config,
                                            const std::string& queue_url, const std::exception& e,
                                            std::string_view access_advice) {
  if (aws::retrying_cannot_fix(e))
    return std::make_exception_ptr(aws::unrecoverable(
        config, "cannot receive from the SQS queue " + queue_url, e, access_advice));
  return std::make_exception_ptr(
      std::runtime_error("SQS receive from " + queue_url + ": " + e.what()));
}

}  // namespace widget_consumer::detail
