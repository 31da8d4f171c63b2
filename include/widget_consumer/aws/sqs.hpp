#pragma once
// The SQS operations the request source, the tests and the demo need, over
// the SQS JSON protocol (X-Amz-Target: AmazonSQS.<Op>). Knows nothing of
// widgets: bodies are opaque strings, receipts opaque handles.
//
// Batch operations never hide a partial failure: every entry SQS refused comes
// back as an sqs_batch_failure naming the caller's index, and callers larger
// than SQS's batch limit (10) are split here so each caller sees one list.

#include "widget_consumer/aws/client.hpp"
#include "widget_consumer/aws/crypto.hpp"
#include "widget_consumer/aws/error.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace widget_consumer::aws {

// One received message. `attributes` holds the system attributes asked for
// (ApproximateReceiveCount, MessageGroupId, SequenceNumber, ...).
struct sqs_message {
  std::string message_id;
  std::string receipt_handle;
  std::string body;
  std::map<std::string, std::string, std::less<>> attributes;

  std::optional<std::string_view> attribute(std::string_view name) const {
    const auto found = attributes.find(name);
    if (found == attributes.end())
      return std::nullopt;
    return found->second;
  }

  // ApproximateReceiveCount, or 0 when it was not requested or is unreadable.
  int receive_count() const {
    const auto text = attribute("ApproximateReceiveCount");
    int count = 0;
    if (text)
      std::from_chars(text->data(), text->data() + text->size(), count);
    return count;
  }
};

struct sqs_receive_options {
  int max_messages = 10;                 // 1..10 (SQS's limit)
  std::optional<int> wait_time_seconds;  // 0..20; long polling when > 0
  std::optional<int> visibility_timeout;
  std::vector<std::string> system_attribute_names = {"ApproximateReceiveCount", "MessageGroupId",
                                                     "SequenceNumber", "SentTimestamp"};
};

// MessageGroupId and MessageDeduplicationId apply to FIFO queues only; empty
// means "not sent".
struct sqs_send_options {
  std::string message_group_id;
  std::string message_deduplication_id;
  std::optional<int> delay_seconds;
};

struct sqs_sent_message {
  std::string message_id;
  std::string sequence_number;  // FIFO queues only
};

struct sqs_send_entry {
  std::string body;
  sqs_send_options options;
};

struct sqs_visibility_change {
  std::string receipt_handle;
  int visibility_timeout = 0;
};

// An entry of a batch call that SQS did not carry out. `index` is the entry's
// position in the caller's span.
struct sqs_batch_failure {
  std::size_t index = 0;
  std::string code;
  std::string message;
  bool sender_fault = false;
};

struct sqs_send_batch_result {
  std::vector<std::optional<sqs_sent_message>> sent;  // one per entry; empty if it failed
  std::vector<sqs_batch_failure> failed;
};

namespace detail {

inline std::string sqs_string(const boost::json::object& object, std::string_view name) {
  const auto* value = object.if_contains(name);
  if (value == nullptr || !value->is_string())
    return {};
  return std::string(value->get_string());
}

inline const boost::json::object& sqs_object(const boost::json::value& value) {
  static const boost::json::object empty;
  const auto* object = value.if_object();
  return object != nullptr ? *object : empty;
}
// The result refers into `value`: a temporary would leave it dangling.
const boost::json::object& sqs_object(const boost::json::value&& value) = delete;

// SQS answers a batch with Successful and Failed lists keyed by the Id we
// chose; our Ids are the caller's indexes, so failures map back exactly.
inline void sqs_collect_failures(const boost::json::object& response,
                                 std::vector<sqs_batch_failure>& failures) {
  const auto* failed = response.if_contains("Failed");
  if (failed == nullptr || !failed->is_array())
    return;
  for (const auto& entry : failed->get_array()) {
    const auto& object = sqs_object(entry);
    const auto id = sqs_string(object, "Id");
    std::size_t index = 0;
    if (std::from_chars(id.data(), id.data() + id.size(), index).ec != std::errc{})
      throw std::runtime_error("SQS batch failure with an unknown Id: " + id);
    const auto* sender_fault = object.if_contains("SenderFault");
    failures.push_back(
        {index, sqs_string(object, "Code"), sqs_string(object, "Message"),
         sender_fault != nullptr && sender_fault->is_bool() && sender_fault->get_bool()});
  }
}

}  // namespace detail

class sqs_client {
 public:
  static constexpr std::size_t max_batch_entries = 10;

  explicit sqs_client(client_config config) : client_("sqs", std::move(config)) {}

