#include <widget_consumer/consumer.hpp>
#include <widget_consumer/destination/dynamodb_table.hpp>
#include <widget_consumer/destination/s3_bucket.hpp>
#include <widget_consumer/source/s3_bucket.hpp>
#include <widget_consumer/source/sqs_queue.hpp>

#include "support/emulator.hpp"
#include "support/fault_proxy.hpp"
#include "support/memory_policies.hpp"
#include "support/request_generator.hpp"
#include "support/service_contents.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

// Nothing is lost when the network misbehaves: for every source/store
// combination and every fault the proxy injects (tests/support/fault_proxy.py),
// the consumer's AWS clients talk to the local server only through the
// proxy, while setting up and checking talk to it directly. After the drain
// the store must hold exactly the widgets the requests lead to, the source
// only what was rejected, and the summary the counts the generator implies.

namespace widget_consumer {
namespace {

using namespace std::chrono_literals;
using widget_consumer::testing::capturing_log;
using widget_consumer::testing::capturing_sink;
using widget_consumer::testing::fault_proxy;
using widget_consumer::testing::fault_proxy_options;
using widget_consumer::testing::list_all;
using widget_consumer::testing::messages_in;
using widget_consumer::testing::unique_name;
namespace json = boost::json;

constexpr int request_count = 200;
// Where "slow" faults are injected the client gives up on an answer after
// slow_timeout, and a "slow" one is held longer. Elsewhere the timeout is
// long enough that a loaded server does not trip it: a call that times out
// may still be applied after its retry and after the widget's next request
// (RELIABILITY.md, "Late writes"), which is not the fault those profiles test.
constexpr auto slow_timeout = 1500ms;
constexpr auto patient_timeout = 10s;
constexpr int slow_ms = 2500;
// How long a scenario may go on restarting its consumer to drain the source.
constexpr auto restart_deadline = std::chrono::seconds(150);

enum class source_kind { s3, sqs };
enum class store_kind { s3, dynamodb };

struct fault_profile {
  const char* name;
  std::map<std::string, double> faults;
  // Faults that answer before the server saw the request cannot make a
  // request apply twice, so nothing may be reported not found.
  bool before_forwarding_only = false;
};

struct scenario {
  source_kind source;
  store_kind store;
  fault_profile profile;
};

std::string name_of(const scenario& s) {
  std::string name = s.source == source_kind::s3 ? "s3_to_" : "sqs_to_";
  name += s.store == store_kind::s3 ? "s3_" : "dynamodb_";
  for (const char* c = s.profile.name; *c != '\0'; ++c)
    name += *c == '-' ? '_' : *c;
  return name;
}

aws::client_config direct_config() {
  return widget_consumer::testing::client_config_for(widget_consumer::testing::plain_emulator());
}

std::chrono::milliseconds client_timeout_for(const fault_profile& profile) {
  return profile.faults.contains("slow") ? slow_timeout : patient_timeout;
}

// The consumer's: through the proxy, with a timeout a "slow" answer trips.
aws::client_config proxied_config(const fault_proxy& proxy, std::chrono::milliseconds timeout) {
  auto config = direct_config();
  config.endpoint = proxy.endpoint();
  config.http.total_timeout = timeout;
  config.http.connect_timeout = 1000ms;
  return config;
}

// What the generator produced, as the consumer should count it.
struct produced {
  std::array<std::uint64_t, 3> valid_by_type{};
  std::uint64_t invalid = 0;
  std::map<std::string, widget> expected;
  // Each widget's requests in the order written: "type requestId".
  std::map<std::string, std::vector<std::string>> written;
};

template <class Each>
produced generate(std::uint64_t seed, Each&& each) {
  widget_producer::request_generator generator(seed, 0.05);
  produced result;
  for (int i = 0; i < request_count; ++i) {
    auto generated = generator.next();
    if (generated.valid) {
      const auto parsed = std::get<widget_request>(parse_request(generated.body));
      ++result.valid_by_type[static_cast<std::size_t>(parsed.type)];
      result.written[parsed.widget_id].push_back(std::string(to_string(parsed.type)) + " " +
                                                 parsed.request_id);
    } else {
      ++result.invalid;
    }
    each(i, generated);
  }
  result.expected = generator.expected_widgets();
  return result;
}

// Policies built through the proxy may meet a fault in their constructor
// (GetQueueUrl): built again, a bounded number of times, as a program would
// be restarted.
template <class T, class... Args>
std::unique_ptr<T> build(Args&&... args) {
  for (int attempt = 1;; ++attempt) {
    try {
      return std::make_unique<T>(args...);
    } catch (const std::exception&) {
      if (attempt == 5)
        throw;
      std::this_thread::sleep_for(100ms);
    }
  }
}

// One scenario: its own request source, store and proxy, so the scenarios
// of one combination run side by side.
// A source as the consumer sees it, with a record of its last polls: when a
// run stops early, this says whether the source said "nothing" or failed.
template <class Source>
class traced_source {
 public:
  using ticket_type = typename Source::ticket_type;

