#include "widget_consumer/consumer.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "support/memory_policies.hpp"

namespace {

using namespace widget_consumer;
using namespace std::chrono_literals;
namespace doubles = widget_consumer::testing;
using widget_consumer::testing::capturing_log;
using widget_consumer::testing::memory_source;
using widget_consumer::testing::memory_store;
using test_consumer = consumer<memory_source, memory_store, capturing_log>;

std::string request(std::string_view type, const std::string& request_id,
                    const std::string& widget_id, std::string_view owner = "Mary Jones") {
  return R"({"type":")" + std::string(type) + R"(","requestId":")" + request_id +
         R"(","widgetId":")" + widget_id + R"(","owner":")" + std::string(owner) +
         R"(","label":"l-)" + request_id + R"("})";
}

// Fast timings: each test finishes in well under a second.
consumer_options fast(std::size_t concurrency = 4) {
  consumer_options options;
  options.concurrency = concurrency;
  options.empty_poll_delay = 2ms;
  options.max_idle = 60ms;
  options.max_runtime = 5s;  // a safety net only
  options.retry_backoff = 1ms;
  options.release_delay = 5ms;
  options.progress_interval = 0ms;
  return options;
}

std::vector<doubles::captured_request> requests_of(capturing_log& log) {
  return log.with_sink([](doubles::capturing_sink& sink) { return sink.requests; });
}

TEST(consumer, keeps_each_widgets_order_under_concurrency_8) {
  memory_source source;
  memory_store store;
  store.delay = 50us;
  capturing_log log;
  constexpr int widgets = 40;
  constexpr int per_widget = 15;
  // Interleave widgets at random but keep each widget's own sequence.
  std::vector<int> next(widgets, 0);
  std::vector<int> order;
  for (int w = 0; w < widgets; ++w)
    order.insert(order.end(), per_widget, w);
  std::shuffle(order.begin(), order.end(), std::mt19937{42});
  for (const int w : order) {
    const int n = next[w]++;
    source.push(request(n == 0 ? "create" : "update",
                        "r" + std::to_string(w) + "-" + std::to_string(n),
                        "w" + std::to_string(w)));
  }

  const consumer_summary summary = test_consumer(source, store, log, fast(8)).run();

  for (int w = 0; w < widgets; ++w) {
    std::vector<std::string> expected;
    for (int n = 0; n < per_widget; ++n)
      expected.push_back("r" + std::to_string(w) + "-" + std::to_string(n));
    EXPECT_EQ(store.history("w" + std::to_string(w)), expected) << "widget " << w;
  }
  EXPECT_FALSE(store.overlapped());
  EXPECT_GT(store.max_concurrency(), 1);
  EXPECT_TRUE(source.used_from_one_thread());
  EXPECT_EQ(source.remaining(), 0u);
  EXPECT_EQ(summary.stats.processed_of(request_type::create), static_cast<unsigned>(widgets));
  EXPECT_EQ(summary.stats.processed_of(request_type::update),
            static_cast<unsigned>(widgets * (per_widget - 1)));
  EXPECT_EQ(summary.reason, stop_reason::max_idle);
}

TEST(consumer, acks_only_what_the_store_confirmed) {
  memory_source source;
  memory_store store;
  capturing_log log;
  bool acked_unconfirmed = false;
  source.on_ack = [&](const std::string& body) {
    const auto id_at = body.find("\"requestId\":\"") + 13;
    const std::string id = body.substr(id_at, body.find('"', id_at) - id_at);
    if (!store.confirmed(id))
      acked_unconfirmed = true;
  };
  for (int i = 0; i < 30; ++i)
    source.push(request("create", "r" + std::to_string(i), "w" + std::to_string(i)));

  test_consumer(source, store, log, fast()).run();

  EXPECT_FALSE(acked_unconfirmed);
  EXPECT_EQ(source.acked().size(), 30u);
}

