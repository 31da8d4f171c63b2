#pragma once
// The consumer programs' command line: the course consumer's flags
// (-rb -rq -wb -dwt -wkp -uop -mrt -qwt -qvt -p -r) plus ours. Shared by the
// four fixed-combination programs and widget_consumer, which picks the
// combination from what is given.

#include "common/exit_status.hpp"

#include <boost/program_options.hpp>

#include <widget_consumer/metrics/http_server.hpp>
#include <widget_consumer/source/s3_bucket_options.hpp>

#include <cstdint>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace examples {

namespace po = boost::program_options;

// Bad usage: the program prints the message and where to find help, and
// exits exit_status::usage (usage_error_exit).
struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One line that names the problem and one that says where help is, as GNU
// tools do: the whole help would scroll the problem off the screen.
inline int usage_error_exit(std::ostream& err, std::string_view program, const usage_error& error) {
  err << program << ": " << error.what() << "\nTry '" << program
      << " --help' for more information.\n";
  return exit_status::usage;
}

struct consumer_options {
  std::string profile;
  std::string region;
  std::string endpoint_url;
  std::string ca_bundle;
  // Sources: exactly one.
  std::string request_bucket;
  std::string request_queue;  // a name or a URL
  std::string request_dir;
  // Stores: exactly one.
  std::string widget_bucket;
  std::string dynamodb_widget_table;
  std::string widget_dir;
  std::string postgresql_connection;  // a libpq connection string or URI
  std::string postgresql_user;
  std::string postgresql_password;  // else PGPASSWORD or ~/.pgpass, as libpq reads them
  bool postgresql_create_schema = false;
  std::string widget_key_prefix = "widgets/";
  bool use_owner_in_prefix = true;
  std::string rejected_prefix = "rejected/";
  bool single_consumer = false;
  bool no_fencing = false;
  int tombstone_days = 30;
  std::string claim_prefix = "claims/";
  int claim_lifetime_s = 60;
  std::string dead_letter_queue;
  std::string rejects_file;  // "" = rejected-requests.jsonl under --log-dir, or here
  // Running.
  std::int64_t max_runtime_ms = 0;  // 0 = until stopped
  std::int64_t max_idle_ms = 0;     // 0 = never stop for idleness
  std::int64_t poll_interval_ms = 100;
  // Under Kubernetes' default 30 s between SIGTERM and SIGKILL, with room
  // for the log's last lines.
  int stop_deadline_s = 25;  // 0 = a graceful stop waits however long it takes
  int queue_wait_timeout_s = 20;
  int queue_visibility_timeout_s = 30;
  int max_receives = 5;
  int queue_receivers = 3;
  int concurrency = 16;
  int max_attempts = 0;  // 0 = AWS_MAX_ATTEMPTS, else 3
  std::string log_dir;
  std::string log_format = "text";  // text | json
  bool verbose = false;
  // Metrics: off unless an address is given.
  std::string metrics_listen;
  std::int64_t ready_within_ms = 60000;
};

// The course's flags are single-dash words (-rb); Program_options wants one
// letter after a single dash, so they are rewritten to their long names first.
inline std::vector<std::string> with_long_names(int argc, const char* const argv[]) {
  static const std::pair<std::string_view, std::string_view> aliases[] = {
      {"-p", "--profile"},
      {"-r", "--region"},
      {"-rb", "--request-bucket"},
      {"-rq", "--request-queue"},
      {"-wb", "--widget-bucket"},
      {"-wkp", "--widget-key-prefix"},
      {"-uop", "--use-owner-in-prefix"},
      {"-dwt", "--dynamodb-widget-table"},
      {"-pdbc", "--pdb-conn"},
      {"-pdbu", "--pdb-username"},
      {"-pdbp", "--pdb-password"},
      {"-mrt", "--max-runtime"},
      {"-qwt", "--queue-wait-timeout"},
      {"-qvt", "--queue-visibility-timeout"},
      {"-mwr", "--max-widget-requests"},
      {"-ird", "--inter-request-delay"},
  };
  std::vector<std::string> arguments;
  for (int i = 1; i < argc; ++i) {
    std::string argument = argv[i];
    for (const auto& [alias, name] : aliases) {
      if (argument == alias)
        argument = name;
      else if (argument.starts_with(std::string(alias) + "="))
        argument = std::string(name) + argument.substr(alias.size());
    }
    arguments.push_back(std::move(argument));
  }
  return arguments;
}