  explicit traced_source(Source& source) : source_(source) {}

  std::vector<received_request<ticket_type>> poll(std::chrono::milliseconds wait, std::size_t max) {
    const auto start = std::chrono::steady_clock::now();
    auto note = [&](const std::string& what) {
      const auto took = std::chrono::steady_clock::now() - start;
      trace_.push_back(
          what + " after " +
          std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()) +
          " ms");
      if (trace_.size() > 30)
        trace_.pop_front();
    };
    try {
      auto batch = source_.poll(wait, max);
      note("poll gave " + std::to_string(batch.size()));
      return batch;
    } catch (const std::exception& e) {
      note(std::string("poll threw ") + e.what());
      throw;
    }
  }
  void ack(ticket_type ticket) { source_.ack(std::move(ticket)); }
  void release(ticket_type ticket, std::chrono::milliseconds delay) {
    source_.release(std::move(ticket), delay);
  }
  void reject(ticket_type ticket, std::string_view reason) {
    source_.reject(std::move(ticket), reason);
  }
  std::vector<settle_failure> flush() { return source_.flush(); }
  bool ordered() const { return source_.ordered(); }

  std::string trace() const {
    std::string text;
    for (const auto& line : trace_)
      text += "  " + line + "\n";
    return text;
  }

 private:
  Source& source_;
  std::deque<std::string> trace_;
};

class fault_run {
 public:
  // Drains through the proxy, then checks everything against the server.
  void run_and_check();

  explicit fault_run(scenario what) : scenario_(std::move(what)) {
    const auto& s = scenario_;
    s3_.emplace(direct_config());
    sqs_.emplace(direct_config());
    dynamodb_.emplace(direct_config());
    const std::uint64_t seed = std::hash<std::string>{}(name_of(s)) % 100000;
    if (s.source == source_kind::s3)
      produce_to_bucket(seed);
    else
      produce_to_queue(seed);
    if (s.store == store_kind::s3) {
      widget_bucket_ = unique_name("widgets");
      s3_->create_bucket(widget_bucket_);
    } else {
      table_ = unique_name("widgets");
      dynamodb_->create_table(
          table_,
          {{"KeySchema", json::array{{{"AttributeName", "id"}, {"KeyType", "HASH"}}}},
           {"AttributeDefinitions", json::array{{{"AttributeName", "id"}, {"AttributeType", "S"}}}},
           {"BillingMode", "PAY_PER_REQUEST"}});
      dynamodb_->wait_until_active(table_, 10s);
    }
    fault_proxy_options proxy_options;
    proxy_options.upstream = widget_consumer::testing::plain_emulator().endpoint;
    proxy_options.seed = seed;
    proxy_options.slow_ms = slow_ms;
    proxy_options.late_ms = static_cast<int>(client_timeout_for(s.profile).count());
    proxy_options.faults = s.profile.faults;
    proxy_.emplace(proxy_options);
  }