TEST(consumer, a_store_that_throws_gets_nothing_acked) {
  memory_source source;
  memory_store store;
  store.before_apply = [](const widget_request&) {
    throw store_error(store_failure::transient, "throttled");
  };
  capturing_log log;
  for (int i = 0; i < 5; ++i)
    source.push(request("create", "r" + std::to_string(i), "w" + std::to_string(i)));
  consumer_options options = fast();
  options.max_idle = 0ms;
  options.max_runtime = 80ms;
  options.max_attempts = 2;

  const consumer_summary summary = test_consumer(source, store, log, options).run();

  EXPECT_TRUE(source.acked().empty());
  EXPECT_EQ(source.remaining(), 5u);  // all still in the source
  EXPECT_GT(summary.stats.retried, 0u);
  EXPECT_EQ(summary.stats.processed_total(), 0u);
  const auto events = requests_of(log);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.front().outcome, request_outcome::released);
  EXPECT_EQ(events.front().attempts, 2u);
  EXPECT_EQ(events.front().detail, "throttled");
}

TEST(consumer, retries_a_transient_failure_in_the_lane_then_acks) {
  memory_source source;
  memory_store store;
  int failures_left = 2;
  store.before_apply = [&](const widget_request&) {
    if (failures_left-- > 0)
      throw store_error(store_failure::transient, "503");
  };
  capturing_log log;
  source.push(request("create", "r1", "w1"));

  const consumer_summary summary = test_consumer(source, store, log, fast(1)).run();

  EXPECT_EQ(source.acked().size(), 1u);
  EXPECT_EQ(summary.stats.retried, 0u);
  ASSERT_EQ(requests_of(log).size(), 1u);
  EXPECT_EQ(requests_of(log)[0].attempts, 3u);
}

TEST(consumer, a_permanent_failure_holds_back_the_widgets_later_requests) {
  memory_source source;
  memory_store store;
  bool fail = true;
  store.before_apply = [&](const widget_request& r) {
    if (fail && r.request_id == "r1")
      throw store_error(store_failure::permanent, "access denied");
  };
  capturing_log log;
  source.push(request("create", "r1", "w1"));
  source.push(request("update", "r2", "w1"));
  consumer_options options = fast(1);
  options.release_delay = 30ms;
  options.max_idle = 0ms;
  options.max_runtime = 20ms;

  const consumer_summary summary = test_consumer(source, store, log, options).run();

  EXPECT_EQ(summary.stats.failed, 1u);
  EXPECT_EQ(summary.stats.retried, 1u);  // r2, held back behind r1
  EXPECT_TRUE(store.history("w1").empty());
  EXPECT_EQ(source.remaining(), 2u);

  fail = false;  // the next run applies both, in order
  test_consumer(source, store, log, fast(1)).run();
  EXPECT_EQ(store.history("w1"), (std::vector<std::string>{"r1", "r2"}));
}

// A source that brings a released request back much later than asked, as
// the S3 source does when the release falls in the middle of a listing pass.
// Its releases stay here (no other consumer can take them), as the S3 and
// directory sources' do.
class late_release_source : public memory_source {
 public:
  void release(ticket_type ticket, std::chrono::milliseconds delay) {
    memory_source::release(ticket, delay * 40);
  }
  bool releases_locally() const { return true; }
};

// The store throws a transient failure at the request's first attempt only.
void fail_first_attempt_of(const std::string& request_id, memory_store& store) {
  auto failed = std::make_shared<std::atomic<bool>>(false);
  store.before_apply = [failed, request_id](const widget_request& r) {
    if (r.request_id == request_id && !failed->exchange(true))
      throw store_error(store_failure::transient, "throttled");
  };
}

// r1 fails once and is released to a late_release_source; r2, for the same
// widget, arrives `r2_after` into the run, long before r1 comes back. r2 must
// wait for r1 all the same.
void expect_r2_to_wait_for_released_r1(std::chrono::milliseconds r2_after,
                                       consumer_options options) {
  late_release_source source;
  memory_store store;
  fail_first_attempt_of("r1", store);
  capturing_log log;
  source.push(request("create", "r1", "w1"));
  options.max_attempts = 1;
  options.max_idle = 400ms;
  std::thread late_arrival([&] {
    std::this_thread::sleep_for(r2_after);
    source.push(request("update", "r2", "w1"));
  });
  consumer<late_release_source, memory_store, capturing_log>(source, store, log, options).run();
  late_arrival.join();

  EXPECT_EQ(store.history("w1"), (std::vector<std::string>{"r1", "r2"}));
  EXPECT_EQ(source.remaining(), 0u);
}

