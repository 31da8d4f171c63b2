#include "widget_consumer/aws/sqs.hpp"

#include "support/emulator.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <vector>

// Every test runs against three local servers: moto twice ("plain" accepts
// any signature, "iam" verifies each SigV4 signature against the IAM user's
// key) and ElasticMQ, a second SQS implementation: what one forgives,
// another may not.

namespace widget_consumer::aws {
namespace {

using widget_consumer::testing::client_config_for;
using widget_consumer::testing::emulator;
using widget_consumer::testing::unique_name;

// -Wextra flags designated initializers that leave members out, so options
// are built by these helpers.
sqs_receive_options up_to(int max_messages, std::optional<int> visibility_timeout = {}) {
  sqs_receive_options options;
  options.max_messages = max_messages;
  options.visibility_timeout = visibility_timeout;
  return options;
}

sqs_receive_options waiting(int max_messages, int seconds) {
  auto options = up_to(max_messages);
  options.wait_time_seconds = seconds;
  return options;
}

sqs_send_options in_group(std::string group, std::string deduplication_id) {
  sqs_send_options options;
  options.message_group_id = std::move(group);
  options.message_deduplication_id = std::move(deduplication_id);
  return options;
}

std::string server_name(const ::testing::TestParamInfo<std::string>& param) {
  return param.param;
}

class sqs_client_test : public ::testing::TestWithParam<std::string> {
 protected:
  sqs_client_test()
      : sqs_(client_config_for(widget_consumer::testing::emulator_named(GetParam()))) {}

  std::string fifo_queue() {
    return sqs_.create_queue(unique_name("fifo") + ".fifo",
                             {{"FifoQueue", "true"}, {"ContentBasedDeduplication", "false"}});
  }

  sqs_client sqs_;
};

TEST_P(sqs_client_test, queue_url_from_a_name_or_a_url) {
  const auto name = unique_name("queue");
  const auto url = sqs_.create_queue(name);
  ASSERT_FALSE(url.empty());
  EXPECT_EQ(sqs_.get_queue_url(name), url);
  EXPECT_EQ(sqs_.get_queue_url(url), url);  // a URL needs no call
}

TEST_P(sqs_client_test, a_missing_queue_is_a_service_error_naming_it) {
  const auto name = unique_name("missing");
  try {
    sqs_.get_queue_url(name);
    FAIL() << "expected service_error";
  } catch (const service_error& error) {
    EXPECT_EQ(error.status(), 400);
    // The JSON protocol names it QueueDoesNotExist, the query protocol
    // AWS.SimpleQueueService.NonExistentQueue.
    const auto& code = error.code();
    EXPECT_TRUE(code.ends_with("QueueDoesNotExist") || code.ends_with("NonExistentQueue")) << code;
    EXPECT_NE(std::string(error.what()).find("SQS GetQueueUrl " + name), std::string::npos)
        << error.what();
  }
}

TEST_P(sqs_client_test, send_receive_and_delete_keep_the_body_exactly) {
  const auto url = sqs_.create_queue(unique_name("queue"));
  const std::string body =
      R"({"type":"create","owner":"Zoë Ünïcødé","label":"a \"quoted\" \\ label\n\ttab","x":"€𝄞"})";
  const auto sent = sqs_.send_message(url, body);
  EXPECT_FALSE(sent.message_id.empty());

  const auto messages = sqs_.receive_message(url, waiting(10, 1));
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].body, body);
  EXPECT_EQ(messages[0].message_id, sent.message_id);
  EXPECT_EQ(messages[0].receive_count(), 1);
  EXPECT_TRUE(messages[0].attribute("SentTimestamp").has_value());

  const std::vector<std::string> handles{messages[0].receipt_handle};
  EXPECT_TRUE(sqs_.delete_message_batch(url, handles).empty());
  EXPECT_TRUE(sqs_.receive_message(url, up_to(10)).empty());
}

TEST_P(sqs_client_test, receive_rejects_more_than_ten_messages) {
  EXPECT_THROW(sqs_.receive_message("http://127.0.0.1:1/q", up_to(11)), std::invalid_argument);
  EXPECT_THROW(sqs_.receive_message("http://127.0.0.1:1/q", up_to(0)), std::invalid_argument);
}

