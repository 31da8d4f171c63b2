#include <widget_consumer/consumer.hpp>
#include <widget_consumer/source/sqs_queue.hpp>

#include "support/emulator.hpp"
#include "support/memory_policies.hpp"
#include "support/service_contents.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

// A queue's RedrivePolicy counts every receive. The consumer's own releases
// (a store outage, a widget held behind a failure) must not burn them: a
// valid request would reach the dead-letter queue with no reason.

namespace widget_consumer {
namespace {

using namespace std::chrono_literals;
using widget_consumer::testing::capturing_log;
using widget_consumer::testing::client_config_for;
using widget_consumer::testing::memory_store;
using widget_consumer::testing::messages_in;
using widget_consumer::testing::plain_emulator;
using widget_consumer::testing::unique_name;

std::string request(const std::string& type, const std::string& id) {
  return R"({"type":")" + type + R"(","requestId":")" + id +
         R"(","widgetId":"w1","owner":"Mary Jones","label":"l-)" + id + R"("})";
}

TEST(sqs_redrive, releases_during_a_store_outage_send_nothing_to_the_dead_letter_queue) {
  aws::sqs_client sqs(client_config_for(plain_emulator()));
  const auto dead_letters =
      sqs.create_queue(unique_name("dead") + ".fifo", {{"FifoQueue", "true"}});
  const std::vector<std::string> arn{"QueueArn"};
  const auto policy = boost::json::serialize(boost::json::object{
      {"deadLetterTargetArn", sqs.get_queue_attributes(dead_letters, arn).at("QueueArn")},
      {"maxReceiveCount", 2}});
  const auto url = sqs.create_queue(
      unique_name("fifo") + ".fifo",
      {{"FifoQueue", "true"}, {"ContentBasedDeduplication", "true"}, {"RedrivePolicy", policy}});
  aws::sqs_send_options send;
  send.message_group_id = "w1";
  sqs.send_message(url, request("create", "r1"), send);
  sqs.send_message(url, request("update", "r2"), send);

  sqs_queue_options options;
  options.wait_time = 1s;
  options.visibility_timeout = 3s;
  options.receivers = 1;
  sqs_queue_source source(sqs, url, options);
  memory_store store;
  // The store is out for 3.5 s: r1 is released three or four times.
  const auto outage_ends = std::chrono::steady_clock::now() + 3500ms;
  store.before_apply = [&](const widget_request&) {
    if (std::chrono::steady_clock::now() < outage_ends)
      throw store_error(store_failure::transient, "store unavailable");
  };
  capturing_log log;
  consumer_options run;
  run.concurrency = 2;
  run.max_attempts = 1;
  run.release_delay = 100ms;  // SQS rounds it up to 1 s
  run.poll_wait = 200ms;
  run.max_idle = 3000ms;
  run.max_runtime = 15s;
  run.progress_interval = 0ms;
  consumer<sqs_queue_source, memory_store, capturing_log>(source, store, log, run).run();

  EXPECT_GE(source.releases_kept(), 2u);  // given back to SQS, each would burn a receive
  EXPECT_EQ(source.redrive_warning(run.max_receives), "");  // 2 receives are enough now
  EXPECT_NE(detail::sqs_redrive_warning(1, true, 5, true), "");
  EXPECT_NE(detail::sqs_redrive_warning(10, false, 5, true), "");  // releases go back to SQS
  EXPECT_EQ(messages_in(sqs, dead_letters), 0);
  EXPECT_EQ(store.history("w1"), (std::vector<std::string>{"r1", "r2"}));
  EXPECT_EQ(messages_in(sqs, url), 0);
}

}  // namespace
}  // namespace widget_consumer