inline po::options_description consumer_option_descriptions(consumer_options& o) {
  // One statement per option: add_options() returns a callable builder.
  po::options_description aws("AWS");
  auto aws_option = aws.add_options();
  aws_option("profile,p", po::value(&o.profile), "shared-config profile (-p)");
  aws_option("region,r", po::value(&o.region),
             "AWS region (-r; else AWS_REGION, the profile, us-east-1)");
  aws_option("endpoint-url", po::value(&o.endpoint_url),
             "one endpoint for S3, SQS and DynamoDB, e.g. http://127.0.0.1:4566");
  aws_option("ca-bundle", po::value(&o.ca_bundle), "CA certificates for TLS peer verification");
  aws_option("max-attempts", po::value(&o.max_attempts),
             "attempts per AWS call (standard retry mode; default: AWS_MAX_ATTEMPTS, else 3)");

  po::options_description sources("Request source (exactly one)");
  auto source = sources.add_options();
  source("request-bucket", po::value(&o.request_bucket),
         "S3 bucket of requests, oldest key first (-rb)");
  source("request-queue", po::value(&o.request_queue), "SQS queue of requests, name or URL (-rq)");
  source("request-dir", po::value(&o.request_dir), "folder of request files, in name order");

  po::options_description stores("Widget store (exactly one)");
  auto store = stores.add_options();
  store("widget-bucket", po::value(&o.widget_bucket), "S3 bucket of widgets (-wb)");
  store("dynamodb-widget-table", po::value(&o.dynamodb_widget_table),
        "DynamoDB table of widgets (-dwt)");
  store("widget-dir", po::value(&o.widget_dir), "folder of widget files");
  store("pdb-conn", po::value(&o.postgresql_connection),
        "PostgreSQL database of widgets: a libpq connection string or URI (-pdbc)");
  store("pdb-username", po::value(&o.postgresql_user), "PostgreSQL user (-pdbu)");
  store("pdb-password", po::value(&o.postgresql_password),
        "PostgreSQL password (-pdbp; better PGPASSWORD or ~/.pgpass, which other users' ps "
        "cannot see)");
  store("pdb-create-schema", po::bool_switch(&o.postgresql_create_schema),
        "create the widgets and widget_attributes tables when missing");
  store("widget-key-prefix", po::value(&o.widget_key_prefix)->default_value(o.widget_key_prefix),
        "S3 key prefix of widgets (-wkp)");
  store("use-owner-in-prefix",
        po::value(&o.use_owner_in_prefix)->default_value(true)->implicit_value(true),
        "put the owner in the widget key: widgets/{owner}/{id} (-uop; =false to drop it)");

  po::options_description running("Running");
  auto run = running.add_options();
  run("max-runtime", po::value(&o.max_runtime_ms)->default_value(0),
      "stop after this many milliseconds, 0 = run until stopped (-mrt)");
  run("max-idle", po::value(&o.max_idle_ms)->default_value(0),
      "stop after this many milliseconds without a request, 0 = never");
  run("poll-interval", po::value(&o.poll_interval_ms)->default_value(o.poll_interval_ms),
      "milliseconds to wait after an empty poll");
  const std::string stop_deadline_help =
      "seconds a graceful stop (the first SIGINT or SIGTERM) may take; past them the program "
      "exits " +
      std::to_string(exit_status::stop_deadline) +
      " and what it had not settled stays in the source, 0 = no deadline";
  run("stop-deadline", po::value(&o.stop_deadline_s)->default_value(o.stop_deadline_s),
      stop_deadline_help.c_str());
  run("concurrency", po::value(&o.concurrency)->default_value(o.concurrency),
      "widget lanes worked in parallel (one widget's requests stay in order)");
  run("queue-wait-timeout",
      po::value(&o.queue_wait_timeout_s)->default_value(o.queue_wait_timeout_s),
      "SQS long-poll wait in seconds, 0-20 (-qwt)");
  run("queue-visibility-timeout",
      po::value(&o.queue_visibility_timeout_s)->default_value(o.queue_visibility_timeout_s),
      "SQS visibility timeout in seconds (-qvt)");
  run("queue-receivers", po::value(&o.queue_receivers)->default_value(o.queue_receivers),
      "SQS receive calls in flight at once (each takes up to 10 messages)");
  run("max-receives", po::value(&o.max_receives)->default_value(o.max_receives),
      "standard SQS queue: receives of an update/delete whose widget is missing, then give up");
  run("dead-letter-queue", po::value(&o.dead_letter_queue),
      "SQS queue for rejected requests (default: the queue's redrive policy)");
  run("rejects-file", po::value(&o.rejects_file),
      "SQS queue with no dead-letter queue and no redrive policy: append rejected requests "
      "here, whole, before deleting them (default: rejected-requests.jsonl in --log-dir, or in "
      "the working directory)");
  run("rejected-prefix", po::value(&o.rejected_prefix)->default_value(o.rejected_prefix),
      "S3 source: key prefix rejected requests are copied under");
  run("claim-prefix", po::value(&o.claim_prefix)->default_value(o.claim_prefix),
      "S3 source: key prefix of the partition claims that let several consumers share the "
      "bucket");
  run("claim-lifetime", po::value(&o.claim_lifetime_s)->default_value(o.claim_lifetime_s),
      "S3 source: seconds a claim lasts unrenewed before others take it over (>= 5)");
  run("single-consumer", po::bool_switch(&o.single_consumer),
      "S3 source: no claims; only for a consumer alone on its bucket, or a server without "
      "conditional writes");
  run("no-fencing", po::bool_switch(&o.no_fencing),
      "the store keeps no positions and no tombstones (the course's layout exactly); a stalled "
      "consumer, a replay or a duplicate can then move a widget backwards");
  run("tombstone-days", po::value(&o.tombstone_days)->default_value(o.tombstone_days),
      "days a deleted widget's tombstone refuses a late create (DynamoDB TTL, S3 lifecycle, "
      "PostgreSQL clean-up)");

  po::options_description logging("Logging");
  auto log = logging.add_options();
  log("log-dir", po::value(&o.log_dir), "also write daily log files (YYYY-MM-DD.log) here");
  log("log-format", po::value(&o.log_format)->default_value(o.log_format), "text | json");
  log("verbose,v", po::bool_switch(&o.verbose), "log every request and the debug details");
  log("help,h", "show this help");

  po::options_description metrics("Metrics and health (off unless --metrics-listen is given)");
  auto metric = metrics.add_options();
  metric("metrics-listen", po::value(&o.metrics_listen),
         "serve /metrics (Prometheus), /healthz and /readyz over HTTP at [HOST:]PORT, e.g. "
         "127.0.0.1:9464; HOST defaults to 127.0.0.1, any other address must be written out");
  metric("ready-within", po::value(&o.ready_within_ms)->default_value(o.ready_within_ms),
         "/readyz answers 200 while a poll of the source succeeded within this many "
         "milliseconds, else 503");

  po::options_description all;
  all.add(aws).add(sources).add(stores).add(running).add(logging).add(metrics);
  return all;
}

