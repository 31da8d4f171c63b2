#pragma once
// The SQS operations the request source, the tests and the demo need, over
// the SQS JSON protocol (X-Amz-Target: AmazonSQS.<Op>). Knows nothing of
// widgets: bodies are opaque strings, receipts opaque handles.
//
// Batch operations never hide a partial failure: every entry SQS refused comes
// back as an sqs_batch_failure naming the caller's index, and callers larger
// than SQS's batch limit (10) are split here so each caller sees one list.

#include <widget_consumer/aws/client.hpp>
#include <widget_consumer/aws/crypto.hpp>
#include <widget_consumer/aws/error.hpp>
#include <widget_consumer/aws/response.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <iterator>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace widget_consumer::aws {

/// One received message. `attributes` holds the system attributes asked for
/// (ApproximateReceiveCount, MessageGroupId, SequenceNumber, ...);
/// `message_attributes` the sender's String and Number attributes asked for
/// (Binary ones are left out).
struct sqs_message {
  std::string message_id;      ///< SQS's id, unique per message
  std::string receipt_handle;  ///< names this receipt: deletes and visibility changes use it
  std::string body;            ///< the message's text
  std::map<std::string, std::string, std::less<>> attributes;  ///< system attributes: name -> value
  /// Sender's attributes: name -> value.
  std::map<std::string, std::string, std::less<>> message_attributes;

  /// A system attribute's value; nullopt when not returned.
  std::optional<std::string_view> attribute(std::string_view name) const {
    const auto found = attributes.find(name);
    if (found == attributes.end())
      return std::nullopt;
    return found->second;
  }

  /// A sender's message attribute's value; nullopt when not returned.
  std::optional<std::string_view> message_attribute(std::string_view name) const {
    const auto found = message_attributes.find(name);
    if (found == message_attributes.end())
      return std::nullopt;
    return found->second;
  }

  /// ApproximateReceiveCount, or 0 when it was not requested or is unreadable.
  int receive_count() const {
    const auto text = attribute("ApproximateReceiveCount");
    int count = 0;
    if (text)
      std::from_chars(text->data(), text->data() + text->size(), count);
    return count;
  }
};

/// What a ReceiveMessage asks for.
struct sqs_receive_options {
  int max_messages = 10;                  ///< 1..10 (SQS's limit)
  std::optional<int> wait_time_seconds;   ///< 0..20; long polling when > 0
  std::optional<int> visibility_timeout;  ///< seconds hidden; unset: the queue's
  /// The system attributes to return: the consumer's defaults.
  std::vector<std::string> system_attribute_names = {"ApproximateReceiveCount", "MessageGroupId",
                                                     "SequenceNumber", "SentTimestamp"};
  /// The sender's message attributes to return: names, or "All"; none = none.
  std::vector<std::string> message_attribute_names;
  /// FIFO queues: a receive made again with the same id within the visibility
  /// timeout gets the same messages back, so a receive whose answer was lost
  /// does not leave them hidden (and their groups blocked). "" = not sent.
  std::string receive_request_attempt_id;
};

/// MessageGroupId and MessageDeduplicationId apply to FIFO queues only; empty
/// means "not sent".
struct sqs_send_options {
  std::string message_group_id;          ///< FIFO: the group kept in order
  std::string message_deduplication_id;  ///< FIFO: sends with one id in 5 min are one
  std::optional<int> delay_seconds;      ///< seconds before it can be received
  /// Sent as String message attributes (at most 10; values XML-safe text).
  std::map<std::string, std::string, std::less<>> message_attributes;
};

/// What SQS said of a message it took.
struct sqs_sent_message {
  std::string message_id;       ///< SQS's id for it
  std::string sequence_number;  ///< FIFO queues only
  /// Sent by a retry after an attempt that may have taken effect
  /// (http_response::after_unknown_outcome): a standard queue may hold the
  /// message twice.
  bool after_unknown_outcome = false;
};

/// One message of a SendMessageBatch.
struct sqs_send_entry {
  std::string body;          ///< the message's text
  sqs_send_options options;  ///< its group, deduplication id, delay, attributes
};

