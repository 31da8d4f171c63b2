#pragma once
// metrics_log: a log_policy that keeps the consumer's metrics instead of
// writing lines, for an operator to scrape (metrics/http_server.hpp serves
// them). Composes with the other logs:
//
//   tee_log<console_log, metrics_log> log;
//   consumer<Source, Store, tee_log<console_log, metrics_log>> c(source, store, log);
//   metrics_server server(listen_address::parse("127.0.0.1:9464"), log.second());
//
// Besides the log_policy hooks it has the optional observe() and
// store_call() (concepts.hpp, state_observing and store_call_observing).
// Request events and store calls, the hot path, only add to atomics; the
// poll thread's observe() takes a lock of its own, once per poll round.
// Counters count since the metrics_log was made, over every run() that
// reported to it.

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <widget_consumer/concepts.hpp>
#include <widget_consumer/log/null.hpp>
#include <widget_consumer/metrics/registry.hpp>

namespace widget_consumer {

namespace metrics {

/// Received to settled: milliseconds for a local store, seconds for a slow
/// one or a request retried within its delivery.
inline std::vector<double> request_duration_buckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

/// One call of the store: a local file to a remote service's timeout.
inline std::vector<double> store_call_buckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

/// When this process began, in seconds since the Unix epoch: from Linux's
/// /proc (its start in clock ticks after boot, and the boot time), else now.
inline double process_start_time_seconds() {
  const double now = std::chrono::duration<double>(log_clock::now().time_since_epoch()).count();
  std::ifstream self("/proc/self/stat");
  std::string text;
  std::getline(self, text);
  const auto name_end = text.rfind(')');  // the command name may hold spaces
  if (name_end == std::string::npos)
    return now;
  std::istringstream fields(text.substr(name_end + 1));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {  // fields 3 (state) to 22 (starttime)
  }
  std::ifstream system("/proc/stat");
  std::string line;
  double boot = 0;
  while (std::getline(system, line))
    if (line.starts_with("btime "))
      boot = std::stod(line.substr(6));
  const long ticks = ::sysconf(_SC_CLK_TCK);
  if (!fields || boot <= 0 || ticks <= 0)
    return now;
  return boot + std::stod(field) / static_cast<double>(ticks);
}

}  // namespace metrics

/// The text side of a log policy is null_log's: metrics_log only counts.
class metrics_log : public null_log {
 public:
  /// The "type" label of a request whose body did not parse.
  static constexpr std::string_view unknown_type = "unknown";

  metrics_log() : start_time_(metrics::process_start_time_seconds()) {}

  metrics_log(const metrics_log&) = delete;
  metrics_log& operator=(const metrics_log&) = delete;

  // ---- log_policy --------------------------------------------------------

  /// Counts the request by type and outcome, and observes its latency.
  void request(const request_event& event) noexcept {
    requests_[type_index(event)][static_cast<std::size_t>(event.outcome)].add();
    request_duration_.observe(std::chrono::duration<double>(event.latency).count());
  }
  // ---- optional hooks ----------------------------------------------------

  /// Observes the store call's duration, by type and whether it threw.
  void store_call(const store_call_event& event) noexcept {
    store_call_duration_.observe(std::chrono::duration<double>(event.duration).count());
    if (event.threw)
      store_call_errors_.add();
  }

  /// The run's counts are since its run() began: what is new since the last
  /// observation of the same run is added to the counters.
  void observe(const consumer_state& state) {
    std::lock_guard lock(mutex_);
    if (state.run_started != run_started_) {
      run_started_ = state.run_started;
      seen_ = {};
    }
    add_new(settle_failures_, seen_.settle_failures, state.stats.settle_failures);
    add_new(poll_failures_, seen_.poll_failures, state.stats.poll_failures);
    add_new(heartbeat_refusals_, seen_.heartbeat_refusals, state.stats.heartbeat_refusals);
    in_flight_.set(static_cast<double>(state.stats.in_flight));
    lanes_busy_.set(static_cast<double>(state.lanes_busy));
    lanes_.set(static_cast<double>(state.lanes));
    if (state.source_backlog)
      backlog_.store(static_cast<std::int64_t>(*state.source_backlog), std::memory_order_relaxed);
    if (state.last_poll_ok != log_clock::time_point{})
      last_poll_ok_.store(state.last_poll_ok.time_since_epoch().count(), std::memory_order_relaxed);
  }

  // ---- reading -----------------------------------------------------------

  /// A poll succeeded within `within` of now (none yet: not ready).
  bool ready(std::chrono::milliseconds within, log_clock::time_point now = log_clock::now()) const {
    const auto last = last_poll_ok();
    return last && now - *last <= within;
  }
  /// When the last poll that did not throw happened; nullopt before any.
  std::optional<log_clock::time_point> last_poll_ok() const {
    const auto ticks = last_poll_ok_.load(std::memory_order_relaxed);
    if (ticks == 0)
      return std::nullopt;
    return log_clock::time_point{log_clock::duration{ticks}};
  }

  /// The requests of `type` ("create", "update", "delete") counted with `outcome`.
  std::uint64_t requests(std::string_view type, request_outcome outcome) const {
    for (std::size_t i = 0; i < type_names.size(); ++i)
      if (type_names[i] == type)
        return requests_[i][static_cast<std::size_t>(outcome)].value();
    return 0;
  }

