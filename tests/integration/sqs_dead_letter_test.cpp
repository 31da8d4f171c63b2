#include <widget_consumer/source/sqs_queue.hpp>

#include "support/emulator.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

// Rejects whose dead-letter send SQS refuses, against the local server
// (scripts/moto_server.py checks message size and characters as AWS does).

namespace widget_consumer {
namespace {

using namespace std::chrono_literals;
using widget_consumer::testing::client_config_for;
using widget_consumer::testing::plain_emulator;
using widget_consumer::testing::unique_name;
using clock_type = std::chrono::steady_clock;

class sqs_dead_letter_test : public ::testing::Test {
 protected:
  sqs_dead_letter_test() : sqs_(client_config_for(plain_emulator())) {}

  sqs_queue_options options_for(const std::string& dead_letters) {
    sqs_queue_options options;
    options.wait_time = 1s;
    options.visibility_timeout = 5s;
    options.receivers = 1;
    options.dead_letter_queue = dead_letters;
    return options;
  }

  // The smallest queue SQS allows: a body of 1,000 bytes leaves only 24
  // bytes for the reject's attributes.
  std::string small_queue() {
    return sqs_.create_queue(unique_name("small"), {{"MaximumMessageSize", "1024"}});
  }

  std::vector<received_request<sqs_ticket>> receive(sqs_queue_source& source) {
    std::vector<received_request<sqs_ticket>> received;
    const auto deadline = clock_type::now() + 5s;
    while (received.empty() && clock_type::now() < deadline)
      received = source.poll(200ms, 1);
    return received;
  }

  std::optional<aws::sqs_message> receive_raw(const std::string& url) {
    aws::sqs_receive_options options;
    options.max_messages = 1;
    options.wait_time_seconds = 1;
    options.message_attribute_names = {"All"};
    for (int attempt = 0; attempt < 5; ++attempt)
      if (auto messages = sqs_.receive_message(url, options); !messages.empty())
        return std::move(messages[0]);
    return std::nullopt;
  }

  aws::sqs_client sqs_;
};

TEST_F(sqs_dead_letter_test, a_body_near_the_size_limit_reaches_the_dead_letter_queue) {
  const auto url = sqs_.create_queue(unique_name("queue"), {});
  const auto dead_letters = small_queue();
  const std::string body(1000, 'x');
  sqs_.send_message(url, body);
  sqs_queue_source source(sqs_, url, options_for(dead_letters));

  auto received = receive(source);
  ASSERT_EQ(received.size(), 1u);
  source.reject(std::move(received[0].ticket),
                "body: not JSON (syntax error at line 1, column 1): " + std::string(300, 'x'));
  const auto failures = source.flush();
  EXPECT_TRUE(failures.empty()) << failures.front().reason;

  const auto moved = receive_raw(dead_letters);
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved->body, body);
}

// A body the dead-letter queue can never take: said once, as an error, and
// kept in the queue (hidden, not looping through receive and reject).
TEST_F(sqs_dead_letter_test, a_body_the_dead_letter_queue_never_takes_stays_in_the_queue) {
  const auto url = sqs_.create_queue(unique_name("queue"), {});
  const auto dead_letters = small_queue();
  sqs_.send_message(url, std::string(1500, 'x'));
  sqs_queue_source source(sqs_, url, options_for(dead_letters));

  auto received = receive(source);
  ASSERT_EQ(received.size(), 1u);
  source.reject(std::move(received[0].ticket), "body: not JSON");
  const auto failures = source.flush();
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_NE(failures[0].reason.find("for good"), std::string::npos) << failures[0].reason;
  const std::vector<std::string> names{"ApproximateNumberOfMessagesNotVisible"};
  EXPECT_EQ(sqs_.get_queue_attributes(url, names).at("ApproximateNumberOfMessagesNotVisible"), "1");
  EXPECT_FALSE(receive_raw(dead_letters));
}

}  // namespace
}  // namespace widget_consumer