  void produce_to_bucket(std::uint64_t seed) {
    request_bucket_ = unique_name("requests");
    s3_->create_bucket(request_bucket_);
    std::vector<std::pair<std::string, std::string>> objects;
    produced_ = generate(seed, [&](int i, const widget_producer::generated_request& request) {
      // 13-digit epoch milliseconds, strictly increasing like the producer's.
      objects.emplace_back(std::to_string(1717200000000 + static_cast<std::int64_t>(i) * 3),
                           request.body);
    });
    std::vector<std::thread> writers;
    for (std::size_t w = 0; w < 8; ++w)
      writers.emplace_back([&, w] {
        for (std::size_t i = w; i < objects.size(); i += 8)
          s3_->put_object(request_bucket_, objects[i].first, objects[i].second, "application/json");
      });
    for (auto& writer : writers)
      writer.join();
  }

  void produce_to_queue(std::uint64_t seed) {
    const std::map<std::string, std::string, std::less<>> fifo{
        {"FifoQueue", "true"}, {"ContentBasedDeduplication", "false"}};
    queue_ = sqs_->create_queue(unique_name("requests") + ".fifo", fifo);
    dead_letters_ = sqs_->create_queue(unique_name("rejected") + ".fifo", fifo);
    std::vector<aws::sqs_send_entry> entries;
    produced_ = generate(seed, [&](int i, const widget_producer::generated_request& request) {
      aws::sqs_send_options send;
      send.message_group_id = request.widget_id.empty() ? "invalid" : request.widget_id;
      send.message_deduplication_id = std::to_string(i);
      // SQS has no empty messages: a blank one stands in for the empty body.
      entries.push_back({request.body.empty() ? " " : request.body, send});
    });
    if (!sqs_->send_message_batch(queue_, entries).failed.empty())
      throw std::runtime_error("could not send the requests");
  }

 private:
  consumer_options options() const {
    consumer_options result;
    result.concurrency = 8;
    result.poll_wait = 200ms;
    result.empty_poll_delay = 50ms;
    result.release_delay = 500ms;
    result.retry_backoff = 20ms;
    result.poll_failure_delay = 100ms;
    result.max_poll_failures = 0;  // a fault storm must not end the run early
    // SQS: a receive whose answer was lost hides its messages for the
    // visibility timeout (2 s); idle must outlast it or they are left behind.
    result.max_idle = scenario_.source == source_kind::sqs ? 3500ms : 2s;
    result.max_runtime = 60s;  // a safety net only
    result.progress_interval = 0ms;
    return result;
  }

  template <class Source, class Store>
  consumer_summary drain(Source& source, Store& store) {
    traced_source<Source> traced(source);
    consumer<traced_source<Source>, Store, capturing_log> run(traced, store, log_, options());
    auto summary = run.run();
    trace_ = traced.trace();
    return summary;
  }

  bool drained() {
    if (scenario_.source == source_kind::sqs)
      return messages_in(*sqs_, queue_) == 0;
    const auto keys = list_all(*s3_, request_bucket_);
    return std::ranges::all_of(keys, [](const auto& key) { return key.starts_with("rejected/"); });
  }

  // Runs the consumer until the source is drained, restarting it when it
  // stopped idle too early: a call that meets a fault on each of its
  // attempts, or a loaded server answering after the client's timeout, hides
  // its requests for a while (SQS: the visibility timeout), longer than a
  // short max_idle. Nothing is lost meanwhile, so the bound is a deadline,
  // not a number of restarts. Restarts are reported.
  consumer_summary run_until_drained() {
    const auto deadline = std::chrono::steady_clock::now() + restart_deadline;
    consumer_summary total = run_consumer();
    while (!drained() && std::chrono::steady_clock::now() < deadline) {
      // Kept for a failure's report: printed now, they would bury it.
      restart_notes_ += "  restart: stopped (" + std::string(to_string(total.reason)) +
                        ") before the source was drained; last polls:\n" + trace_;
      const consumer_summary next = run_consumer();
      auto& sum = total.stats;
      const auto& more = next.stats;
      for (std::size_t type = 0; type < sum.processed.size(); ++type)
        sum.processed[type] += more.processed[type];
      sum.not_found += more.not_found;
      sum.rejected += more.rejected;
      sum.retried += more.retried;
      sum.failed += more.failed;
      sum.settle_failures += more.settle_failures;
      sum.poll_failures += more.poll_failures;
      sum.in_flight = more.in_flight;
      total.reason = next.reason;
      ++restarts_;
    }
    return total;
  }