/// One entry of a ChangeMessageVisibilityBatch.
struct sqs_visibility_change {
  std::string receipt_handle;  ///< the receipt whose message to hide or show
  int visibility_timeout = 0;  ///< seconds from now; 0 = visible now
};

/// An entry of a batch call that SQS did not carry out. `index` is the entry's
/// position in the caller's span.
struct sqs_batch_failure {
  std::size_t index = 0;      ///< the entry's position in the caller's span
  std::string code;           ///< SQS's error code
  std::string message;        ///< SQS's message
  bool sender_fault = false;  ///< true: the entry is wrong, a retry will fail too
  /// The answer came to a retry after an attempt that may have taken effect
  /// (http_response::after_unknown_outcome): the entry may be done already.
  bool after_unknown_outcome = false;
};

/// The answer to a SendMessageBatch: what was sent and what failed.
struct sqs_send_batch_result {
  std::vector<std::optional<sqs_sent_message>> sent;  ///< one per entry; empty if it failed
  std::vector<sqs_batch_failure> failed;              ///< the entries SQS refused
};

namespace detail {

// The readers of the JSON answers, pure functions of the parsed body so that
// tests and fuzzers reach them without a server; errors as response.hpp says.

inline std::vector<sqs_message> sqs_read_messages(const response_origin& origin,
                                                  const boost::json::object& response) {
  std::vector<sqs_message> messages;
  // No "Messages" at all is SQS's way of saying "none this time".
  const auto* received = optional_array(origin, response, "Messages");
  if (received == nullptr)
    return messages;
  for (std::size_t i = 0; i < received->size(); ++i) {
    const auto path = "Messages[" + std::to_string(i) + "]";
    const auto& object = element_object(origin, (*received)[i], "Messages", i);
    sqs_message message{required_string(origin, object, "MessageId", path + ".MessageId"),
                        required_string(origin, object, "ReceiptHandle", path + ".ReceiptHandle"),
                        required_string(origin, object, "Body", path + ".Body"),
                        {},
                        {}};
    // A body altered on the way must not be applied: SQS sends its MD5. The
    // next ReceiveMessage gets other messages; this one comes back when its
    // visibility timeout ends.
    if (const auto* expected = optional_string(origin, object, "MD5OfBody", path + ".MD5OfBody");
        expected != nullptr && *expected != to_hex(aws::md5(message.body)))
      throw origin.malformed("message " + message.message_id +
                             ": body does not match its MD5OfBody (altered on the way)");
    if (const auto* attributes =
            optional_object(origin, object, "Attributes", path + ".Attributes"))
      for (const auto& [name, value] : *attributes) {
        if (!value.is_string())
          wrong_json_type(origin, path + ".Attributes." + std::string(name), value, "a string");
        message.attributes.emplace(std::string(name), std::string(value.get_string()));
      }
    if (const auto* attributes =
            optional_object(origin, object, "MessageAttributes", path + ".MessageAttributes"))
      for (const auto& [name, value] : *attributes) {
        const auto where = path + ".MessageAttributes." + std::string(name);
        if (!value.is_object())
          wrong_json_type(origin, where, value, "an object");
        if (const auto* text =
                optional_string(origin, value.get_object(), "StringValue", where + ".StringValue"))
          message.message_attributes.emplace(std::string(name), std::string(*text));
      }
    messages.push_back(std::move(message));
  }
  return messages;
}

// A batch answer's Successful and Failed lists, keyed by the Ids we chose:
// the caller's indexes begin..end, so failures map back exactly. Every entry
// must be in one of them; one in neither is reported as failed rather than
// taken for done. `on_success(index, entry)` sees each successful entry.
template <class OnSuccess>
void sqs_read_batch(const response_origin& origin, const boost::json::object& response,
                    std::size_t begin, std::size_t end, std::vector<sqs_batch_failure>& failures,
                    OnSuccess&& on_success) {
  std::vector<bool> answered(end - begin, false);
  auto index_of = [&](const boost::json::object& entry, const std::string& path) {
    const auto id = required_string(origin, entry, "Id", path + ".Id");
    std::size_t index = 0;
    const auto [ptr, ec] = std::from_chars(id.data(), id.data() + id.size(), index);
    if (ec != std::errc{} || ptr != id.data() + id.size() || index < begin || index >= end)
      throw origin.unexpected(path + ".Id \"" + id + "\" is not an entry of the batch");
    answered[index - begin] = true;
    return index;
  };
  if (const auto* successful = optional_array(origin, response, "Successful"))
    for (std::size_t i = 0; i < successful->size(); ++i) {
      const auto path = "Successful[" + std::to_string(i) + "]";
      const auto& entry = element_object(origin, (*successful)[i], "Successful", i);
      on_success(index_of(entry, path), entry, path);
    }
  if (const auto* failed = optional_array(origin, response, "Failed"))
    for (std::size_t i = 0; i < failed->size(); ++i) {
      const auto path = "Failed[" + std::to_string(i) + "]";
      const auto& entry = element_object(origin, (*failed)[i], "Failed", i);
      const auto index = index_of(entry, path);
      const auto* code = optional_string(origin, entry, "Code", path + ".Code");
      const auto* message = optional_string(origin, entry, "Message", path + ".Message");
      const auto* sender_fault = json_field(entry, "SenderFault");
      if (sender_fault != nullptr && !sender_fault->is_bool())
        wrong_json_type(origin, path + ".SenderFault", *sender_fault, "a boolean");
      failures.push_back({index, code ? std::string(*code) : std::string("Unknown"),
                          message ? std::string(*message) : std::string(),
                          sender_fault != nullptr && sender_fault->get_bool(),
                          origin.response.after_unknown_outcome});
    }
  for (std::size_t i = 0; i < answered.size(); ++i)
    if (!answered[i])
      failures.push_back({begin + i, "MissingFromResponse",
                          "SQS listed this entry neither as successful nor as failed", false});
}

inline std::vector<sqs_batch_failure> sqs_read_batch(const response_origin& origin,
                                                     const boost::json::object& response,
                                                     std::size_t begin, std::size_t end) {
  std::vector<sqs_batch_failure> failures;
  sqs_read_batch(origin, response, begin, end, failures,
                 [](std::size_t, const boost::json::object&, const std::string&) {});
  return failures;
}

}  // namespace detail

