// widget_producer: writes widget requests the way the course's producer does,
// to an S3 bucket (keys are 13-digit epoch-millisecond names, so key order is
// time order), an SQS queue (FIFO: MessageGroupId = widgetId), or a folder.
// Optionally writes the state the requests lead to, for checking a consumer.

#include "common/command_line.hpp"
#include "support/request_generator.hpp"  // tests/support/: the tests expect what it writes

#include <widget_consumer/aws/client_settings.hpp>
#include <widget_consumer/aws/s3.hpp>
#include <widget_consumer/aws/sqs.hpp>
#include <widget_consumer/destination/detail/widget_document.hpp>
#include <widget_consumer/widget.hpp>

#include <boost/json.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace aws = widget_consumer::aws;
namespace po = boost::program_options;

struct producer_options {
  aws::client_settings aws;
  std::string request_bucket;
  std::string request_queue;
  std::string request_dir;
  std::int64_t max_widget_requests = 100;
  std::int64_t inter_request_delay_ms = 0;
  std::uint64_t seed = 0;
  double invalid_ratio = 0.0;
  std::string expected_state;
  bool create = false;
};

// Strictly increasing 13-digit epoch-millisecond names: the wall clock when it
// has moved on, else one more than the last, so requests written within one
// millisecond keep their order and never share a key.
class key_clock {
 public:
  std::string next() {
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    last_ = std::max<std::int64_t>(now, last_ + 1);
    return std::to_string(last_);
  }

 private:
  std::int64_t last_ = 0;
};

// Where the requests go. SQS requests are sent in batches of ten unless a
// delay between requests is asked for.
class request_sink {
 public:
  explicit request_sink(const producer_options& options) : options_(options) {
    const auto credentials = aws::make_credentials(options.aws);
    if (!options.request_bucket.empty()) {
      s3_.emplace(aws::make_client_config("s3", options.aws, credentials));
      if (options.create && !s3_->head_bucket(options.request_bucket))
        s3_->create_bucket(options.request_bucket);
    } else if (!options.request_queue.empty()) {
      sqs_.emplace(aws::make_client_config("sqs", options.aws, credentials));
      fifo_ = options.request_queue.ends_with(".fifo");
      if (options.create && options.request_queue.find('/') == std::string::npos) {
        std::map<std::string, std::string, std::less<>> attributes;
        if (fifo_)
          attributes["FifoQueue"] = "true";
        queue_url_ = sqs_->create_queue(options.request_queue, attributes);
      } else {
        queue_url_ = sqs_->get_queue_url(options.request_queue);
      }
    } else {
      std::filesystem::create_directories(options.request_dir);
    }
  }

  void write(const widget_producer::generated_request& request, std::uint64_t sequence) {
    if (s3_) {
      s3_->put_object(options_.request_bucket, keys_.next(), request.body, "application/json");
    } else if (sqs_) {
      // SQS refuses an empty message body; a blank one is just as invalid a request.
      aws::sqs_send_entry entry{request.body.empty() ? std::string(" ") : request.body, {}};
      if (fifo_) {
        // Invalid requests may carry no widget id; they still need a group.
        entry.options.message_group_id = request.widget_id.empty() ? "invalid" : request.widget_id;
        entry.options.message_deduplication_id =
            std::to_string(options_.seed) + "-" + std::to_string(sequence) + "-" + keys_.next();
      }
      pending_.push_back(std::move(entry));
      if (pending_.size() == aws::sqs_client::max_batch_entries ||
          options_.inter_request_delay_ms > 0)
        send_pending();
    } else {
      std::ofstream(std::filesystem::path(options_.request_dir) / keys_.next(), std::ios::binary)
          << request.body;
    }
  }

  void finish() {
    if (sqs_)
      send_pending();
  }

  std::string describe() const {
    if (s3_)
      return "s3://" + options_.request_bucket;
    if (sqs_)
      return queue_url_;
    return options_.request_dir;
  }

 private:
  void send_pending() {
    if (pending_.empty())
      return;
    const auto result = sqs_->send_message_batch(queue_url_, pending_);
    if (!result.failed.empty())
      throw std::runtime_error(
          "SQS SendMessageBatch refused " + std::to_string(result.failed.size()) +
          " messages: " + result.failed.front().code + ": " + result.failed.front().message);
    pending_.clear();
  }

  const producer_options& options_;
  std::optional<aws::s3_client> s3_;
  std::optional<aws::sqs_client> sqs_;
  std::string queue_url_;
  bool fifo_ = false;
  key_clock keys_;
  std::vector<aws::sqs_send_entry> pending_;
};