  consumer_summary run_consumer() {
    const auto& s = scenario_;
    const auto config = proxied_config(*proxy_, client_timeout_for(s.profile));
    auto with_store = [&](auto& source) {
      if (s.store == store_kind::s3) {
        s3_bucket_store store(config, widget_bucket_);
        return drain(source, store);
      }
      dynamodb_table_store store(config, table_);
      return drain(source, store);
    };
    if (s.source == source_kind::s3) {
      s3_bucket_source_options source_options;
      source_options.page_size = 50;
      // One consumer: claims off, so the restarts here do not wait out the
      // claims a faulty delete left behind (s3_claims_test.py covers them).
      source_options.claims = false;
      auto source = build<s3_bucket_source>(config, request_bucket_, source_options);
      return with_store(*source);
    }
    sqs_queue_options source_options;
    source_options.wait_time = 1s;  // below the client's timeout
    // Short, so what a lost answer hid comes back soon. The default receivers
    // (3) and 10 messages per receive: scripts/moto_server.py hands a FIFO
    // group to one receive at a time and redelivers it in order, as SQS does.
    source_options.visibility_timeout = 2s;
    source_options.dead_letter_queue = dead_letters_;
    auto source = build<sqs_queue_source>(config, queue_, source_options);
    auto summary = with_store(*source);
    heartbeat_failures_ += source->heartbeat_failures();
    return summary;
  }

  std::map<std::string, widget> stored_widgets() {
    std::map<std::string, widget> stored;
    if (scenario_.store == store_kind::dynamodb) {
      for (const auto& item : dynamodb_->scan_all(table_, {{"ConsistentRead", true}})) {
        if (dynamodb_is_tombstone(item))  // a delete's, not a widget
          continue;
        auto each = widget_from_dynamodb_item(item);
        stored.emplace(each.widget_id, std::move(each));
      }
      return stored;
    }
    // Under the widget prefix only: the fence's tombstones live beside it.
    aws::s3_list_options widget_prefix;
    widget_prefix.prefix = "widgets/";
    for (const auto& key : list_all(*s3_, widget_bucket_, widget_prefix)) {
      const auto body = s3_->get_object(widget_bucket_, key);
      if (!body) {
        ADD_FAILURE() << "widget " << key << " vanished while checking";
        continue;
      }
      auto each = widget_from_json(*body);
      EXPECT_EQ(key, widget_key(each.owner, each.widget_id)) << "widget stored under the wrong key";
      stored.emplace(each.widget_id, std::move(each));
    }
    return stored;
  }

  // What the consumer did with one widget's requests, for a failure message.
  std::string history_of(const std::string& widget_id) {
    return log_.with_sink([&](const capturing_sink& sink) {
      std::string text = "  written:";
      for (const auto& each : produced_.written[widget_id])
        text += " " + each + ";";
      text += "\n";
      for (const auto& each : sink.requests)
        if (each.widget_id == widget_id)
          text += "  " + each.name + " " + std::string(to_string(each.type)) + " " +
                  each.request_id + " " + std::string(to_string(each.outcome)) + " attempts " +
                  std::to_string(each.attempts) + " " + each.detail + "\n";
      return text;
    });
  }