/// The SQS calls the sources, the producer and the tests make, on one service_client.
class sqs_client {
 public:
  static constexpr std::size_t max_batch_entries = 10;  ///< the most entries a batch call takes

  /// A client of SQS as `config` says.
  explicit sqs_client(client_config config) : client_("sqs", std::move(config)) {}

  /// The underlying client, for calls this class does not wrap.
  service_client& service() noexcept { return client_; }

  /// A queue given by URL is used as is; a name is resolved with GetQueueUrl.
  std::string get_queue_url(std::string_view name_or_url) {
    if (name_or_url.starts_with("https://") || name_or_url.starts_with("http://"))
      return std::string(name_or_url);
    return client_.call_json("AmazonSQS", "GetQueueUrl", {{"QueueName", name_or_url}}, name_or_url,
                             queue_url_of);
  }

  /// Stopping `cancel` ends a long poll at once (transport_error
  /// kind::cancelled). Messages SQS handed to the abandoned poll meanwhile are
  /// hidden until their visibility timeout ends: SQS (and moto) go on with a
  /// long poll whose caller hung up.
  std::vector<sqs_message> receive_message(std::string_view queue_url,
                                           const sqs_receive_options& options = {},
                                           std::stop_token cancel = {}) {
    if (options.max_messages < 1 || options.max_messages > 10)
      throw std::invalid_argument("SQS ReceiveMessage: MaxNumberOfMessages must be 1..10");
    boost::json::object request{{"QueueUrl", queue_url},
                                {"MaxNumberOfMessages", options.max_messages}};
    if (options.wait_time_seconds)
      request["WaitTimeSeconds"] = *options.wait_time_seconds;
    if (options.visibility_timeout)
      request["VisibilityTimeout"] = *options.visibility_timeout;
    if (!options.receive_request_attempt_id.empty())
      request["ReceiveRequestAttemptId"] = options.receive_request_attempt_id;
    if (!options.system_attribute_names.empty()) {
      boost::json::array names;
      for (const auto& name : options.system_attribute_names)
        names.emplace_back(name);
      request["MessageSystemAttributeNames"] = std::move(names);
    }
    if (!options.message_attribute_names.empty()) {
      boost::json::array names;
      for (const auto& name : options.message_attribute_names)
        names.emplace_back(name);
      request["MessageAttributeNames"] = std::move(names);
    }
    return client_.call_json("AmazonSQS", "ReceiveMessage", request, queue_url,
                             &detail::sqs_read_messages, std::move(cancel));
  }

