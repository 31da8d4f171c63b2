// The consumer's side of the fence: the position each source gives travels
// with its request to a store that has position_fencing, and a stale answer
// is settled (acked), counted as stale, and logged at INFO with both
// positions. The stores' own fences have tests of their own.

#include "widget_consumer/consumer.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "support/memory_policies.hpp"

namespace {

using namespace widget_consumer;
using namespace std::chrono_literals;
using widget_consumer::testing::capturing_log;
using widget_consumer::testing::memory_source;
using widget_consumer::testing::memory_store;

static_assert(position_fencing<memory_store>);

std::string request(std::string_view type, const std::string& request_id) {
  return R"({"type":")" + std::string(type) + R"(","requestId":")" + request_id +
         R"(","widgetId":"w1","owner":"Mary Jones","label":"l-)" + request_id + R"("})";
}

consumer_options fast() {
  consumer_options options;
  options.concurrency = 2;
  options.empty_poll_delay = 2ms;
  options.max_idle = 60ms;
  options.max_runtime = 5s;  // a safety net only
  options.retry_backoff = 1ms;
  options.progress_interval = 0ms;
  return options;
}

TEST(consumer_fencing, a_replayed_request_is_acked_as_stale_and_changes_nothing) {
  memory_source source;
  memory_store store;
  capturing_log log;
  source.push(request("create", "r1"), "s3:1");
  source.push(request("update", "r2"), "s3:2");
  consumer<memory_source, memory_store, capturing_log>(source, store, log, fast()).run();
  // The create comes back under its old position (a replayed key).
  source.push(request("create", "r1"), "s3:1");
  const auto summary =
      consumer<memory_source, memory_store, capturing_log>(source, store, log, fast()).run();

  EXPECT_EQ(summary.stats.stale, 1u);
  EXPECT_EQ(summary.stats.processed_total(), 0u);
  EXPECT_EQ(source.acked().size(), 3u);  // settled: not left to come again
  EXPECT_EQ(store.history("w1"), (std::vector<std::string>{"r1", "r2"}));
  EXPECT_EQ(store.given_positions(), (std::vector<std::string>{"s3:1", "s3:2", "s3:1"}));
  const auto events =
      log.with_sink([](widget_consumer::testing::capturing_sink& sink) { return sink.requests; });
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events.back().outcome, request_outcome::stale);
  EXPECT_NE(events.back().detail.find("position s3:1 is not newer than the widget's s3:2"),
            std::string::npos)
      << events.back().detail;
  EXPECT_EQ(level_of(request_outcome::stale), log_level::info);
  EXPECT_NE(detail::format_stats(summary.stats).find("1 stale"), std::string::npos);
}

TEST(consumer_fencing, a_request_without_a_position_is_applied_unfenced) {
  memory_source source;
  memory_store store;
  capturing_log log;
  source.push(request("create", "r1"), "s3:2");
  consumer<memory_source, memory_store, capturing_log>(source, store, log, fast()).run();
  source.push(request("update", "r2"));  // the source could not tell
  const auto summary =
      consumer<memory_source, memory_store, capturing_log>(source, store, log, fast()).run();
  EXPECT_EQ(summary.stats.stale, 0u);
  EXPECT_EQ(store.history("w1"), (std::vector<std::string>{"r1", "r2"}));
  EXPECT_EQ(store.given_positions(), (std::vector<std::string>{"s3:2"}));
}

}  // namespace