  scenario scenario_;
  std::string trace_;
  std::string restart_notes_;
  int restarts_ = 0;
  std::uint64_t heartbeat_failures_ = 0;
  std::optional<aws::s3_client> s3_;
  std::optional<aws::sqs_client> sqs_;
  std::optional<aws::dynamodb_client> dynamodb_;
  std::string request_bucket_, widget_bucket_, table_, queue_, dead_letters_;
  produced produced_;
  std::optional<fault_proxy> proxy_;
  capturing_log log_;
};

void fault_run::run_and_check() {
  const auto& s = scenario_;
  SCOPED_TRACE(name_of(s));
  const auto started = std::chrono::steady_clock::now();
  const consumer_summary summary = run_until_drained();
  const auto took = std::chrono::steady_clock::now() - started;
  proxy_->stop();
  auto counted = proxy_->stats();

  std::string injected;
  for (const auto& [kind, count] : counted.faults)
    if (count > 0)
      injected += " " + kind + "=" + std::to_string(count);
  std::cout << "[ scenario ] " << name_of(s) << ": "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms, "
            << counted.requests << " requests through the proxy, faults:" << injected
            << "; retried " << summary.stats.retried << ", not found " << summary.stats.not_found
            << ", settle failures " << summary.stats.settle_failures << ", processed "
            << summary.stats.processed_total() << " of "
            << produced_.valid_by_type[0] + produced_.valid_by_type[1] + produced_.valid_by_type[2]
            << ", rejected " << summary.stats.rejected << " of " << produced_.invalid
            << ", stopped: " << to_string(summary.reason) << ", restarts " << restarts_
            << ", poll failures " << summary.stats.poll_failures << ", heartbeat failures "
            << heartbeat_failures_ << "; server answers after the client's timeout " << counted.late
            << " (slowest " << counted.slowest_ms << " ms), abandoned requests "
            << counted.abandoned << "\n";
  for (const auto& [kind, rate] : s.profile.faults) {
    if (rate >= 0.05) {
      EXPECT_GT(counted.faults[kind], 0u) << kind << " was never injected";
    }
  }
  EXPECT_EQ(counted.upstream_errors, 0u) << proxy_->log();

  // Nothing in flight was left behind, and every request was counted, once
  // unless its ack or reject failed: then it was delivered, and counted, again.
  EXPECT_EQ(summary.reason, stop_reason::max_idle);
  const consumer_stats& stats = summary.stats;
  // A request whose write was applied but whose answer was lost comes back
  // stale on its retry (the fence), counted as stale, not by its type.
  const std::uint64_t valid =
      produced_.valid_by_type[0] + produced_.valid_by_type[1] + produced_.valid_by_type[2];
  EXPECT_GE(stats.processed_total() + stats.stale, valid);
  std::uint64_t counted_again = stats.processed_total() + stats.stale - valid;
  for (std::size_t type = 0; type < 3; ++type)
    EXPECT_GE(stats.processed[type] + stats.stale, produced_.valid_by_type[type])
        << "type " << type;
  EXPECT_GE(stats.rejected, produced_.invalid);
  counted_again += stats.rejected - produced_.invalid;
  EXPECT_LE(counted_again, stats.settle_failures);
  EXPECT_EQ(stats.failed, 0u);
  EXPECT_EQ(stats.in_flight, 0u);
  // Those faults apply nothing, so nothing is applied twice, unless a request
  // was delivered again: its ack failed, its visibility ran out (heartbeat
  // failures), or the server answered after the client's timeout and so
  // applied the attempt that was retried.
  if (s.profile.before_forwarding_only) {
    if (stats.settle_failures == 0 && heartbeat_failures_ == 0 && counted.late == 0)
      EXPECT_EQ(stats.not_found, 0u);
    else
      std::cout << "  " << name_of(s) << ": not found " << stats.not_found
                << " not checked: requests were delivered or applied again\n";
  }

  // The store, read directly, holds exactly the expected widgets.
  const std::string late_note =
      counted.late == 0 ? ""
                        : "  " + std::to_string(counted.late) +
                              " server answers came after the client's timeout: a timed-out "
                              "write may have been applied after its retry\n";
  auto expected = produced_.expected;
  auto stored = stored_widgets();
  if (s.store == store_kind::dynamodb)
    for (auto& [id, each] : expected)  // DynamoDB keeps no attribute order
      std::ranges::sort(each.other_attributes, {}, &widget_attribute::name);
  EXPECT_EQ(stored.size(), expected.size());
  for (const auto& [id, each] : expected) {
    const auto found = stored.find(id);
    if (found == stored.end())
      ADD_FAILURE() << "widget " << id << " is missing";
    else
      EXPECT_TRUE(found->second == each)
          << "widget " << id << " differs:\n  stored   " << to_json(found->second)
          << "\n  expected " << to_json(each) << "\n"
          << history_of(id) << late_note;
  }
  for (const auto& [id, each] : stored)
    EXPECT_TRUE(expected.contains(id)) << "widget " << id << " should not exist";

  // The source holds only what was rejected, each request once.
  if (s.source == source_kind::s3) {
    std::size_t rejected = 0, reasons = 0;
    for (const auto& key : list_all(*s3_, request_bucket_)) {
      if (!key.starts_with("rejected/"))
        ADD_FAILURE() << "request " << key << " is still in the source";
      else if (key.ends_with(".reason"))
        ++reasons;
      else
        ++rejected;
    }
    EXPECT_EQ(rejected, produced_.invalid);
    EXPECT_EQ(reasons, produced_.invalid);
  } else {
    EXPECT_EQ(messages_in(*sqs_, queue_), 0);
    EXPECT_EQ(messages_in(*sqs_, dead_letters_), static_cast<int>(produced_.invalid));
  }

  if (::testing::Test::HasFailure())
    std::cout << "  " << name_of(s) << ": " << restarts_ << " restarts\n"
              << restart_notes_ << "  last polls:\n"
              << trace_;
  if (::testing::Test::HasFailure())
    log_.with_sink([](const capturing_sink& sink) {
      for (const auto& message : sink.messages)
        if (message.level >= log_level::warning)
          std::cout << "  log: " << message.text << "\n";
    });
}

// Each kind alone at a rate that hits every phase (listing, fetching,
// storing, settling) several times in 200 requests, then all at once.
const std::vector<fault_profile> profiles{
    {.name = "throttle", .faults = {{"throttle", 0.10}}, .before_forwarding_only = true},
    {.name = "reset", .faults = {{"reset", 0.08}}, .before_forwarding_only = true},
    {.name = "after", .faults = {{"after", 0.08}}, .before_forwarding_only = false},
    {.name = "reset-after", .faults = {{"reset-after", 0.08}}, .before_forwarding_only = false},
    {.name = "slow", .faults = {{"slow", 0.05}}, .before_forwarding_only = false},
    {.name = "mixed",
     .faults = {{"throttle", 0.04},
                {"after", 0.03},
                {"reset", 0.03},
                {"reset-after", 0.03},
                {"slow", 0.02}},
     .before_forwarding_only = false},
};

struct combination {
  source_kind source;
  store_kind store;
};

void PrintTo(const combination& c, std::ostream* out) {
  *out << (c.source == source_kind::s3 ? "s3_to_" : "sqs_to_")
       << (c.store == store_kind::s3 ? "s3" : "dynamodb");
}

class fault_injection : public ::testing::TestWithParam<combination> {};

// The profiles of one combination run side by side, each with its own
// proxy and resources: most of a run is spent in retry backoff, so they
// overlap well, and one combination takes about as long as its slowest run.
TEST_P(fault_injection, nothing_is_lost_and_the_store_ends_exactly_as_expected) {
  std::vector<std::unique_ptr<fault_run>> runs;
  for (const auto& profile : profiles)
    runs.push_back(
        std::make_unique<fault_run>(scenario{GetParam().source, GetParam().store, profile}));
  std::vector<std::thread> threads;
  for (auto& run : runs)
    threads.emplace_back([&run] {
      try {
        run->run_and_check();
      } catch (const std::exception& e) {
        ADD_FAILURE() << "scenario threw: " << e.what();
      }
    });
  for (auto& thread : threads)
    thread.join();
}

INSTANTIATE_TEST_SUITE_P(all, fault_injection,
                         ::testing::Values(combination{source_kind::s3, store_kind::s3},
                                           combination{source_kind::s3, store_kind::dynamodb},
                                           combination{source_kind::sqs, store_kind::s3},
                                           combination{source_kind::sqs, store_kind::dynamodb}),
                         [](const ::testing::TestParamInfo<combination>& param) {
                           std::ostringstream name;
                           PrintTo(param.param, &name);
                           return name.str();
                         });

}  // namespace
}  // namespace widget_consumer