// r2 arrives after r1 was released and after release_delay.
TEST(consumer, a_released_request_is_not_overtaken_by_a_later_one_however_late_it_returns) {
  expect_r2_to_wait_for_released_r1(40ms, fast(1));
}

// A hold must outlast max_hold when the released request can only come back
// to this consumer: otherwise r2 goes first and r1 lands on top of it.
TEST(consumer, a_local_release_is_not_overtaken_when_its_hold_outlives_max_hold) {
  consumer_options options = fast(1);
  options.max_hold = 50ms;  // r1 is back only after 200 ms
  expect_r2_to_wait_for_released_r1(100ms, options);
}

// Requests released because of a hold keep their order too: r2, held back
// behind r1, must not be overtaken by r3, which arrives after r1 is back.
TEST(consumer, requests_held_back_behind_a_failure_keep_their_order) {
  memory_source source;
  memory_store store;
  fail_first_attempt_of("r1", store);
  capturing_log log;
  source.push(request("create", "r1", "w1"));
  consumer_options options = fast(1);
  options.max_attempts = 1;
  options.release_delay = 200ms;
  options.max_idle = 400ms;
  std::thread late_arrivals([&] {
    std::this_thread::sleep_for(100ms);
    source.push(request("update", "r2", "w1"));  // held: back at ~300 ms
    std::this_thread::sleep_for(150ms);
    source.push(request("update", "r3", "w1"));  // r1 applied at ~200 ms
  });
  test_consumer(source, store, log, options).run();
  late_arrivals.join();

  EXPECT_EQ(store.history("w1"), (std::vector<std::string>{"r1", "r2", "r3"}));
  EXPECT_EQ(source.remaining(), 0u);
}

// A source that keeps its releases, shared with another consumer: the
// first request it is asked to release goes to that other consumer (the S3
// source's partition of the widget changed hands), which applies it, so it
// is gone from here and said to be (concepts.hpp, release_forgetting).
class handover_source : public memory_source {
 public:
  void release(ticket_type ticket, std::chrono::milliseconds delay) {
    if (handed_over_) {
      memory_source::release(ticket, delay);
      return;
    }
    handed_over_ = true;
    memory_source::ack(ticket);  // gone from here: the other applied it
    forgotten_.push_back({.name = name_of(ticket), .widget_id = "w1"});
  }
  bool releases_locally() const { return true; }
  std::vector<forgotten_release> take_forgotten_releases() { return std::exchange(forgotten_, {}); }

 private:
  bool handed_over_ = false;
  std::vector<forgotten_release> forgotten_;
};

// F1 of issue 28: r1 fails and is released; the widget is held behind it.
// r1 then goes to another consumer. r2 of the same widget, arriving after,
// must be applied, and the run must reach its idle end: before, the hold
// waited for r1 for good (holds behind a local release never expire) and r2
// was released again at every pass.
TEST(consumer, a_hold_behind_a_release_gone_to_another_consumer_ends) {
  handover_source source;
  memory_store store;
  fail_first_attempt_of("r1", store);
  capturing_log log;
  source.push(request("create", "r1", "w1"));
  consumer_options options = fast(1);
  options.max_attempts = 1;
  options.max_idle = 300ms;
  std::thread late_arrival([&] {
    std::this_thread::sleep_for(100ms);
    source.push(request("create", "r2", "w1"));
  });
  const consumer_summary summary =
      consumer<handover_source, memory_store, capturing_log>(source, store, log, options).run();
  late_arrival.join();

  EXPECT_EQ(summary.reason, stop_reason::max_idle);
  EXPECT_EQ(store.history("w1"), (std::vector<std::string>{"r2"}));
  EXPECT_EQ(source.remaining(), 0u);
}