inline void print_usage(std::ostream& out, std::string_view program,
                        const po::options_description& descriptions) {
  out << "usage: " << program << " SOURCE STORE [options]\n\n"
      << "Consumes widget requests from one source and applies them to one store.\n\n"
      << "Examples:\n"
      << "  " << program << " -rb usu-cs5250-requests -wb usu-cs5250-web -mrt 60000\n"
      << "  " << program << " -rq cs5250-requests -dwt widgets --concurrency 32\n"
      << "  " << program << " --endpoint-url http://127.0.0.1:4566 -rq requests -wb widgets\n"
      << "  " << program << " --request-dir requests/ --widget-dir widgets/\n"
      << "  " << program
      << " -rq requests -pdbc postgresql://db.example.com/shop -pdbu app --pdb-create-schema\n\n"
      << descriptions << '\n'
      << exit_status::help();
}

// Parses and checks the combination. Returns nullopt when --help was shown.
// `fixed_source`/`fixed_store` restrict a fixed-combination program.
inline std::optional<consumer_options> parse_consumer_command_line(int argc,
                                                                   const char* const argv[],
                                                                   std::string_view program) {
  consumer_options options;
  auto descriptions = consumer_option_descriptions(options);
  po::variables_map values;
  try {
    po::store(po::command_line_parser(with_long_names(argc, argv)).options(descriptions).run(),
              values);
    po::notify(values);
  } catch (const po::error& error) {
    throw usage_error(error.what());
  }
  if (values.count("help")) {
    print_usage(std::cout, program, descriptions);
    return std::nullopt;
  }
  const int source_count = !options.request_bucket.empty() + !options.request_queue.empty() +
                           !options.request_dir.empty();
  const int store_count = !options.widget_bucket.empty() + !options.dynamodb_widget_table.empty() +
                          !options.widget_dir.empty() + !options.postgresql_connection.empty();
  if (source_count != 1)
    throw usage_error(
        source_count == 0
            ? "no request source: give one of -rb, -rq or --request-dir"
            : "more than one request source: give only one of -rb, -rq, --request-dir");
  if (store_count != 1)
    throw usage_error(store_count == 0
                          ? "no widget store: give one of -wb, -dwt, -pdbc or --widget-dir"
                          : "more than one widget store: give only one of -wb, -dwt, -pdbc, "
                            "--widget-dir");
  if (options.concurrency < 1 || options.concurrency > 1024)
    throw usage_error("--concurrency must be between 1 and 1024");
  if (options.queue_receivers < 1 || options.queue_receivers > 64)
    throw usage_error("--queue-receivers must be between 1 and 64");
  if (options.queue_wait_timeout_s < 0 || options.queue_wait_timeout_s > 20)
    throw usage_error("--queue-wait-timeout must be between 0 and 20 seconds");
  if (options.queue_visibility_timeout_s < 0 || options.queue_visibility_timeout_s > 43200)
    throw usage_error("--queue-visibility-timeout must be between 0 and 43200 seconds");
  if (options.max_runtime_ms < 0 || options.max_idle_ms < 0)
    throw usage_error("--max-runtime and --max-idle must not be negative");
  // Claim ages are whole seconds of the server's clock (s3_claim_settings.hpp).
  if (options.claim_lifetime_s < widget_consumer::s3_min_claim_lifetime.count())
    throw usage_error("--claim-lifetime must be at least " +
                      std::to_string(widget_consumer::s3_min_claim_lifetime.count()) +
                      " s: claim ages are read in whole seconds of the server's clock");
  if (options.tombstone_days < 1 || options.tombstone_days > 3650)
    throw usage_error("--tombstone-days must be between 1 and 3650");
  if (options.stop_deadline_s < 0 || options.stop_deadline_s > 86400)
    throw usage_error("--stop-deadline must be between 0 and 86400 seconds");
  if (options.log_format != "text" && options.log_format != "json")
    throw usage_error("--log-format must be text or json, not \"" + options.log_format + "\"");
  if (options.ready_within_ms <= 0)
    throw usage_error("--ready-within must be a positive number of milliseconds");
  if (!options.metrics_listen.empty()) {
    try {
      widget_consumer::metrics::listen_address::parse(options.metrics_listen);
    } catch (const std::invalid_argument& error) {
      throw usage_error(std::string("--metrics-listen: ") + error.what());
    }
  }
  return options;
}

}  // namespace examples