  /// DeleteMessageBatch of up to 10 receipts; returns the entries that failed.
  std::vector<sqs_batch_failure> delete_message_batch(
      std::string_view queue_url, std::span<const std::string> receipt_handles) {
    return in_batches(receipt_handles.size(), [&](std::size_t begin, std::size_t end) {
      boost::json::array entries;
      for (auto i = begin; i < end; ++i)
        entries.push_back(
            boost::json::object{{"Id", std::to_string(i)}, {"ReceiptHandle", receipt_handles[i]}});
      return batch_call("DeleteMessageBatch", queue_url, std::move(entries), begin, end);
    });
  }

  /// ChangeMessageVisibility: hides the message for `visibility_timeout` seconds from now.
  void change_message_visibility(std::string_view queue_url, std::string_view receipt_handle,
                                 int visibility_timeout) {
    client_.call_json("AmazonSQS", "ChangeMessageVisibility",
                      {{"QueueUrl", queue_url},
                       {"ReceiptHandle", receipt_handle},
                       {"VisibilityTimeout", visibility_timeout}},
                      queue_url);
  }

  /// ChangeMessageVisibilityBatch of up to 10 changes; returns the entries that failed.
  std::vector<sqs_batch_failure> change_message_visibility_batch(
      std::string_view queue_url, std::span<const sqs_visibility_change> changes) {
    return in_batches(changes.size(), [&](std::size_t begin, std::size_t end) {
      boost::json::array entries;
      for (auto i = begin; i < end; ++i)
        entries.push_back(
            boost::json::object{{"Id", std::to_string(i)},
                                {"ReceiptHandle", changes[i].receipt_handle},
                                {"VisibilityTimeout", changes[i].visibility_timeout}});
      return batch_call("ChangeMessageVisibilityBatch", queue_url, std::move(entries), begin, end);
    });
  }

  /// SendMessage of `body`, with the FIFO ids, delay and attributes `options` holds.
  sqs_sent_message send_message(std::string_view queue_url, std::string_view body,
                                const sqs_send_options& options = {}) {
    boost::json::object request{{"QueueUrl", queue_url}, {"MessageBody", body}};
    add_send_options(request, options);
    return client_.call_json(
        "AmazonSQS", "SendMessage", request, queue_url,
        [](const response_origin& origin, const boost::json::object& response) {
          return sent_message(origin, response, {});
        });
  }

