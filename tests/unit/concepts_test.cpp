#include "widget_consumer/concepts.hpp"

#include <gtest/gtest.h>

#include "widget_consumer/widget_consumer.hpp"

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

// The exemplars of docs/concepts.md, verbatim: if they stop compiling, the
// documentation is wrong.
namespace exemplar {

using namespace widget_consumer;

// A source that hands out requests from a vector and remembers nothing.
class vector_source {
 public:
  using ticket_type = std::size_t;  // index into bodies_

  explicit vector_source(std::vector<std::string> bodies) : bodies_(std::move(bodies)) {}

  std::vector<received_request<ticket_type>> poll(std::chrono::milliseconds /*wait*/,
                                                  std::size_t max) {
    std::vector<received_request<ticket_type>> batch;
    for (; next_ < bodies_.size() && batch.size() < max; ++next_)
      batch.push_back(
          {.body = bodies_[next_], .ticket = next_, .name = "request-" + std::to_string(next_)});
    return batch;
  }
  void ack(ticket_type /*ticket*/) {}
  void release(ticket_type /*ticket*/, std::chrono::milliseconds /*delay*/) {}
  void reject(ticket_type /*ticket*/, std::string_view /*reason*/) {}
  std::vector<settle_failure> flush() { return {}; }
  bool ordered() const { return true; }

 private:
  std::vector<std::string> bodies_;
  std::size_t next_ = 0;
};

// A store that accepts everything and keeps nothing.
struct discarding_store {
  apply_outcome apply(const widget_request& /*request*/) { return apply_outcome::applied; }
};

// A log that prints nothing; a real one locks (see basic_log).
struct silent_log {
  void request(const request_event&) {}
  void debug(std::string_view) {}
  void info(std::string_view) {}
  void warning(std::string_view) {}
  void error(std::string_view) {}
  void progress(const progress_event&) {}
  void summary(const consumer_summary&) {}
  void flush() {}
};

// A real log: a sink wrapped in basic_log, which takes the lock.
struct counting_sink {
  std::size_t requests = 0;
  void write(const request_event&) { ++requests; }
  void write(const log_message&) {}
  void write(const progress_event&) {}
  void write(const consumer_summary&) {}
  void flush() {}
};
using counting_log = basic_log<counting_sink>;

}  // namespace exemplar

namespace {

using namespace widget_consumer;

static_assert(request_source<exemplar::vector_source>);
static_assert(widget_store<exemplar::discarding_store>);
static_assert(log_policy<exemplar::silent_log>);
static_assert(log_sink<exemplar::counting_sink> && log_policy<exemplar::counting_log>);

// Every policy we ship. The AWS ones join this list when they land.
static_assert(request_source<directory_source>);
static_assert(request_source<s3_bucket_source>);
static_assert(pending_reporting<s3_bucket_source>);
static_assert(backlog_reporting<s3_bucket_source>);
static_assert(!backlog_reporting<sqs_queue_source>);
static_assert(request_source<sqs_queue_source>);
// Their releases come back only to them, so a hold behind one never expires.
static_assert(local_releasing<directory_source> && local_releasing<s3_bucket_source>);
static_assert(!local_releasing<exemplar::vector_source>);
static_assert(widget_store<directory_store>);
static_assert(widget_store<s3_bucket_store>);
static_assert(widget_store<dynamodb_table_store>);
static_assert(log_policy<console_log>);
static_assert(log_policy<daily_file_log>);
static_assert(log_policy<json_lines_log>);
static_assert(log_policy<null_log>);
static_assert(log_policy<tee_log<console_log, daily_file_log>>);
static_assert(log_sink<console_sink> && log_sink<daily_file_sink> && log_sink<json_lines_sink>);
// The exemplars plug into consumer<> as they are.
static_assert(
    sizeof(consumer<exemplar::vector_source, exemplar::discarding_store, exemplar::silent_log>) >
    0);
static_assert(std::is_same_v<directory_to_directory_consumer::log_type, console_log>);
// The four named AWS combinations are consumers of the shipped policies.
static_assert(std::is_same_v<s3_to_s3_consumer::source_type, s3_bucket_source>);
static_assert(std::is_same_v<s3_to_dynamodb_consumer::destination_type, dynamodb_table_store>);
static_assert(std::is_same_v<sqs_to_s3_consumer::source_type, sqs_queue_source>);
static_assert(std::is_same_v<sqs_to_dynamodb_consumer::destination_type, dynamodb_table_store>);

// Each capability is needed on its own.
struct no_flush_source {
  using ticket_type = int;
  std::vector<received_request<int>> poll(std::chrono::milliseconds, std::size_t);
  void ack(int);
  void release(int, std::chrono::milliseconds);
  void reject(int, std::string_view);
  bool ordered() const;
};
static_assert(request_polling<no_flush_source> && request_settling<no_flush_source>);
static_assert(!settlement_flushing<no_flush_source> && !request_source<no_flush_source>);

struct bool_store {
  bool apply(const widget_request&);
};
static_assert(!widget_store<bool_store>);

static_assert(!log_policy<exemplar::discarding_store>);

TEST(concepts, exemplar_source_hands_out_requests_in_order) {
  exemplar::vector_source source({"a", "b", "c"});
  auto first = source.poll(std::chrono::milliseconds{0}, 2);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].body, "a");
  EXPECT_EQ(first[1].ticket, 1u);
  EXPECT_EQ(source.poll(std::chrono::milliseconds{0}, 2).size(), 1u);
  EXPECT_TRUE(source.flush().empty());
}

TEST(concepts, store_error_tells_retryable_from_permanent) {
  EXPECT_TRUE(store_error(store_failure::transient, "throttled").retryable());
  EXPECT_FALSE(store_error(store_failure::permanent, "denied").retryable());
  EXPECT_FALSE(store_error(store_failure::bad_request, "too large").retryable());
}

TEST(concepts, stats_rate_counts_processed_per_second) {
  consumer_stats stats;
  stats.processed = {10, 5, 5};
  stats.elapsed = std::chrono::milliseconds{2000};
  EXPECT_EQ(stats.processed_total(), 20u);
  EXPECT_DOUBLE_EQ(stats.rate(), 10.0);
  EXPECT_EQ(stats.processed_of(request_type::update), 5u);
}

}  // namespace
