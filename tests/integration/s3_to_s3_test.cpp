#include <widget_consumer/source/s3_bucket.hpp>

#include <widget_consumer/consumer.hpp>
#include <widget_consumer/destination/s3_bucket.hpp>

#include "support/emulator.hpp"
#include "support/memory_policies.hpp"
#include "support/request_generator.hpp"
#include "support/service_contents.hpp"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

// End to end: the producer's requests in a request bucket, drained by
// consumer<s3_bucket_source, s3_bucket_store> into a widget bucket, which
// must then hold exactly the widgets the requests lead to.

namespace widget_consumer {
namespace {

using namespace std::chrono_literals;
using widget_consumer::testing::capturing_log;
using widget_consumer::testing::capturing_sink;
using widget_consumer::testing::client_config_for;
using widget_consumer::testing::emulator;
using widget_consumer::testing::list_all;
using widget_consumer::testing::unique_name;

// Writes each key's body, 8 at a time (the order of writing does not matter:
// the key order does).
void put_all(aws::s3_client& s3, const std::string& bucket,
             const std::vector<std::pair<std::string, std::string>>& objects) {
  std::vector<std::thread> writers;
  for (std::size_t w = 0; w < 8; ++w) {
    writers.emplace_back([&, w] {
      for (std::size_t i = w; i < objects.size(); i += 8)
        s3.put_object(bucket, objects[i].first, objects[i].second, "application/json");
    });
  }
  for (auto& writer : writers)
    writer.join();
}

struct drain_case {
  std::size_t count = 300;
  double invalid_ratio = 0.05;
  int page_size = 50;
  std::chrono::milliseconds max_runtime{60000};
  // false: a server without conditional writes, so neither claims nor fencing
  bool claims = true;
};

// The producer's requests drained by the consumer on one server: the widget
// bucket ends with exactly the expected widgets, the request bucket with
// only the rejected requests and their reasons, and the run stops idle.
void drain_and_check(const emulator& server, const drain_case& test) {
  aws::s3_client s3(client_config_for(server));
  const std::string requests = unique_name("requests");
  const std::string widgets = unique_name("widgets");
  s3.create_bucket(requests);
  s3.create_bucket(widgets);

  const std::size_t count = test.count;
  widget_producer::request_generator generator(20240601, test.invalid_ratio);
  std::vector<std::pair<std::string, std::string>> objects;
  std::array<std::uint64_t, 3> valid_by_type{};
  std::uint64_t invalid = 0;
  for (std::size_t i = 0; i < count; ++i) {
    auto request = generator.next();
    // 13-digit epoch milliseconds, strictly increasing like the producer's.
    objects.emplace_back(std::to_string(1717200000000 + static_cast<std::int64_t>(i) * 3),
                         std::move(request.body));
    if (!request.valid)
      ++invalid;
    else if (request.type == "create")
      ++valid_by_type[0];
    else if (request.type == "update")
      ++valid_by_type[1];
    else
      ++valid_by_type[2];
  }
  ASSERT_GT(invalid, 0u);
  ASSERT_GT(valid_by_type[2], 0u);
  put_all(s3, requests, objects);

  // The source lives in a scope of its own: it gives back its partition
  // claims when it goes, and nothing of them may be left in the bucket.
  consumer_summary summary;
  std::vector<testing::captured_message> messages;
  {
    s3_bucket_source_options source_options;
    source_options.page_size =
        test.page_size;  // several pages, the next listed while one is dispatched
    source_options.fetch_concurrency = 8;
    source_options.claims = test.claims;
    s3_bucket_source source(client_config_for(server), requests, source_options);
    fencing_options fencing;
    fencing.enabled = test.claims;
    s3_bucket_store store(client_config_for(server), widgets, {}, fencing);
    capturing_log log;
    consumer_options options;
    options.concurrency = 8;
    options.max_idle = 1s;
    options.max_runtime = test.max_runtime;  // a safety net only
    options.empty_poll_delay = 50ms;
    options.progress_interval = 0ms;
    consumer<s3_bucket_source, s3_bucket_store, capturing_log> run(source, store, log, options);
    summary = run.run();

    messages = log.with_sink([](capturing_sink& sink) { return sink.messages; });
  }
  for (const auto& message : messages)
    EXPECT_LT(message.level, log_level::warning) << message.text;

  EXPECT_EQ(summary.reason, stop_reason::max_idle);
  const consumer_stats& stats = summary.stats;
  EXPECT_EQ(stats.processed_of(request_type::create), valid_by_type[0]);
  EXPECT_EQ(stats.processed_of(request_type::update), valid_by_type[1]);
  EXPECT_EQ(stats.processed_of(request_type::remove), valid_by_type[2]);
  EXPECT_EQ(stats.rejected, invalid);
  EXPECT_EQ(stats.not_found, 0u);
  EXPECT_EQ(stats.retried, 0u);
  EXPECT_EQ(stats.failed, 0u);
  EXPECT_EQ(stats.settle_failures, 0u);
  EXPECT_EQ(stats.poll_failures, 0u);
  EXPECT_EQ(stats.in_flight, 0u);

  // The widget bucket holds exactly the expected widgets.
  const auto& expected = generator.expected_widgets();
  std::map<std::string, widget> expected_by_key;
  for (const auto& [id, w] : expected)
    expected_by_key.emplace(widget_key(w.owner, w.widget_id), w);
  // Under the widget prefix: the fence's tombstones live beside it.
  aws::s3_list_options widget_prefix;
  widget_prefix.prefix = "widgets/";
  const auto stored_keys = list_all(s3, widgets, widget_prefix);
  EXPECT_EQ(stored_keys.size(), expected_by_key.size());
  for (const auto& key : stored_keys) {
    const auto found = expected_by_key.find(key);
    ASSERT_NE(found, expected_by_key.end()) << "unexpected widget " << key;
    const auto body = s3.get_object(widgets, key);
    ASSERT_TRUE(body) << key;
    EXPECT_EQ(widget_from_json(*body), found->second) << key;
  }

  // The request bucket holds only the rejected requests, each with its reason.
  const auto left = list_all(s3, requests);
  EXPECT_EQ(left.size(), 2 * invalid);
  for (const auto& key : left)
    EXPECT_TRUE(key.starts_with("rejected/")) << key;
  const std::map<std::string, std::string> bodies(objects.begin(), objects.end());
  for (const auto& key : left) {
    if (key.ends_with(".reason"))
      continue;
    const auto original = bodies.find(key.substr(std::string_view("rejected/").size()));
    ASSERT_NE(original, bodies.end()) << key;
    EXPECT_EQ(s3.get_object(requests, key), original->second) << key;
    const auto reason = s3.get_object(requests, key + ".reason");
    ASSERT_TRUE(reason) << key;
    EXPECT_FALSE(reason->empty()) << key;
  }
}

TEST(s3_to_s3, drains_the_producers_requests_into_exactly_the_expected_widgets) {
  drain_and_check(widget_consumer::testing::plain_emulator(), {});
}

// s3rver answers every DeleteObjects of producer keys with a 500 (its XML
// parser reads <Key>1717200000000</Key> as a number): the run must still
// empty the bucket, not stop as "idle" with the requests still in it.
TEST(s3_to_s3, s3rver_drains_1200_requests_with_8_percent_invalid) {
  drain_and_check(widget_consumer::testing::s3rver_emulator(), {.count = 1200,
                                                                .invalid_ratio = 0.08,
                                                                .page_size = 1000,
                                                                .max_runtime = 60s,
                                                                .claims = false});
}

}  // namespace
}  // namespace widget_consumer