  /// SendMessageBatch of up to 10 messages; a refused entry is in the result, not thrown.
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
      return client_.call_json(
          "AmazonSQS", "SendMessageBatch",
          {{"QueueUrl", queue_url}, {"Entries", std::move(entries)}}, queue_url,
          [&](const response_origin& origin, const boost::json::object& response) {
            std::vector<sqs_batch_failure> failures;
            detail::sqs_read_batch(
                origin, response, begin, end, failures,
                [&](std::size_t index, const boost::json::object& entry, const std::string& path) {
                  result.sent[index] = sent_message(origin, entry, path + ".");
                });
            return failures;
          });
    });
    return result;
  }

  /// Names such as "RedrivePolicy", "FifoQueue", "VisibilityTimeout"; none
  /// means all. Attributes the queue does not have are absent from the map.
  std::map<std::string, std::string, std::less<>> get_queue_attributes(
      std::string_view queue_url, std::span<const std::string> names = {}) {
    boost::json::array requested;
    for (const auto& name : names)
      requested.emplace_back(name);
    if (requested.empty())
      requested.emplace_back("All");
    return client_.call_json(
        "AmazonSQS", "GetQueueAttributes",
        {{"QueueUrl", queue_url}, {"AttributeNames", std::move(requested)}}, queue_url,
        [](const response_origin& origin, const boost::json::object& response) {
          std::map<std::string, std::string, std::less<>> attributes;
          if (const auto* found = detail::optional_object(origin, response, "Attributes"))
            for (const auto& [name, value] : *found) {
              if (!value.is_string())
                detail::wrong_json_type(origin, "Attributes." + std::string(name), value,
                                        "a string");
              attributes.emplace(std::string(name), std::string(value.get_string()));
            }
          return attributes;
        });
  }

  /// For tests and the demo. A FIFO queue's name ends in ".fifo" and needs the
  /// attribute FifoQueue=true.
  std::string create_queue(std::string_view name,
                           const std::map<std::string, std::string, std::less<>>& attributes = {}) {
    boost::json::object request{{"QueueName", name}};
    if (!attributes.empty()) {
      boost::json::object values;
      for (const auto& [key, value] : attributes)
        values[key] = value;
      request["Attributes"] = std::move(values);
    }
    return client_.call_json("AmazonSQS", "CreateQueue", request, name, queue_url_of);
  }

  /// For tests and the demo.
  void delete_queue(std::string_view queue_url) {
    client_.call_json("AmazonSQS", "DeleteQueue", {{"QueueUrl", queue_url}}, queue_url);
  }

 private:
  std::vector<sqs_batch_failure> batch_call(std::string_view operation, std::string_view queue_url,
                                            boost::json::array entries, std::size_t begin,
                                            std::size_t end) {
    return client_.call_json(
        "AmazonSQS", operation, {{"QueueUrl", queue_url}, {"Entries", std::move(entries)}},
        queue_url, [&](const response_origin& origin, const boost::json::object& response) {
          return detail::sqs_read_batch(origin, response, begin, end);
        });
  }

  static std::string queue_url_of(const response_origin& origin,
                                  const boost::json::object& response) {
    auto url = detail::required_string(origin, response, "QueueUrl");
    if (url.empty())
      throw origin.unexpected("QueueUrl is empty");
    return url;
  }

  // SendMessage's answer, or one Successful entry of SendMessageBatch's.
  static sqs_sent_message sent_message(const response_origin& origin,
                                       const boost::json::object& response,
                                       const std::string& path) {
    const auto* sequence =
        detail::optional_string(origin, response, "SequenceNumber", path + "SequenceNumber");
    return {detail::required_string(origin, response, "MessageId", path + "MessageId"),
            sequence ? std::string(*sequence) : std::string(),
            origin.response.after_unknown_outcome};
  }

  static void add_send_options(boost::json::object& entry, const sqs_send_options& options) {
    if (!options.message_group_id.empty())
      entry["MessageGroupId"] = options.message_group_id;
    if (!options.message_deduplication_id.empty())
      entry["MessageDeduplicationId"] = options.message_deduplication_id;
    if (options.delay_seconds)
      entry["DelaySeconds"] = *options.delay_seconds;
    if (!options.message_attributes.empty()) {
      boost::json::object values;
      for (const auto& [name, value] : options.message_attributes)
        values[name] = boost::json::object{{"DataType", "String"}, {"StringValue", value}};
      entry["MessageAttributes"] = std::move(values);
    }
  }

  // Runs `send(begin, end)` over [0, count) in slices of SQS's batch limit and
  // gathers every slice's Failed entries.
  // `send` returns that slice's failures.
  template <class Send>
  static std::vector<sqs_batch_failure> in_batches(std::size_t count, Send send) {
    std::vector<sqs_batch_failure> failures;
    for (std::size_t begin = 0; begin < count; begin += max_batch_entries) {
      const auto end = std::min(count, begin + max_batch_entries);
      auto slice = send(begin, end);
      std::move(slice.begin(), slice.end(), std::back_inserter(failures));
    }
    return failures;
  }

  service_client client_;
};

}  // namespace widget_consumer::aws
