#include <widget_consumer/source/sqs_queue.hpp>

#include <widget_consumer/consumer.hpp>
#include <widget_consumer/destination/dynamodb_table.hpp>

#include "support/emulator.hpp"
#include "support/memory_policies.hpp"
#include "support/request_generator.hpp"
#include "support/service_contents.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <map>
#include <string>
#include <vector>

// End to end: the producer's generator fills a FIFO queue (one message group
// per widget), consumer<sqs_queue_source, dynamodb_table_store> drains it,
// and the table must hold exactly the widgets the generator expects. The
// table is on the moto that verifies every SigV4 signature; the queue on it
// too ("iam") or on ElasticMQ, a second SQS implementation ("elasticmq").

namespace widget_consumer {
namespace {

using namespace std::chrono_literals;
using widget_consumer::testing::capturing_log;
using widget_consumer::testing::messages_in;
using widget_consumer::testing::unique_name;
namespace json = boost::json;

class sqs_to_dynamodb : public ::testing::TestWithParam<std::string> {};

TEST_P(sqs_to_dynamodb, a_fifo_queue_of_generated_requests_ends_as_the_expected_table) {
  using widget_consumer::testing::client_config_for;
  aws::sqs_client sqs(client_config_for(widget_consumer::testing::emulator_named(GetParam())));
  aws::dynamodb_client dynamodb(client_config_for(widget_consumer::testing::iam_emulator()));

  const auto table = unique_name("widgets");
  dynamodb.create_table(
      table,
      {{"KeySchema", json::array{{{"AttributeName", "id"}, {"KeyType", "HASH"}}}},
       {"AttributeDefinitions", json::array{{{"AttributeName", "id"}, {"AttributeType", "S"}}}},
       {"BillingMode", "PAY_PER_REQUEST"}});
  dynamodb.wait_until_active(table, 10s);
  const std::map<std::string, std::string, std::less<>> fifo{
      {"FifoQueue", "true"}, {"ContentBasedDeduplication", "false"}};
  const auto queue = sqs.create_queue(unique_name("requests") + ".fifo", fifo);
  const auto dead_letters = sqs.create_queue(unique_name("rejected") + ".fifo", fifo);

  widget_producer::request_generator generator(20260220, 0.05);
  std::array<std::uint64_t, 3> valid_by_type{};
  std::uint64_t invalid = 0;
  std::vector<aws::sqs_send_entry> entries;
  for (int i = 0; i < 300; ++i) {
    auto generated = generator.next();
    if (generated.valid) {
      const auto parsed = std::get<widget_request>(parse_request(generated.body));
      ++valid_by_type[static_cast<std::size_t>(parsed.type)];
    } else {
      ++invalid;
    }
    aws::sqs_send_options send;
    send.message_group_id = generated.widget_id.empty() ? "invalid" : generated.widget_id;
    send.message_deduplication_id = std::to_string(i);
    // SQS has no empty messages: a blank one stands in for the empty body.
    entries.push_back({generated.body.empty() ? " " : generated.body, send});
  }
  ASSERT_GT(invalid, 0u);
  ASSERT_TRUE(sqs.send_message_batch(queue, entries).failed.empty());

  sqs_queue_options source_options;
  source_options.wait_time = 1s;
  source_options.visibility_timeout = 10s;
  // One receive at a time: moto checks a FIFO group against the groups in
  // flight when a receive begins, so two concurrent (long) receives can both
  // take messages of one group and reorder it. AWS hands a group to one
  // receive at a time; there several receivers keep the order.
  source_options.receivers = 1;
  source_options.dead_letter_queue = dead_letters;
  consumer_options options;
  options.concurrency = 8;
  options.poll_wait = 200ms;
  options.max_idle = 2s;
  options.max_runtime = 60s;
  options.progress_interval = 0ms;

  capturing_log log;
  consumer_summary summary;
  {
    sqs_queue_source source(sqs, queue, source_options);
    ASSERT_TRUE(source.ordered());
    dynamodb_table_store store(dynamodb, table);
    consumer<sqs_queue_source, dynamodb_table_store, capturing_log> run(source, store, log,
                                                                        options);
    summary = run.run();
  }

  EXPECT_EQ(summary.reason, stop_reason::max_idle);
  const auto& stats = summary.stats;
  EXPECT_EQ(stats.processed, valid_by_type);
  EXPECT_EQ(stats.rejected, invalid);
  EXPECT_EQ(stats.not_found, 0u);
  EXPECT_EQ(stats.failed, 0u);
  EXPECT_EQ(stats.settle_failures, 0u);
  EXPECT_EQ(stats.poll_failures, 0u);
  EXPECT_EQ(stats.in_flight, 0u);
  log.with_sink([](const auto& sink) {
    for (const auto& message : sink.messages)
      EXPECT_NE(message.level, log_level::error) << message.text;
  });

  std::map<std::string, widget> stored;
  for (const auto& item : dynamodb.scan_all(table, {{"ConsistentRead", true}})) {
    if (dynamodb_is_tombstone(item))  // a delete's, not a widget
      continue;
    auto each = widget_from_dynamodb_item(item);
    stored.emplace(each.widget_id, std::move(each));
  }
  auto expected = generator.expected_widgets();
  for (auto& [id, each] : expected)  // DynamoDB keeps no attribute order
    std::ranges::sort(each.other_attributes, {}, &widget_attribute::name);
  EXPECT_EQ(stored.size(), expected.size());
  EXPECT_TRUE(stored == expected);

  EXPECT_EQ(messages_in(sqs, queue), 0);
  EXPECT_EQ(messages_in(sqs, dead_letters), static_cast<int>(invalid));
}

INSTANTIATE_TEST_SUITE_P(servers, sqs_to_dynamodb, ::testing::Values("iam", "elasticmq"),
                         [](const auto& param) { return param.param; });

}  // namespace
}  // namespace widget_consumer