TEST(consumer, rejects_invalid_requests_with_the_reason) {
  memory_source source;
  memory_store store;
  store.before_apply = [](const widget_request& r) {
    if (r.widget_id == "huge")
      throw store_error(store_failure::bad_request, "item too large");
  };
  capturing_log log;
  source.push("");
  source.push("{not json");
  source.push(request("create", "r1", "w1", "R2D2"));
  source.push(request("create", "r2", "huge"));
  source.push(request("create", "r3", "w3"));

  const consumer_summary summary = test_consumer(source, store, log, fast()).run();

  const auto rejected = source.rejected();
  ASSERT_EQ(rejected.size(), 4u);
  EXPECT_EQ(rejected[0].first, memory_source::name_of(1));
  EXPECT_FALSE(rejected[0].second.empty());
  EXPECT_NE(rejected[2].second.find("owner"), std::string::npos) << rejected[2].second;
  EXPECT_EQ(rejected[3].second, "item too large");
  EXPECT_EQ(summary.stats.rejected, 4u);
  EXPECT_EQ(summary.stats.processed_total(), 1u);
  EXPECT_EQ(source.remaining(), 0u);
}

TEST(consumer, not_found_on_an_unordered_source_is_released_until_its_create_arrives) {
  memory_source source(/*ordered=*/false);
  memory_store store;
  capturing_log log;
  source.push(request("update", "r2", "w1"));
  consumer_options options = fast(1);
  options.max_idle = 0ms;
  options.max_runtime = 15ms;

  auto summary = test_consumer(source, store, log, options).run();
  EXPECT_GE(summary.stats.retried, 1u);
  EXPECT_EQ(source.remaining(), 1u);

  source.push(request("create", "r1", "w1"));
  summary = test_consumer(source, store, log, fast(1)).run();
  EXPECT_EQ(source.remaining(), 0u);
  EXPECT_EQ(summary.stats.not_found, 0u);
  EXPECT_EQ(store.history("w1").back(), "r2");  // applied after its create
}

TEST(consumer, not_found_on_an_unordered_source_gives_up_after_max_receives) {
  memory_source source(/*ordered=*/false);
  memory_store store;
  capturing_log log;
  source.push(request("delete", "r1", "ghost"));
  consumer_options options = fast(1);
  options.max_receives = 3;

  const auto summary = test_consumer(source, store, log, options).run();

  EXPECT_EQ(summary.stats.retried, 2u);
  EXPECT_EQ(summary.stats.not_found, 1u);
  EXPECT_EQ(summary.stats.processed_of(request_type::remove), 1u);
  EXPECT_EQ(source.acked().size(), 1u);
}

TEST(consumer, not_found_on_an_ordered_source_is_a_warning_and_acked) {
  memory_source source;
  memory_store store;
  capturing_log log;
  source.push(request("update", "r1", "ghost"));
  source.push(request("create", "r2", "w2", "Ann"));
  source.push(request("update", "r3", "w2", "Bob"));  // another owner

  const auto summary = test_consumer(source, store, log, fast()).run();

  EXPECT_EQ(summary.stats.not_found, 2u);
  EXPECT_EQ(summary.stats.retried, 0u);
  EXPECT_EQ(source.acked().size(), 3u);
  const auto events = requests_of(log);
  EXPECT_EQ(std::count_if(events.begin(), events.end(),
                          [](const auto& e) { return e.outcome == request_outcome::not_found; }),
            2);
}

TEST(consumer, stops_at_max_runtime_after_settling_what_it_polled) {
  memory_source source;
  memory_store store;
  capturing_log log;
  consumer_options options = fast();
  options.max_idle = 0ms;
  options.max_runtime = 50ms;
  for (int i = 0; i < 20; ++i)
    source.push(request("create", "r" + std::to_string(i), "w" + std::to_string(i)));

  const auto start = std::chrono::steady_clock::now();
  const auto summary = test_consumer(source, store, log, options).run();
  const auto took = std::chrono::steady_clock::now() - start;

  EXPECT_EQ(summary.reason, stop_reason::max_runtime);
  EXPECT_GE(took, 50ms);
  EXPECT_LT(took, 1s);
  EXPECT_EQ(summary.stats.processed_total(), 20u);
}

