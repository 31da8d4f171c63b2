#pragma once
// What every consumer program does: read the command line, build the source
// and the store it names, run consumer<Source, Store, program_log> until a
// stop condition or a signal, and exit with what became of the run
// (common/exit_status.hpp).

#include "common/command_line.hpp"
#include "common/exit_status.hpp"
#include "common/program_log.hpp"

#include <widget_consumer/aws/client_settings.hpp>
#include <widget_consumer/metrics/http_server.hpp>
#include <widget_consumer/stop.hpp>
#include <widget_consumer/widget_consumer.hpp>
// Defined by examples/CMakeLists.txt when libpq was found.
#ifdef WIDGET_CONSUMER_EXAMPLES_POSTGRESQL
#include <widget_consumer/destination/postgresql_table.hpp>
#endif

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <functional>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace examples {

namespace wc = widget_consumer;

// The policies a program may be composed of, and how each is built from the
// command line.
enum class source_kind { s3_bucket, sqs_queue, directory };
enum class store_kind { s3_bucket, dynamodb_table, directory, postgresql_table };

inline source_kind source_of(const consumer_options& o) {
  if (!o.request_bucket.empty())
    return source_kind::s3_bucket;
  if (!o.request_queue.empty())
    return source_kind::sqs_queue;
  return source_kind::directory;
}

inline store_kind store_of(const consumer_options& o) {
  if (!o.widget_bucket.empty())
    return store_kind::s3_bucket;
  if (!o.dynamodb_widget_table.empty())
    return store_kind::dynamodb_table;
  if (!o.postgresql_connection.empty())
    return store_kind::postgresql_table;
  return store_kind::directory;
}

class aws_context {
 public:
  explicit aws_context(const consumer_options& o)
      : settings_{o.profile, o.region, o.endpoint_url, o.ca_bundle, o.max_attempts, {}, {}},
        credentials_(wc::aws::make_credentials(settings_)) {}

  wc::aws::client_config config(std::string_view service) const {
    return wc::aws::make_client_config(service, settings_, credentials_);
  }

  // The same context, whose clients tell `notice` (INFO) what is no error:
  // the region an S3 bucket was found in. The credentials stay shared.
  aws_context with_notices(std::function<void(std::string_view)> notice) const {
    aws_context copy = *this;
    copy.settings_.notice = std::move(notice);
    return copy;
  }

 private:
  wc::aws::client_settings settings_;
  wc::aws::credentials_chain credentials_;
};

inline wc::widget_key_layout layout_of(const consumer_options& o) {
  wc::widget_key_layout layout;
  layout.prefix = o.widget_key_prefix;
  layout.owner_in_key = o.use_owner_in_prefix;
  return layout;
}

// One factory per policy. Policies own threads and connections and are
// neither copied nor moved, hence unique_ptr.
inline auto make_source(std::type_identity<wc::s3_bucket_source>, const consumer_options& o,
                        const aws_context& aws) {
  wc::s3_bucket_source_options options;
  options.rejected_prefix = o.rejected_prefix;
  options.claims = !o.single_consumer;
  options.claim_prefix = o.claim_prefix;
  options.claim_lifetime = std::chrono::seconds(o.claim_lifetime_s);
  // Bodies are fetched ahead by their own pool; as many fetchers as lanes
  // (8 to 32) keeps the lanes fed when each GET costs a long round trip: 32
  // fetch 1,600 bodies/s at 20 ms. More cost a thread, a connection and curl
  // buffers each for little gain (BENCHMARKS.md, "Peak RSS").
  options.fetch_concurrency = static_cast<std::size_t>(std::clamp(o.concurrency, 8, 32));
  options.read_ahead = std::max<std::size_t>(options.read_ahead, 2 * options.fetch_concurrency);
  // A listing page is parsed whole into a tree: 1,000 keys took about 4 MB at
  // the peak with Boost.PropertyTree, 250 a quarter of it, for one more
  // ListObjectsV2 per 250 keys. pugixml's tree is far smaller (49 allocations
  // a page of 1,000, BENCHMARKS.md); the size is kept until RSS is measured.
  options.page_size = 250;
  return std::make_unique<wc::s3_bucket_source>(aws.config("s3"), o.request_bucket, options);
}

inline auto make_source(std::type_identity<wc::sqs_queue_source>, const consumer_options& o,
                        const aws_context& aws) {
  wc::sqs_queue_options options;
  options.wait_time = std::chrono::seconds(o.queue_wait_timeout_s);
  options.visibility_timeout = std::chrono::seconds(o.queue_visibility_timeout_s);
  options.dead_letter_queue = o.dead_letter_queue;
  // Used only when the queue has neither a dead-letter queue nor a redrive
  // policy (as the course's queue): a reject must go somewhere.
  options.rejects_file = !o.rejects_file.empty() ? o.rejects_file
                         : !o.log_dir.empty()    ? o.log_dir + "/rejected-requests.jsonl"
                                                 : std::string("rejected-requests.jsonl");
  options.receivers = static_cast<std::size_t>(o.queue_receivers);
  return std::make_unique<wc::sqs_queue_source>(aws.config("sqs"), o.request_queue, options);
}

inline auto make_source(std::type_identity<wc::directory_source>, const consumer_options& o,
                        const aws_context&) {
  return std::make_unique<wc::directory_source>(o.request_dir);
}

inline wc::fencing_options fencing_of(const consumer_options& o) {
  return {.enabled = !o.no_fencing,
          .tombstone_retention = std::chrono::hours(24) * o.tombstone_days};
}

inline auto make_store(std::type_identity<wc::s3_bucket_store>, const consumer_options& o,
                       const aws_context& aws) {
  return std::make_unique<wc::s3_bucket_store>(aws.config("s3"), o.widget_bucket, layout_of(o),
                                               fencing_of(o));
}

inline auto make_store(std::type_identity<wc::dynamodb_table_store>, const consumer_options& o,
                       const aws_context& aws) {
  return std::make_unique<wc::dynamodb_table_store>(aws.config("dynamodb"), o.dynamodb_widget_table,
                                                    fencing_of(o));
}

inline auto make_store(std::type_identity<wc::directory_store>, const consumer_options& o,
                       const aws_context&) {
  return std::make_unique<wc::directory_store>(o.widget_dir, layout_of(o), fencing_of(o));
}

#ifdef WIDGET_CONSUMER_EXAMPLES_POSTGRESQL
// One connection per lane, so no lane waits for another's.
inline auto make_store(std::type_identity<wc::postgresql_table_store>, const consumer_options& o,
                       const aws_context&) {
  return std::make_unique<wc::postgresql_table_store>(
      wc::postgresql_store_options{.connection = o.postgresql_connection,
                                   .user = o.postgresql_user,
                                   .password = o.postgresql_password,
                                   .pool_size = static_cast<std::size_t>(o.concurrency),
                                   .create_schema = o.postgresql_create_schema,
                                   .fencing = fencing_of(o)});
}

inline constexpr store_kind kind_of(std::type_identity<wc::postgresql_table_store>) {
  return store_kind::postgresql_table;
}
#endif

inline constexpr source_kind kind_of(std::type_identity<wc::s3_bucket_source>) {
  return source_kind::s3_bucket;
}
inline constexpr source_kind kind_of(std::type_identity<wc::sqs_queue_source>) {
  return source_kind::sqs_queue;
}
inline constexpr source_kind kind_of(std::type_identity<wc::directory_source>) {
  return source_kind::directory;
}
inline constexpr store_kind kind_of(std::type_identity<wc::s3_bucket_store>) {
  return store_kind::s3_bucket;
}
inline constexpr store_kind kind_of(std::type_identity<wc::dynamodb_table_store>) {
  return store_kind::dynamodb_table;
}
inline constexpr store_kind kind_of(std::type_identity<wc::directory_store>) {
  return store_kind::directory;
}

inline wc::consumer_options consumer_settings(const consumer_options& o) {
  wc::consumer_options settings;
  settings.concurrency = static_cast<std::size_t>(o.concurrency);
  settings.max_runtime = std::chrono::milliseconds(o.max_runtime_ms);
  settings.max_idle = std::chrono::milliseconds(o.max_idle_ms);
  settings.empty_poll_delay = std::chrono::milliseconds(o.poll_interval_ms);
  settings.max_receives = static_cast<std::uint32_t>(o.max_receives);
  return settings;
}

// The metrics server of --metrics-listen, on its own thread until the
// program ends; null without the flag.
inline std::unique_ptr<wc::metrics::metrics_server> serve_metrics(const consumer_options& o,
                                                                  program_log& log) {
  if (log.metrics() == nullptr)
    return nullptr;
  const auto address = wc::metrics::listen_address::parse(o.metrics_listen);
  std::unique_ptr<wc::metrics::metrics_server> server;
  try {
    server = std::make_unique<wc::metrics::metrics_server>(
        address, *log.metrics(),
        wc::metrics::metrics_server_options{.ready_within =
                                                std::chrono::milliseconds(o.ready_within_ms)});
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot serve metrics at " + o.metrics_listen + ": " + e.what());
  }
  const bool v6 = address.host.find(':') != std::string::npos;
  log.info("metrics at http://" + (v6 ? "[" + address.host + "]" : address.host) + ":" +
           std::to_string(server->port()) + "/metrics (and /healthz, /readyz)");
  return server;
}

// Runs one combination, chosen at compile time, to its end.
template <wc::request_source Source, wc::widget_store Store>
int run_combination(const consumer_options& o, const aws_context& aws) {
  // The stop flag outlives the source: the signal handler points at it, and a
  // second signal may come while the source's destructor is still waiting.
  static wc::stop_flag stop;
  wc::stop_on_signals(stop);
  program_log log(o);  // first: it makes --log-dir, where the source may keep its rejects
  // Before the source and the store: their destructors (the last deletes,
  // the claims given back) are part of the stop it bounds.
  const wc::stop_deadline deadline(stop, std::chrono::seconds(o.stop_deadline_s), [&log, &o] {
    log.error("stop deadline passed: the stop took over " + std::to_string(o.stop_deadline_s) +
              " s (--stop-deadline); exiting with status " +
              std::to_string(exit_status::stop_deadline) +
              ", what was not settled stays in the source and comes again");
    log.flush();
    std::_Exit(exit_status::stop_deadline);
  });
  // The log outlives the source and the store, whose clients may call it.
  const auto logged_aws = aws.with_notices([&log](std::string_view text) { log.info(text); });
  auto source = make_source(std::type_identity<Source>{}, o, logged_aws);
  auto store = make_store(std::type_identity<Store>{}, o, logged_aws);
  if (o.no_fencing)
    log.warning(
        "--no-fencing: the store keeps no positions and no tombstones, so a consumer that "
        "stalls past its claim, a replayed request, a duplicate delivery or a late create after "
        "a delete can move a widget backwards (RELIABILITY.md, Fencing)");
  const auto metrics = serve_metrics(o, log);
  wc::consumer<Source, Store, program_log> consumer(*source, *store, log, consumer_settings(o));
  if constexpr (std::is_same_v<Source, wc::sqs_queue_source>) {
    // Shown on the terminal when they do not go to SQS: that is worth knowing.
    const std::string rejects = "rejected requests go to " + source->rejects_go_to();
    if (source->reject_mode() == wc::sqs_reject_mode::dead_letter_queue ||
        source->reject_mode() == wc::sqs_reject_mode::redrive_policy)
      log.info(rejects);
    else
      log.warning(rejects);
    if (const auto warning = source->redrive_warning(consumer.options().max_receives);
        !warning.empty())
      log.warning(warning);  // once, before anything is received
  }
  const auto summary = consumer.run(stop);
  const int code = exit_status::of(summary);
  if (const std::string why = exit_status::explain(code, summary); !why.empty()) {
    log.warning(why);
    log.flush();
  }
  return code;
}

// widget_consumer picks the combination from the command line: every one is
// compiled in.
template <class Source>
int run_with_store_of(const consumer_options& o, const aws_context& aws) {
  switch (store_of(o)) {
    case store_kind::s3_bucket:
      return run_combination<Source, wc::s3_bucket_store>(o, aws);
    case store_kind::dynamodb_table:
      return run_combination<Source, wc::dynamodb_table_store>(o, aws);
    case store_kind::directory:
      return run_combination<Source, wc::directory_store>(o, aws);
    case store_kind::postgresql_table:
#ifdef WIDGET_CONSUMER_EXAMPLES_POSTGRESQL
      return run_combination<Source, wc::postgresql_table_store>(o, aws);
#else
      throw usage_error(
          "this program was built without PostgreSQL (libpq): -pdbc is not available");
#endif
  }
  return exit_status::failed;
}

inline int run_any_combination(const consumer_options& o, const aws_context& aws) {
  switch (source_of(o)) {
    case source_kind::s3_bucket:
      return run_with_store_of<wc::s3_bucket_source>(o, aws);
    case source_kind::sqs_queue:
      return run_with_store_of<wc::sqs_queue_source>(o, aws);
    case source_kind::directory:
      return run_with_store_of<wc::directory_source>(o, aws);
  }
  return exit_status::failed;
}

inline std::string_view describe(source_kind kind) {
  switch (kind) {
    case source_kind::s3_bucket:
      return "an S3 bucket (-rb)";
    case source_kind::sqs_queue:
      return "an SQS queue (-rq)";
    case source_kind::directory:
      return "a folder (--request-dir)";
  }
  return "?";
}

inline std::string_view describe(store_kind kind) {
  switch (kind) {
    case store_kind::s3_bucket:
      return "an S3 bucket (-wb)";
    case store_kind::dynamodb_table:
      return "a DynamoDB table (-dwt)";
    case store_kind::directory:
      return "a folder (--widget-dir)";
    case store_kind::postgresql_table:
      return "a PostgreSQL database (-pdbc)";
  }
  return "?";
}

// The whole program around `body`: parse, run, and map errors to exit codes
// with a one-line message (2 and the usage for a bad command line).
template <class Body>
int program_main(int argc, const char* const argv[], std::string_view program, Body&& body) {
  try {
    const auto options = parse_consumer_command_line(argc, argv, program);
    if (!options)
      return exit_status::finished;
    const aws_context aws(*options);
    return body(*options, aws);
  } catch (const usage_error& error) {
    return usage_error_exit(std::cerr, program, error);
  } catch (const std::exception& error) {
    std::cerr << program << ": " << error.what() << '\n';
    return exit_status::failed;
  }
}

// A program built for one combination: s3_to_s3, sqs_to_dynamodb, ...
template <wc::request_source Source, wc::widget_store Store>
int fixed_combination_main(int argc, const char* const argv[], std::string_view program) {
  return program_main(argc, argv, program, [&](const consumer_options& o, const aws_context& aws) {
    constexpr auto source = kind_of(std::type_identity<Source>{});
    constexpr auto store = kind_of(std::type_identity<Store>{});
    if (source_of(o) != source)
      throw usage_error(std::string(program) + " reads requests from " +
                        std::string(describe(source)));
    if (store_of(o) != store)
      throw usage_error(std::string(program) + " stores widgets in " +
                        std::string(describe(store)));
    return run_combination<Source, Store>(o, aws);
  });
}

}  // namespace examples
