#include "widget_consumer/metrics/metrics_log.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "support/memory_policies.hpp"
#include "widget_consumer/consumer.hpp"
#include "widget_consumer/log/json_lines.hpp"
#include "widget_consumer/log/null.hpp"
#include "widget_consumer/log/tee.hpp"
#include "widget_consumer/metrics/registry.hpp"
#include "widget_consumer/source/sqs_queue.hpp"

namespace {

using namespace widget_consumer;
using namespace std::chrono_literals;
using widget_consumer::testing::capturing_log;
using widget_consumer::testing::memory_source;
using widget_consumer::testing::memory_store;

static_assert(log_policy<metrics_log>);
// The SQS source tells the consumer what its heartbeat had refused.
static_assert(heartbeat_refusal_reporting<sqs_queue_source>);
static_assert(log_policy<tee_log<console_log, metrics_log>>);
static_assert(state_observing<tee_log<console_log, metrics_log>>);
static_assert(store_call_observing<tee_log<metrics_log, console_log>>);
// A tee of logs without the hooks has none: the consumer then skips them.
static_assert(!state_observing<tee_log<console_log, json_lines_log>>);
static_assert(!store_call_observing<tee_log<console_log, json_lines_log>>);

// The sample lines of a text, without # lines.
std::vector<std::string> samples_of(const std::string& text, std::string_view prefix) {
  std::vector<std::string> lines;
  std::string::size_type at = 0;
  while (at < text.size()) {
    const auto end = text.find('\n', at);
    const std::string line = text.substr(at, end - at);
    if (line.starts_with(prefix))
      lines.push_back(line);
    at = end == std::string::npos ? text.size() : end + 1;
  }
  return lines;
}

TEST(text_exposition, escapes_label_values_and_help) {
  metrics::text_exposition out;
  out.family("m_total", "counter", "back\\slash and\nnew line, \"quotes\" kept");
  out.sample("m_total", {{.name = "path", .value = "a\"b\\c\nd"}}, 3);
  EXPECT_EQ(out.text(),
            "# HELP m_total back\\\\slash and\\nnew line, \"quotes\" kept\n"
            "# TYPE m_total counter\n"
            "m_total{path=\"a\\\"b\\\\c\\nd\"} 3\n");
}

TEST(text_exposition, writes_values_as_prometheus_reads_them) {
  using metrics::text_exposition;
  EXPECT_EQ(text_exposition::format_value(0), "0");
  EXPECT_EQ(text_exposition::format_value(12345678901234.0), "12345678901234");
  EXPECT_EQ(text_exposition::format_value(0.005), "0.005");
  EXPECT_EQ(text_exposition::format_value(2.5), "2.5");
  EXPECT_EQ(text_exposition::format_value(0.0005), "0.0005");
  EXPECT_EQ(text_exposition::format_value(1.5e-7), "1.5e-07");
  EXPECT_EQ(text_exposition::format_value(1e300), "1e+300");
  EXPECT_EQ(text_exposition::format_value(1.0 / 0.0), "+Inf");
  EXPECT_EQ(text_exposition::format_value(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(text_exposition::format_value(0.0 / 0.0), "NaN");
}

TEST(histogram, buckets_are_cumulative_and_end_with_inf_equal_to_count) {
  metrics::histogram h({1, 2, 5});
  for (const double value : {0.5, 1.0, 1.5, 7.0, 2.0})  // 1.0 and 2.0 on a bound: le
    h.observe(value);
  metrics::text_exposition out;
  out.family("d_seconds", "histogram", "h");
  out.histogram_samples("d_seconds", {{.name = "k", .value = "v"}}, h);
  EXPECT_EQ(samples_of(out.text(), "d_seconds"), (std::vector<std::string>{
                                                     "d_seconds_bucket{k=\"v\",le=\"1\"} 2",
                                                     "d_seconds_bucket{k=\"v\",le=\"2\"} 4",
                                                     "d_seconds_bucket{k=\"v\",le=\"5\"} 4",
                                                     "d_seconds_bucket{k=\"v\",le=\"+Inf\"} 5",
                                                     "d_seconds_sum{k=\"v\"} 12",
                                                     "d_seconds_count{k=\"v\"} 5",
                                                 }));
}

TEST(histogram, refuses_bounds_that_are_not_strictly_increasing_and_finite) {
  EXPECT_THROW(metrics::histogram({2, 1}), std::invalid_argument);
  EXPECT_THROW(metrics::histogram({1, 1}), std::invalid_argument);
  EXPECT_THROW(metrics::histogram({1, 1.0 / 0.0}), std::invalid_argument);
  EXPECT_NO_THROW(metrics::histogram({}));
}

request_event event_of(request_outcome outcome, request_type type, bool parsed = true) {
  return {.time = log_clock::now(),
          .name = "n",
          .request_id = "r",
          .widget_id = "w",
          .type = type,
          .parsed = parsed,
          .outcome = outcome,
          .latency = 3ms,
          .attempts = 1,
          .detail = {}};
}

TEST(metrics_log, counts_requests_by_type_and_outcome) {
  metrics_log log;
  log.request(event_of(request_outcome::applied, request_type::create));
  log.request(event_of(request_outcome::applied, request_type::create));
  log.request(event_of(request_outcome::not_found, request_type::remove));
  log.request(event_of(request_outcome::rejected, request_type::create, false));
  EXPECT_EQ(log.requests("create", request_outcome::applied), 2u);
  EXPECT_EQ(log.requests("delete", request_outcome::not_found), 1u);
  EXPECT_EQ(log.requests("unknown", request_outcome::rejected), 1u);
  EXPECT_EQ(log.requests("create", request_outcome::rejected), 0u);
  const std::string text = log.exposition();
  EXPECT_NE(text.find("widget_consumer_requests_total{type=\"create\",outcome=\"applied\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("widget_consumer_request_duration_seconds_count 4\n"), std::string::npos);
  EXPECT_NE(text.find("widget_consumer_request_duration_seconds_bucket{le=\"0.0025\"} 0\n"),
            std::string::npos);
  EXPECT_NE(text.find("widget_consumer_request_duration_seconds_bucket{le=\"0.005\"} 4\n"),
            std::string::npos);
  EXPECT_NE(text.find("# TYPE process_start_time_seconds gauge\n"), std::string::npos);
}

consumer_state state_of(log_clock::time_point run, std::uint64_t settle, std::uint64_t poll,
                        std::uint64_t refused) {
  consumer_state state{.time = log_clock::now(), .run_started = run};
  state.stats.settle_failures = settle;
  state.stats.poll_failures = poll;
  state.stats.heartbeat_refusals = refused;
  state.stats.in_flight = 7;
  state.lanes_busy = 3;
  state.lanes = 8;
  return state;
}

TEST(metrics_log, adds_each_runs_counts_to_the_process_total) {
  metrics_log log;
  const auto first = log_clock::now();
  log.observe(state_of(first, 1, 2, 0));
  log.observe(state_of(first, 3, 2, 1));
  log.observe(state_of(first + 1s, 1, 0, 0));  // the next run() starts from 0
  const std::string text = log.exposition();
  EXPECT_NE(text.find("\nwidget_consumer_settle_failures_total 4\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nwidget_consumer_poll_failures_total 2\n"), std::string::npos);
  EXPECT_NE(text.find("\nwidget_consumer_heartbeat_refusals_total 1\n"), std::string::npos);
  EXPECT_NE(text.find("\nwidget_consumer_requests_in_flight 7\n"), std::string::npos);
  EXPECT_NE(text.find("\nwidget_consumer_lanes_busy 3\n"), std::string::npos);
}

TEST(metrics_log, is_ready_while_the_last_good_poll_is_recent) {
  metrics_log log;
  const auto now = log_clock::now();
  EXPECT_FALSE(log.ready(1s, now)) << "no poll yet";
  consumer_state state = state_of(now, 0, 0, 0);
  state.last_poll_ok = now;
  log.observe(state);
  EXPECT_TRUE(log.ready(1s, now + 500ms));
  EXPECT_FALSE(log.ready(1s, now + 1500ms));
}

std::string body(std::string_view type, const std::string& request, const std::string& widget) {
  return R"({"type":")" + std::string(type) + R"(","requestId":")" + request + R"(","widgetId":")" +
         widget + R"(","owner":"Mary Jones","label":"l"})";
}

// A source whose heartbeat had refused `refused` extensions so far.
struct refusing_source : memory_source {
  std::atomic<std::uint64_t> refused{0};
  std::uint64_t heartbeat_failures() const { return refused.load(); }
};

consumer_options fast() {
  consumer_options options;
  options.concurrency = 4;
  options.empty_poll_delay = 2ms;
  options.max_idle = 60ms;
  options.max_runtime = 5s;
  options.retry_backoff = 1ms;
  options.release_delay = 5ms;
  options.progress_interval = 0ms;
  return options;
}

TEST(metrics_log, counts_what_the_consumers_summary_counts) {
  refusing_source source;
  source.refused = 5;  // before the run: not this run's
  memory_store store;
  bool failed_once = false;  // a failed request is released and comes again
  store.before_apply = [&](const widget_request& request) {
    if (request.widget_id == "w-bad" && !std::exchange(failed_once, true))
      throw store_error(store_failure::permanent, "refused");
    source.refused = 7;
  };
  source.push(body("create", "r1", "w1"));
  source.push(body("update", "r2", "w1"));
  source.push(body("delete", "r3", "w-missing"));
  source.push(body("create", "r4", "w-bad"));
  source.push("not json");
  source.failures_to_report.push_back({.action = settle_action::ack, .name = "x", .reason = "no"});
  tee_log<capturing_log, metrics_log> log;

  const consumer_summary summary =
      consumer<refusing_source, memory_store, tee_log<capturing_log, metrics_log>>(source, store,
                                                                                   log, fast())
          .run();

  const metrics_log& metrics = log.second();
  EXPECT_EQ(metrics.requests("create", request_outcome::applied), 2u);
  EXPECT_EQ(metrics.requests("update", request_outcome::applied), 1u);
  EXPECT_EQ(metrics.requests("delete", request_outcome::not_found), 1u);
  EXPECT_EQ(metrics.requests("create", request_outcome::failed), 1u);
  EXPECT_EQ(metrics.requests("unknown", request_outcome::rejected), 1u);
  EXPECT_EQ(summary.stats.processed_total(), 4u);
  EXPECT_EQ(summary.stats.failed, 1u);
  EXPECT_EQ(summary.stats.rejected, 1u);
  EXPECT_EQ(summary.stats.settle_failures, 1u);
  EXPECT_EQ(summary.stats.heartbeat_refusals, 2u);
  const std::string text = metrics.exposition();
  EXPECT_NE(text.find("\nwidget_consumer_settle_failures_total 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nwidget_consumer_heartbeat_refusals_total 2\n"), std::string::npos);
  EXPECT_NE(text.find("\nwidget_consumer_requests_in_flight 0\n"), std::string::npos);
  EXPECT_NE(text.find("\nwidget_consumer_lanes 4\n"), std::string::npos);
  EXPECT_NE(text.find("\nwidget_consumer_store_call_duration_seconds_count 5\n"),
            std::string::npos);
  EXPECT_NE(text.find("\nwidget_consumer_store_call_errors_total 1\n"), std::string::npos);
  EXPECT_TRUE(metrics.ready(1min));

  const auto messages = log.first().with_sink([](auto& sink) { return sink.messages; });
  bool warned = false;
  for (const auto& message : messages)
    warned = warned || (message.level == log_level::warning &&
                        message.text.find("heartbeat could not extend the visibility of 2 "
                                          "requests") != std::string::npos);
  EXPECT_TRUE(warned);
  EXPECT_NE(detail::format_summary(summary).find(", 1 ack failures, 2 heartbeat refusals"),
            std::string::npos)
      << detail::format_summary(summary);
}

// A source that tells its backlog: a countdown the test sets, or a throw.
struct backlog_source : memory_source {
  std::atomic<std::uint64_t> waiting{0};
  std::atomic<bool> throws{false};
  std::uint64_t backlog() {
    if (throws)
      throw std::runtime_error("cannot tell");
    return waiting.load();
  }
};
static_assert(backlog_reporting<backlog_source>);
static_assert(!backlog_reporting<memory_source>);
static_assert(!backlog_reporting<sqs_queue_source>);

TEST(metrics_log, shows_the_source_backlog_only_once_the_source_tells_it) {
  metrics_log log;
  EXPECT_TRUE(samples_of(log.exposition(), "widget_consumer_source_backlog").empty());
  consumer_state state{.run_started = log_clock::now()};
  log.observe(state);  // a source without backlog(): nothing to show
  EXPECT_TRUE(samples_of(log.exposition(), "widget_consumer_source_backlog").empty());
  state.source_backlog = 1234;
  log.observe(state);
  EXPECT_EQ(samples_of(log.exposition(), "widget_consumer_source_backlog"),
            std::vector<std::string>{"widget_consumer_source_backlog 1234"});
  EXPECT_NE(log.exposition().find("# TYPE widget_consumer_source_backlog gauge\n"),
            std::string::npos);
  state.source_backlog = 0;
  log.observe(state);
  EXPECT_EQ(samples_of(log.exposition(), "widget_consumer_source_backlog"),
            std::vector<std::string>{"widget_consumer_source_backlog 0"});
}

TEST(metrics_log, the_consumer_reads_the_backlog_each_poll_round_and_survives_a_throw) {
  backlog_source source;
  source.waiting = 7;
  memory_store store;
  store.before_apply = [&](const widget_request&) { source.waiting = 3; };
  source.push(body("create", "r1", "w1"));
  metrics_log log;
  consumer<backlog_source, memory_store, metrics_log>(source, store, log, fast()).run();
  EXPECT_EQ(samples_of(log.exposition(), "widget_consumer_source_backlog"),
            std::vector<std::string>{"widget_consumer_source_backlog 3"});

  // A source that cannot tell leaves the last value; the run goes on.
  source.throws = true;
  source.push(body("update", "r2", "w1"));
  const consumer_summary summary =
      consumer<backlog_source, memory_store, metrics_log>(source, store, log, fast()).run();
  EXPECT_EQ(summary.stats.processed_total(), 1u);
  EXPECT_EQ(samples_of(log.exposition(), "widget_consumer_source_backlog"),
            std::vector<std::string>{"widget_consumer_source_backlog 3"});
  EXPECT_EQ(detail::source_backlog(source), std::nullopt);
  memory_source without;
  EXPECT_EQ(detail::source_backlog(without), std::nullopt);
}

}  // namespace