  /// The /metrics page, in the text exposition format 0.0.4.
  std::string exposition() const {
    metrics::text_exposition out;
    write_requests(out);
    write_counter(out, "widget_consumer_settle_failures_total",
                  "Acks, releases and rejects that did not take effect (the request comes again).",
                  settle_failures_);
    write_counter(out, "widget_consumer_poll_failures_total", "Polls of the source that failed.",
                  poll_failures_);
    write_counter(out, "widget_consumer_heartbeat_refusals_total",
                  "Visibility extensions the source refused for requests still being worked on: "
                  "another consumer may receive them meanwhile.",
                  heartbeat_refusals_);
    write_counter(out, "widget_consumer_store_call_errors_total",
                  "Store calls that failed (each retry counts).", store_call_errors_);
    write_gauge(out, "widget_consumer_requests_in_flight", "Requests polled and not yet settled.",
                in_flight_.value());
    write_gauge(out, "widget_consumer_lanes_busy", "Lanes calling the store now.",
                lanes_busy_.value());
    write_gauge(out, "widget_consumer_lanes", "Lanes of the running consumer.", lanes_.value());
    if (const auto backlog = backlog_.load(std::memory_order_relaxed); backlog >= 0)
      write_gauge(out, "widget_consumer_source_backlog",
                  "Requests the source has listed and not handed out yet, as of the last poll "
                  "(S3 source: at most about two listing pages ahead).",
                  static_cast<double>(backlog));
    write_gauge(out, "widget_consumer_last_successful_poll_timestamp_seconds",
                "When a poll of the source last succeeded, in seconds since the Unix epoch (0: "
                "none yet).",
                last_poll_seconds());
    write_histogram(out, "widget_consumer_request_duration_seconds",
                    "From a request's receipt to its settlement.", request_duration_);
    write_histogram(out, "widget_consumer_store_call_duration_seconds",
                    "One call of the widget store.", store_call_duration_);
    write_gauge(out, "process_start_time_seconds",
                "Start time of the process since the Unix epoch in seconds.", start_time_);
    return out.take();
  }

 private:
  static constexpr std::array<std::string_view, 4> type_names{"create", "update", "delete",
                                                              unknown_type};
  static constexpr std::array<request_outcome, 6> outcomes{
      request_outcome::applied,  request_outcome::not_found, request_outcome::rejected,
      request_outcome::released, request_outcome::failed,    request_outcome::stale};

  struct run_counts {
    std::uint64_t settle_failures = 0;
    std::uint64_t poll_failures = 0;
    std::uint64_t heartbeat_refusals = 0;
  };

  static std::size_t type_index(const request_event& event) noexcept {
    return event.parsed ? static_cast<std::size_t>(event.type) : type_names.size() - 1;
  }

  static void add_new(metrics::counter& counter, std::uint64_t& seen, std::uint64_t now) {
    if (now > seen)
      counter.add(now - seen);
    seen = std::max(seen, now);
  }

  double last_poll_seconds() const {
    const auto last = last_poll_ok();
    return last ? std::chrono::duration<double>(last->time_since_epoch()).count() : 0.0;
  }

  void write_requests(metrics::text_exposition& out) const {
    out.family("widget_consumer_requests_total", "counter",
               "Requests settled, by type (unknown: the body did not parse) and outcome.");
    for (std::size_t type = 0; type < type_names.size(); ++type)
      for (const request_outcome outcome : outcomes)
        out.sample("widget_consumer_requests_total",
                   {{.name = "type", .value = type_names[type]},
                    {.name = "outcome", .value = to_string(outcome)}},
                   static_cast<double>(requests_[type][static_cast<std::size_t>(outcome)].value()));
  }
  static void write_counter(metrics::text_exposition& out, std::string_view name,
                            std::string_view help, const metrics::counter& counter) {
    out.family(name, "counter", help);
    out.sample(name, {}, static_cast<double>(counter.value()));
  }
  static void write_gauge(metrics::text_exposition& out, std::string_view name,
                          std::string_view help, double value) {
    out.family(name, "gauge", help);
    out.sample(name, {}, value);
  }
  static void write_histogram(metrics::text_exposition& out, std::string_view name,
                              std::string_view help, const metrics::histogram& histogram) {
    out.family(name, "histogram", help);
    out.histogram_samples(name, {}, histogram);
  }

  const double start_time_;
  std::array<std::array<metrics::counter, outcomes.size()>, type_names.size()> requests_{};
  metrics::counter settle_failures_;
  metrics::counter poll_failures_;
  metrics::counter heartbeat_refusals_;
  metrics::counter store_call_errors_;
  metrics::gauge in_flight_;
  metrics::gauge lanes_busy_;
  metrics::gauge lanes_;
  std::atomic<log_clock::rep> last_poll_ok_{0};
  std::atomic<std::int64_t> backlog_{-1};  // -1: the source does not tell
  metrics::histogram request_duration_{metrics::request_duration_buckets()};
  metrics::histogram store_call_duration_{metrics::store_call_buckets()};
  std::mutex mutex_;  // observe()'s run bookkeeping
  log_clock::time_point run_started_{};
  run_counts seen_{};
};

static_assert(log_policy<metrics_log>);
static_assert(state_observing<metrics_log> && store_call_observing<metrics_log>);

}  // namespace widget_consumer