TEST(consumer, a_stop_request_finishes_and_acks_the_work_in_flight) {
  memory_source source;
  memory_store store;
  store.delay = 2ms;
  capturing_log log;
  for (int i = 0; i < 40; ++i)
    source.push(request("create", "r" + std::to_string(i), "w" + std::to_string(i)));
  consumer_options options = fast(2);
  options.max_idle = 0ms;
  options.max_in_flight = 8;
  stop_flag stop;
  std::jthread stopper([&] {
    std::this_thread::sleep_for(10ms);
    stop.request_stop();
  });

  const auto summary = test_consumer(source, store, log, options).run(stop);

  EXPECT_EQ(summary.reason, stop_reason::stop_requested);
  EXPECT_EQ(summary.stats.in_flight, 0u);
  // Everything polled was applied and acked; the rest stayed in the source.
  EXPECT_EQ(source.acked().size() + source.remaining(), 40u);
  EXPECT_EQ(summary.stats.processed_total(), source.acked().size());
  EXPECT_GT(source.remaining(), 0u);
  EXPECT_EQ(log.with_sink([](auto& sink) { return sink.summaries.size(); }), 1u);
  EXPECT_GE(log.with_sink([](auto& sink) { return sink.flushes; }), 1u);
}

TEST(consumer, bounds_the_requests_in_flight) {
  memory_source source;
  memory_store store;
  store.delay = 100us;
  capturing_log log;
  for (int i = 0; i < 200; ++i)
    source.push(request("create", "r" + std::to_string(i), "w" + std::to_string(i % 7)));
  consumer_options options = fast(2);
  options.max_in_flight = 10;

  const auto summary = test_consumer(source, store, log, options).run();

  EXPECT_LE(source.max_in_flight(), 10u);
  EXPECT_EQ(summary.stats.processed_total(), 200u);
}

TEST(consumer, summary_counts_are_returned_and_logged) {
  memory_source source;
  memory_store store;
  capturing_log log;
  log.set_level(log_level::debug);
  source.push(request("create", "r1", "w1"));
  source.push(request("create", "r2", "w2"));
  source.push(request("update", "r3", "w1"));
  source.push(request("delete", "r4", "w2"));
  source.push(request("delete", "r5", "w2"));  // not found
  source.push(R"({"type":"create"})");
  source.push(R"({"type":"create","requestId":"r7","widgetId":"w7","owner":"Al","colour":"red"})");
  source.failures_to_report.push_back({settle_action::ack, "000001", "DeleteObjects: 500"});
  consumer_options options = fast();
  options.progress_interval = 1ms;

  const auto summary = test_consumer(source, store, log, options).run();

  EXPECT_EQ(summary.stats.processed_of(request_type::create), 3u);
  EXPECT_EQ(summary.stats.processed_of(request_type::update), 1u);
  EXPECT_EQ(summary.stats.processed_of(request_type::remove), 2u);
  EXPECT_EQ(summary.stats.not_found, 1u);
  EXPECT_EQ(summary.stats.rejected, 1u);
  EXPECT_EQ(summary.stats.settle_failures, 1u);
  EXPECT_EQ(summary.stats.failed, 0u);
  EXPECT_GT(summary.stats.rate(), 0.0);
  log.with_sink([&](doubles::capturing_sink& sink) {
    ASSERT_EQ(sink.summaries.size(), 1u);
    EXPECT_EQ(sink.summaries[0].stats.processed_total(), 6u);
    EXPECT_FALSE(sink.progress.empty());
    const auto mentions = [&](log_level level, std::string_view text) {
      return std::any_of(sink.messages.begin(), sink.messages.end(), [&](const auto& m) {
        return m.level == level && m.text.find(text) != std::string::npos;
      });
    };
    EXPECT_TRUE(mentions(log_level::error, "DeleteObjects: 500"));
    EXPECT_TRUE(mentions(log_level::debug, "colour"));
  });
}

// A source with the optional request_stop(): called once when a stop is
// requested, before the work in flight is settled; not on other stops.
struct stoppable_source : memory_source {
  void request_stop() {
    ++stops;
    acked_at_stop = acked().size();
  }
  int stops = 0;
  std::size_t acked_at_stop = 0;
};
static_assert(widget_consumer::stop_requesting<stoppable_source>);
static_assert(!widget_consumer::stop_requesting<memory_source>);