  service_client& service() noexcept { return client_; }

  // A queue given by URL is used as is; a name is resolved with GetQueueUrl.
  std::string get_queue_url(std::string_view name_or_url) {
    if (name_or_url.starts_with("https://") || name_or_url.starts_with("http://"))
      return std::string(name_or_url);
    boost::json::object request{{"QueueName", name_or_url}};
    const auto response = call("GetQueueUrl", request, name_or_url);
    auto url = detail::sqs_string(detail::sqs_object(response), "QueueUrl");
    if (url.empty())
      throw std::runtime_error("SQS GetQueueUrl " + std::string(name_or_url) +
                               ": response without QueueUrl");
    return url;
  }

  std::vector<sqs_message> receive_message(std::string_view queue_url,
                                           const sqs_receive_options& options = {}) {
    if (options.max_messages < 1 || options.max_messages > 10)
      throw std::invalid_argument("SQS ReceiveMessage: MaxNumberOfMessages must be 1..10");
    boost::json::object request{{"QueueUrl", queue_url},
                                {"MaxNumberOfMessages", options.max_messages}};
    if (options.wait_time_seconds)
      request["WaitTimeSeconds"] = *options.wait_time_seconds;
    if (options.visibility_timeout)
      request["VisibilityTimeout"] = *options.visibility_timeout;
    if (!options.system_attribute_names.empty()) {
      boost::json::array names;
      for (const auto& name : options.system_attribute_names)
        names.emplace_back(name);
      request["MessageSystemAttributeNames"] = std::move(names);
    }
    const auto response = call("ReceiveMessage", request, queue_url);

    std::vector<sqs_message> messages;
    const auto* received = detail::sqs_object(response).if_contains("Messages");
    if (received == nullptr || !received->is_array())
      return messages;
    for (const auto& entry : received->get_array()) {
      const auto& object = detail::sqs_object(entry);
      sqs_message message{detail::sqs_string(object, "MessageId"),
                          detail::sqs_string(object, "ReceiptHandle"),
                          detail::sqs_string(object, "Body"),
                          {}};
      // A body altered in transit must not be applied: SQS sends its MD5.
      const auto expected_md5 = detail::sqs_string(object, "MD5OfBody");
      if (!expected_md5.empty() && expected_md5 != to_hex(aws::md5(message.body)))
        throw std::runtime_error("SQS ReceiveMessage " + std::string(queue_url) + ": message " +
                                 message.message_id + " body does not match its MD5OfBody");
      if (const auto* attributes = object.if_contains("Attributes");
          attributes != nullptr && attributes->is_object())
        for (const auto& [name, value] : attributes->get_object())
          if (value.is_string())
            message.attributes.emplace(std::string(name), std::string(value.get_string()));
      messages.push_back(std::move(message));
    }
    return messages;
  }

  std::vector<sqs_batch_failure> delete_message_batch(
      std::string_view queue_url, std::span<const std::string> receipt_handles) {
    return in_batches(receipt_handles.size(), [&](std::size_t begin, std::size_t end) {
      boost::json::array entries;
      for (auto i = begin; i < end; ++i)
        entries.push_back(
            boost::json::object{{"Id", std::to_string(i)}, {"ReceiptHandle", receipt_handles[i]}});
      return call("DeleteMessageBatch", {{"QueueUrl", queue_url}, {"Entries", std::move(entries)}},
                  queue_url);
    });
  }

  void change_message_visibility(std::string_view queue_url, std::string_view receipt_handle,
                                 int visibility_timeout) {
    call("ChangeMessageVisibility",
         {{"QueueUrl", queue_url},
          {"ReceiptHandle", receipt_handle},
          {"VisibilityTimeout", visibility_timeout}},
         queue_url);
  }

  std::vector<sqs_batch_failure> change_message_visibility_batch(
      std::string_view queue_url, std::span<const sqs_visibility_change> changes) {
    return in_batches(changes.size(), [&](std::size_t begin, std::size_t end) {
      boost::json::array entries;
      for (auto i = begin; i < end; ++i)
        entries.push_back(
            boost::json::object{{"Id", std::to_string(i)},
                                {"ReceiptHandle", changes[i].receipt_handle},
                                {"VisibilityTimeout", changes[i].visibility_timeout}});
      return call("ChangeMessageVisibilityBatch",
                  {{"QueueUrl", queue_url}, {"Entries", std::move(entries)}}, queue_url);
    });
  }