TEST_P(sqs_client_test, delete_batch_reports_the_entries_it_could_not_delete) {
  const auto url = sqs_.create_queue(unique_name("queue"));
  sqs_.send_message(url, "one");
  const auto messages = sqs_.receive_message(url, up_to(1));
  ASSERT_EQ(messages.size(), 1u);

  const std::vector<std::string> handles{"not-a-receipt-handle", messages[0].receipt_handle};
  const auto failures = sqs_.delete_message_batch(url, handles);
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].index, 0u);
  EXPECT_FALSE(failures[0].code.empty());
  EXPECT_TRUE(sqs_.receive_message(url, up_to(10)).empty());
}

TEST_P(sqs_client_test, batches_larger_than_ten_are_split_and_keep_fifo_order) {
  const auto url = fifo_queue();
  std::vector<sqs_send_entry> entries;
  for (int i = 0; i < 23; ++i)
    entries.push_back(
        {"message " + std::to_string(i), in_group("widget-1", "dedup-" + std::to_string(i))});
  const auto result = sqs_.send_message_batch(url, entries);
  EXPECT_TRUE(result.failed.empty());
  ASSERT_EQ(result.sent.size(), entries.size());
  for (const auto& sent : result.sent) {
    ASSERT_TRUE(sent.has_value());
    EXPECT_FALSE(sent->message_id.empty());
    if (GetParam() != std::string("elasticmq")) {  // ElasticMQ's answer leaves it out
      EXPECT_FALSE(sent->sequence_number.empty());
    }
  }

  std::vector<std::string> bodies;
  for (int round = 0; round < 10 && bodies.size() < entries.size(); ++round) {
    std::vector<std::string> handles;
    for (const auto& message : sqs_.receive_message(url, up_to(10))) {
      bodies.push_back(message.body);
      handles.push_back(message.receipt_handle);
      EXPECT_EQ(message.attribute("MessageGroupId"), "widget-1");
      EXPECT_TRUE(message.attribute("SequenceNumber").has_value());
    }
    // A FIFO group stays locked while messages are in flight: delete them.
    EXPECT_TRUE(sqs_.delete_message_batch(url, handles).empty());
  }
  ASSERT_EQ(bodies.size(), entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i)
    EXPECT_EQ(bodies[i], entries[i].body);
}

TEST_P(sqs_client_test, send_batch_reports_failed_entries_by_index) {
  const auto url = fifo_queue();
  // The second entry lacks the MessageGroupId every FIFO message needs.
  const std::vector<sqs_send_entry> entries{{"ok", in_group("g", "a")},
                                            {"no group", in_group("", "b")}};
  try {
    const auto result = sqs_.send_message_batch(url, entries);
    ASSERT_EQ(result.failed.size(), 1u);
    EXPECT_EQ(result.failed[0].index, 1u);
    EXPECT_TRUE(result.sent[0].has_value());
    EXPECT_FALSE(result.sent[1].has_value());
  } catch (const service_error& error) {
    // Some servers refuse the whole batch instead; either way nothing is hidden.
    EXPECT_EQ(error.status(), 400) << error.what();
  }
}

TEST_P(sqs_client_test, fifo_send_returns_a_sequence_number) {
  const auto url = fifo_queue();
  const auto sent = sqs_.send_message(url, "body", in_group("g", "d"));
  EXPECT_FALSE(sent.sequence_number.empty());
  const auto messages = sqs_.receive_message(url, up_to(10));
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].attribute("SequenceNumber"), sent.sequence_number);
  EXPECT_EQ(messages[0].attribute("MessageGroupId"), "g");
}

TEST_P(sqs_client_test, visibility_changes_make_a_message_visible_again) {
  const auto url = sqs_.create_queue(unique_name("queue"));
  sqs_.send_message(url, "first");
  sqs_.send_message(url, "second");

  auto messages = sqs_.receive_message(url, up_to(10, 60));
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_TRUE(sqs_.receive_message(url).empty());

  sqs_.change_message_visibility(url, messages[0].receipt_handle, 0);
  auto again = sqs_.receive_message(url, up_to(10, 60));
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].body, messages[0].body);
  EXPECT_EQ(again[0].receive_count(), 2);

  const std::vector<sqs_visibility_change> changes{
      {again[0].receipt_handle, 0}, {messages[1].receipt_handle, 0}, {"not-a-receipt-handle", 0}};
  const auto failures = sqs_.change_message_visibility_batch(url, changes);
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].index, 2u);
  EXPECT_EQ(sqs_.receive_message(url, up_to(10)).size(), 2u);
}