void write_expected_state(const std::string& path,
                          const std::map<std::string, widget_consumer::widget>& widgets) {
  boost::json::object state;
  for (const auto& [id, widget] : widgets)
    state[id] = boost::json::parse(widget_consumer::to_json(widget));
  std::ofstream out(path, std::ios::binary);
  out << boost::json::serialize(state) << '\n';
  if (!out)
    throw std::runtime_error("cannot write " + path);
}

std::optional<producer_options> parse_command_line(int argc, const char* const argv[]) {
  producer_options o;
  po::options_description descriptions("Options");
  auto option = descriptions.add_options();
  option("request-bucket", po::value(&o.request_bucket), "S3 bucket to write requests to (-rb)");
  option("request-queue", po::value(&o.request_queue), "SQS queue, name or URL (-rq)");
  option("request-dir", po::value(&o.request_dir), "folder to write request files to");
  option("max-widget-requests", po::value(&o.max_widget_requests)->default_value(100),
         "how many requests to write (-mwr)");
  option("inter-request-delay", po::value(&o.inter_request_delay_ms)->default_value(0),
         "milliseconds between requests (-ird)");
  option("seed", po::value(&o.seed)->default_value(0),
         "random seed; the same seed, the same requests");
  option("invalid-ratio", po::value(&o.invalid_ratio)->default_value(0.0),
         "share of requests made invalid on purpose, 0 to 1");
  option("expected-state", po::value(&o.expected_state),
         "write the widgets the requests lead to (JSON: id -> widget) to this file");
  option("create", po::bool_switch(&o.create), "create the bucket or queue if it is missing");
  option("profile,p", po::value(&o.aws.profile), "shared-config profile (-p)");
  option("region,r", po::value(&o.aws.region), "AWS region (-r)");
  option("endpoint-url", po::value(&o.aws.endpoint_url), "e.g. http://127.0.0.1:4566");
  option("help,h", "show this help");
  po::variables_map values;
  try {
    po::store(
        po::command_line_parser(examples::with_long_names(argc, argv)).options(descriptions).run(),
        values);
    po::notify(values);
  } catch (const po::error& error) {
    throw examples::usage_error(error.what());
  }
  if (values.count("help")) {
    std::cout
        << "usage: widget_producer (-rb BUCKET | -rq QUEUE | --request-dir DIR) [options]\n\n"
        << "Examples:\n"
        << "  widget_producer -rb usu-cs5250-requests -mwr 1000 -ird 100\n"
        << "  widget_producer --endpoint-url http://127.0.0.1:4566 -rq requests.fifo --create\n\n"
        << descriptions << '\n'
        << "Exit status: 0 written, 1 failed, 2 bad command line.\n";
    return std::nullopt;
  }
  const int targets = !o.request_bucket.empty() + !o.request_queue.empty() + !o.request_dir.empty();
  if (targets != 1)
    throw examples::usage_error("give exactly one of -rb, -rq or --request-dir");
  if (o.max_widget_requests < 0)
    throw examples::usage_error("-mwr must not be negative");
  if (o.invalid_ratio < 0 || o.invalid_ratio > 1)
    throw examples::usage_error("--invalid-ratio must be between 0 and 1");
  return o;
}

}  // namespace

int main(int argc, char* argv[]) {
  try {
    const auto options = parse_command_line(argc, argv);
    if (!options)
      return 0;
    widget_producer::request_generator generator(options->seed, options->invalid_ratio);
    request_sink sink(*options);
    std::map<std::string_view, std::uint64_t> counts;
    const auto start = std::chrono::steady_clock::now();
    for (std::int64_t i = 0; i < options->max_widget_requests; ++i) {
      const auto request = generator.next();
      sink.write(request, static_cast<std::uint64_t>(i));
      ++counts[request.type];
      if (options->inter_request_delay_ms > 0)
        std::this_thread::sleep_for(std::chrono::milliseconds(options->inter_request_delay_ms));
    }
    sink.finish();
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    if (!options->expected_state.empty())
      write_expected_state(options->expected_state, generator.expected_widgets());
    std::cout << "widget_producer: wrote " << options->max_widget_requests << " requests ("
              << counts["create"] << " create, " << counts["update"] << " update, "
              << counts["delete"] << " delete, " << counts["invalid"] << " invalid) to "
              << sink.describe() << " in " << elapsed.count() << " s; "
              << generator.expected_widgets().size() << " widgets expected\n";
    return 0;
  } catch (const examples::usage_error& error) {
    return examples::usage_error_exit(std::cerr, "widget_producer", error);
  } catch (const std::exception& error) {
    std::cerr << "widget_producer: " << error.what() << '\n';
    return 1;
  }
}
