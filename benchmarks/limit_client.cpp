// limit_client: what the server can do. Drains a filled request source with
// the same HTTP calls per request our consumer makes (the store calls are
// made by our own store policies, so they are the same ones), from N threads
// that each work independently: no per-widget order, no lanes, no poll
// thread, no logs. Its final store is NOT checked (requests for one widget
// may be applied out of order); only its rate matters: the server's ceiling
// for this mix of calls.
//
//   limit_client --endpoint-url URL --threads N --expect N
//                (--request-bucket B | --request-queue Q) (--widget-bucket B | --table T)
//
// S3 source: ListObjectsV2 pages (1,000 keys), then per key GetObject, the
// store call(s), and DeleteObjects per 100 keys (our consumer flushes after
// each poll of up to 100). SQS source: ReceiveMessage (10, no wait), the
// store call(s), DeleteMessageBatch. Invalid requests are only deleted (ours
// also writes a reason and a copy: 2% of requests, 2 calls each; ignored).
// Prints one line: "limit: R requests in S s = X requests/s".

#include <widget_consumer/aws/client_settings.hpp>
#include <widget_consumer/aws/s3.hpp>
#include <widget_consumer/aws/sqs.hpp>
#include <widget_consumer/destination/dynamodb_table.hpp>
#include <widget_consumer/destination/s3_bucket.hpp>
#include <widget_consumer/request.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <variant>
#include <vector>

namespace {

namespace wc = widget_consumer;
namespace aws = widget_consumer::aws;
using clock_type = std::chrono::steady_clock;

struct options {
  std::string endpoint;
  std::string request_bucket, request_queue, widget_bucket, table;
  int threads = 32;
  long expect = 0;
};

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc)
        throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--endpoint-url") o.endpoint = next();
    else if (a == "--request-bucket") o.request_bucket = next();
    else if (a == "--request-queue") o.request_queue = next();
    else if (a == "--widget-bucket") o.widget_bucket = next();
    else if (a == "--table") o.table = next();
    else if (a == "--threads") o.threads = std::stoi(next());
    else if (a == "--expect") o.expect = std::stol(next());
    else throw std::invalid_argument("unknown argument " + a);
  }
  if (o.request_bucket.empty() == o.request_queue.empty())
    throw std::invalid_argument("give one of --request-bucket, --request-queue");
  if (o.widget_bucket.empty() == o.table.empty())
    throw std::invalid_argument("give one of --widget-bucket, --table");
  if (o.threads < 1 || o.threads > 512)
    throw std::invalid_argument("--threads must be 1..512");
  return o;
}

// One store per thread: no sharing, nothing to contend on.
struct any_store {
  std::optional<wc::s3_bucket_store> s3;
  std::optional<wc::dynamodb_table_store> dynamodb;
  void apply(const wc::widget_request& request) {
    if (s3)
      s3->apply(request);
    else
      dynamodb->apply(request);
  }
};

}  // namespace

int main(int argc, char** argv) try {
  const options o = parse(argc, argv);
  aws::client_settings settings;
  settings.endpoint_url = o.endpoint;
  const auto credentials = aws::make_credentials(settings);
  auto config = [&](std::string_view service) {
    return aws::make_client_config(service, settings, credentials);
  };
  auto make_store = [&] {
    any_store store;
    if (!o.widget_bucket.empty())
      store.s3.emplace(config("s3"), o.widget_bucket);
    else
      store.dynamodb.emplace(config("dynamodb"), o.table);
    return store;
  };
  auto apply_body = [](any_store& store, const std::string& body) {
    auto parsed = wc::parse_request(body);
    if (auto* request = std::get_if<wc::widget_request>(&parsed))
      store.apply(*request);
  };

  std::atomic<long> done{0};
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  std::string first_error;
  auto record_error = [&](const std::exception& e) {
    std::lock_guard lock(error_mutex);
    if (first_error.empty())
      first_error = e.what();
    failed = true;
  };

  const auto start = clock_type::now();
  std::atomic<clock_type::time_point> last_progress{start};
  // Shared with the threads: they live until the threads are joined.
  std::vector<std::string> keys;
  std::atomic<std::size_t> next{0};
  std::string url;
  std::vector<std::thread> threads;
  if (!o.request_bucket.empty()) {
    aws::s3_client lister(config("s3"));
    aws::s3_list_options list;
    for (int page = 0; page < 100000; ++page) {
      auto listed = lister.list_objects_v2(o.request_bucket, list);
      for (auto& key : listed.keys)
        if (!key.starts_with("rejected/"))
          keys.push_back(std::move(key));
      if (!listed.has_more())
        break;
      list.continuation_token = listed.next_continuation_token;
    }
    for (int t = 0; t < o.threads; ++t)
      threads.emplace_back([&] {
        try {
          aws::s3_client client(config("s3"));
          any_store store = make_store();
          std::vector<std::string> settled;
          auto flush = [&] {
            if (!settled.empty())
              client.delete_objects(o.request_bucket, settled);
            done += static_cast<long>(settled.size());
            settled.clear();
          };
          for (std::size_t i; (i = next++) < keys.size() && !failed;) {
            if (auto body = client.get_object(o.request_bucket, keys[i]))
              apply_body(store, *body);
            settled.push_back(keys[i]);
            if (settled.size() == 100)
              flush();
          }
          flush();
        } catch (const std::exception& e) {
          record_error(e);
        }
      });
  } else {
    aws::sqs_client resolver(config("sqs"));
    url = resolver.get_queue_url(o.request_queue);
    for (int t = 0; t < o.threads; ++t)
      threads.emplace_back([&] {
        try {
          aws::sqs_client client(config("sqs"));
          any_store store = make_store();
          aws::sqs_receive_options receive;
          receive.max_messages = 10;
          receive.wait_time_seconds = 0;
          while (done < o.expect && !failed) {
            auto messages = client.receive_message(url, receive);
            if (messages.empty()) {
              // An empty receive while others progress only means the groups
              // left are in flight elsewhere (on a queue it serves slowly,
              // ElasticMQ can take seconds per call); give up only when no
              // thread has deleted anything for a while.
              if (clock_type::now() - last_progress.load() > std::chrono::seconds(15))
                break;
              std::this_thread::sleep_for(std::chrono::milliseconds(5));
              continue;
            }
            std::vector<std::string> handles;
            for (auto& message : messages) {
              apply_body(store, message.body);
              handles.push_back(std::move(message.receipt_handle));
            }
            client.delete_message_batch(url, handles);
            done += static_cast<long>(handles.size());
            last_progress = clock_type::now();
          }
        } catch (const std::exception& e) {
          record_error(e);
        }
      });
  }
  for (auto& thread : threads)
    thread.join();
  const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  if (failed) {
    std::cerr << "limit_client: " << first_error << '\n';
    return 1;
  }
  std::printf("limit: %ld requests in %.3f s = %.1f requests/s\n", done.load(), seconds,
              static_cast<double>(done.load()) / seconds);
  return o.expect > 0 && done.load() < o.expect ? 1 : 0;
} catch (const std::exception& e) {
  std::cerr << "limit_client: " << e.what() << '\n';
  return 2;
}