  sqs_sent_message send_message(std::string_view queue_url, std::string_view body,
                                const sqs_send_options& options = {}) {
    boost::json::object request{{"QueueUrl", queue_url}, {"MessageBody", body}};
    add_send_options(request, options);
    const auto value = call("SendMessage", request, queue_url);
    const auto& response = detail::sqs_object(value);
    return {detail::sqs_string(response, "MessageId"),
            detail::sqs_string(response, "SequenceNumber")};
  }

  sqs_send_batch_result send_message_batch(std::string_view queue_url,
                                           std::span<const sqs_send_entry> messages) {
    sqs_send_batch_result result;
    result.sent.resize(messages.size());
    result.failed = in_batches(messages.size(), [&](std::size_t begin, std::size_t end) {
      boost::json::array entries;
      for (auto i = begin; i < end; ++i) {
        boost::json::object entry{{"Id", std::to_string(i)}, {"MessageBody", messages[i].body}};
        add_send_options(entry, messages[i].options);
        entries.push_back(std::move(entry));
      }
      auto response = call("SendMessageBatch",
                           {{"QueueUrl", queue_url}, {"Entries", std::move(entries)}}, queue_url);
      if (const auto* successful = detail::sqs_object(response).if_contains("Successful");
          successful != nullptr && successful->is_array())
        for (const auto& entry : successful->get_array()) {
          const auto& object = detail::sqs_object(entry);
          const auto id = detail::sqs_string(object, "Id");
          std::size_t index = 0;
          std::from_chars(id.data(), id.data() + id.size(), index);
          if (index >= begin && index < end)
            result.sent[index] = sqs_sent_message{detail::sqs_string(object, "MessageId"),
                                                  detail::sqs_string(object, "SequenceNumber")};
        }
      return response;
    });
    return result;
  }

  // Names such as "RedrivePolicy", "FifoQueue", "VisibilityTimeout"; none
  // means all. Attributes the queue does not have are absent from the map.
  std::map<std::string, std::string, std::less<>> get_queue_attributes(
      std::string_view queue_url, std::span<const std::string> names = {}) {
    boost::json::array requested;
    for (const auto& name : names)
      requested.emplace_back(name);
    if (requested.empty())
      requested.emplace_back("All");
    const auto response =
        call("GetQueueAttributes",
             {{"QueueUrl", queue_url}, {"AttributeNames", std::move(requested)}}, queue_url);
    std::map<std::string, std::string, std::less<>> attributes;
    if (const auto* found = detail::sqs_object(response).if_contains("Attributes");
        found != nullptr && found->is_object())
      for (const auto& [name, value] : found->get_object())
        if (value.is_string())
          attributes.emplace(std::string(name), std::string(value.get_string()));
    return attributes;
  }

  // For tests and the demo. A FIFO queue's name ends in ".fifo" and needs the
  // attribute FifoQueue=true.
  std::string create_queue(std::string_view name,
                           const std::map<std::string, std::string, std::less<>>& attributes = {}) {
    boost::json::object request{{"QueueName", name}};
    if (!attributes.empty()) {
      boost::json::object values;
      for (const auto& [key, value] : attributes)
        values[key] = value;
      request["Attributes"] = std::move(values);
    }
    const auto response = call("CreateQueue", request, name);
    return detail::sqs_string(detail::sqs_object(response), "QueueUrl");
  }

 private:
  boost::json::value call(std::string_view operation, const boost::json::object& request,
                          std::string_view resource) {
    return client_.call_json("AmazonSQS", operation, request, resource);
  }

  static void add_send_options(boost::json::object& entry, const sqs_send_options& options) {
    if (!options.message_group_id.empty())
      entry["MessageGroupId"] = options.message_group_id;
    if (!options.message_deduplication_id.empty())
      entry["MessageDeduplicationId"] = options.message_deduplication_id;
    if (options.delay_seconds)
      entry["DelaySeconds"] = *options.delay_seconds;
  }

  // Runs `send(begin, end)` over [0, count) in slices of SQS's batch limit and
  // gathers every slice's Failed entries.
  template <class Send>
  static std::vector<sqs_batch_failure> in_batches(std::size_t count, Send send) {
    std::vector<sqs_batch_failure> failures;
    for (std::size_t begin = 0; begin < count; begin += max_batch_entries) {
      const auto end = std::min(count, begin + max_batch_entries);
      const boost::json::value response = send(begin, end);
      detail::sqs_collect_failures(detail::sqs_object(response), failures);
    }
    return failures;
  }

  service_client client_;
};

}  // namespace widget_consumer::aws