TEST_P(sqs_client_test, queue_attributes_include_redrive_policy_and_fifo) {
  const auto dead_letters = sqs_.create_queue(unique_name("dlq"));
  const auto arn = sqs_.get_queue_attributes(dead_letters).at("QueueArn");
  const std::string redrive = R"({"deadLetterTargetArn":")" + arn + R"(","maxReceiveCount":"3"})";
  const auto url = sqs_.create_queue(unique_name("queue"),
                                     {{"RedrivePolicy", redrive}, {"VisibilityTimeout", "45"}});

  const auto all = sqs_.get_queue_attributes(url);
  EXPECT_EQ(all.at("VisibilityTimeout"), "45");
  ASSERT_TRUE(all.contains("RedrivePolicy"));
  EXPECT_NE(all.at("RedrivePolicy").find(arn), std::string::npos);

  const std::vector<std::string> names{"FifoQueue", "VisibilityTimeout"};
  const auto fifo = sqs_.get_queue_attributes(fifo_queue(), names);
  EXPECT_EQ(fifo.at("FifoQueue"), "true");
  EXPECT_EQ(fifo.at("VisibilityTimeout"), "30");
  EXPECT_FALSE(fifo.contains("RedrivePolicy"));
}

TEST_P(sqs_client_test, message_attributes_are_sent_and_received_when_asked_for) {
  const auto url = sqs_.create_queue(unique_name("queue"));
  sqs_send_options send;
  send.message_attributes = {{"RejectReason", "type: \"bad\" (line 1)"}, {"Source", "m-1"}};
  sqs_.send_message(url, "one", send);
  const std::vector<sqs_send_entry> batch{{"two", send}};
  ASSERT_TRUE(sqs_.send_message_batch(url, batch).failed.empty());

  // Not asked for: none come back.
  auto plain = sqs_.receive_message(url, waiting(10, 1));
  ASSERT_FALSE(plain.empty());
  for (const auto& message : plain)
    EXPECT_TRUE(message.message_attributes.empty());
  std::vector<std::string> handles;
  for (const auto& message : plain)
    handles.push_back(message.receipt_handle);
  std::vector<sqs_visibility_change> visible;
  for (const auto& handle : handles)
    visible.push_back({handle, 0});
  ASSERT_TRUE(sqs_.change_message_visibility_batch(url, visible).empty());

  auto all = waiting(10, 1);
  all.message_attribute_names = {"All"};
  std::map<std::string, sqs_message> by_body;
  for (int i = 0; i < 5 && by_body.size() < 2; ++i)
    for (auto& message : sqs_.receive_message(url, all))
      by_body.insert_or_assign(message.body, std::move(message));
  ASSERT_EQ(by_body.size(), 2u);
  for (const auto& [body, message] : by_body) {
    EXPECT_EQ(message.message_attribute("RejectReason"), "type: \"bad\" (line 1)") << body;
    EXPECT_EQ(message.message_attribute("Source"), "m-1") << body;
    EXPECT_FALSE(message.message_attribute("Missing").has_value());
  }
}

TEST_P(sqs_client_test, receive_returns_only_the_message_attributes_named) {
  const auto url = sqs_.create_queue(unique_name("queue"));
  sqs_send_options send;
  send.message_attributes = {{"Wanted", "yes"}, {"Other", "no"}};
  sqs_.send_message(url, "body", send);
  auto named = waiting(1, 1);
  named.message_attribute_names = {"Wanted"};
  const auto messages = sqs_.receive_message(url, named);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].message_attributes.size(), 1u);
  EXPECT_EQ(messages[0].message_attribute("Wanted"), "yes");
}

TEST_P(sqs_client_test, a_deleted_queue_is_gone) {
  const auto name = unique_name("queue");
  const auto url = sqs_.create_queue(name);
  sqs_.send_message(url, "body");
  sqs_.delete_queue(url);
  EXPECT_THROW(sqs_.get_queue_url(name), service_error);
  EXPECT_THROW(sqs_.receive_message(url, up_to(1)), service_error);
}

INSTANTIATE_TEST_SUITE_P(servers, sqs_client_test, ::testing::Values("plain", "iam", "elasticmq"),
                         server_name);

}  // namespace
}  // namespace widget_consumer::aws