TEST(consumer, a_stop_request_tells_a_source_that_can_hear_it) {
  stoppable_source source;
  memory_store store;
  store.delay = 5ms;
  capturing_log log;
  for (int i = 0; i < 40; ++i)
    source.push(request("create", "r" + std::to_string(i), "w" + std::to_string(i)));
  consumer_options options = fast(2);
  options.max_idle = 0ms;
  options.max_in_flight = 8;
  stop_flag stop;
  std::jthread stopper([&] {
    std::this_thread::sleep_for(20ms);
    stop.request_stop();
  });

  const auto summary =
      consumer<stoppable_source, memory_store, capturing_log>(source, store, log, options)
          .run(stop);

  EXPECT_EQ(summary.reason, stop_reason::stop_requested);
  EXPECT_EQ(source.stops, 1);
  // Told before the work in flight was settled (8 in flight, 5 ms each).
  EXPECT_LT(source.acked_at_stop, source.acked().size());
}

TEST(consumer, other_stops_do_not_call_request_stop) {
  stoppable_source source;
  memory_store store;
  capturing_log log;
  source.push(request("create", "r1", "w1"));
  const auto summary =
      consumer<stoppable_source, memory_store, capturing_log>(source, store, log, fast()).run();
  EXPECT_EQ(summary.reason, stop_reason::max_idle);
  EXPECT_EQ(source.stops, 0);
}

TEST(consumer, gives_up_after_consecutive_poll_failures) {
  struct failing_source : memory_source {
    std::vector<received_request<ticket_type>> poll(std::chrono::milliseconds, std::size_t) {
      throw std::runtime_error("ListObjectsV2: 403 AccessDenied");
    }
  } source;
  memory_store store;
  capturing_log log;
  consumer_options options = fast();
  options.max_poll_failures = 3;
  options.poll_failure_delay = 1ms;
  options.max_idle = 0ms;

  const auto summary =
      consumer<failing_source, memory_store, capturing_log>(source, store, log, options).run();

  EXPECT_EQ(summary.reason, stop_reason::poll_failures);
  EXPECT_EQ(summary.stats.poll_failures, 3u);
}

// A source with the optional begin_flush(): its calls end later, on a
// thread of its own, and their failures come with a later flush. The
// consumer uses begin_flush() while it runs and flush() once, last, and
// counts what only that last flush() reports.
struct background_source : memory_source {
  std::vector<settle_failure> begin_flush() {
    ++begun;
    begun_after_flush += flushes;
    return {};
  }
  std::vector<settle_failure> flush() {
    ++flushes;
    auto failures = memory_source::flush();
    failures.push_back({.action = settle_action::ack,
                        .name = "000002",
                        .reason = "DeleteMessageBatch: InternalError"});
    return failures;
  }
  int begun = 0;
  int flushes = 0;
  int begun_after_flush = 0;
};
static_assert(widget_consumer::background_flushing<background_source>);
static_assert(!widget_consumer::background_flushing<memory_source>);

TEST(consumer, flushes_in_the_background_and_waits_at_the_end) {
  background_source source;
  memory_store store;
  capturing_log log;
  for (int i = 0; i < 5; ++i)
    source.push(request("create", "r" + std::to_string(i), "w" + std::to_string(i)));

  const auto summary =
      consumer<background_source, memory_store, capturing_log>(source, store, log, fast()).run();

  EXPECT_EQ(summary.stats.processed_total(), 5u);
  EXPECT_GT(source.begun, 0);
  EXPECT_EQ(source.flushes, 1);
  EXPECT_EQ(source.begun_after_flush, 0);
  EXPECT_EQ(summary.stats.settle_failures, 1u);
  log.with_sink([&](doubles::capturing_sink& sink) {
    ASSERT_EQ(sink.summaries.size(), 1u);
    EXPECT_EQ(sink.summaries[0].stats.settle_failures, 1u);
    EXPECT_TRUE(std::any_of(sink.messages.begin(), sink.messages.end(), [](const auto& m) {
      return m.level == log_level::error &&
             m.text.find("DeleteMessageBatch: InternalError") != std::string::npos;
    }));
  });
}

}  // namespace
