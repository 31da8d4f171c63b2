// What SigV4 costs per request: sign() alone (signatures per second), and one
// signed request's whole round trip through service_client to a loopback
// server, next to the same request sent unsigned through http_client, so
// the signer's share of a round trip can be read off.
// Each prints its heap allocations per iteration ("allocs").
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "allocation_counter.hpp"
#include "support/loopback_http_server.hpp"
#include "widget_consumer/aws/client.hpp"
#include "widget_consumer/aws/crypto.hpp"
#include "widget_consumer/aws/http.hpp"
#include "widget_consumer/aws/sigv4.hpp"

namespace {

using namespace widget_consumer::aws;
using widget_consumer::testing::http_reply;
using widget_consumer::testing::loopback_http_server;
using widget_consumer::testing::scripted_reply;

// Every benchmark runs for this long, so the figures of one run compare.
constexpr double run_seconds = 2.0;

credentials test_credentials() {
  credentials keys;
  keys.access_key_id = "AKIDEXAMPLE";
  keys.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
  return keys;
}

// A widget document of about 2 KB, the S3 store's typical PUT body.
std::string widget_document() {
  std::string body = R"({"id":"8123f304-f23f-440b-a6d3-80e979fa4cd6","owner":"Mary Matthews",)"
                     R"("label":"JWJYY","description":")";
  body += std::string(300, 'T');
  body += R"(","otherAttributes":[)";
  for (int i = 0; i < 24; ++i) {
    if (i > 0)
      body += ',';
    body += R"({"name":"attribute-)" + std::to_string(i) + R"(","value":")" + std::string(40, 'v') +
            R"("})";
  }
  body += "]}";
  return body;
}

// The consumer's commonest SQS call: DeleteMessage with a receipt handle of
// the length SQS hands out, over the JSON protocol as sqs.hpp sends it.
http_request sqs_delete_message(const std::string& endpoint) {
  http_request request;
  request.method = "POST";
  request.url = endpoint + "/";
  request.headers = {{"Content-Type", "application/x-amz-json-1.0"},
                     {"X-Amz-Target", "AmazonSQS.DeleteMessage"}};
  request.body =
      R"({"QueueUrl":"https://sqs.us-east-1.amazonaws.com/123456789012/widget-requests",)"
      R"("ReceiptHandle":")" +
      std::string(180, 'R') + R"("})";
  return request;
}

// The S3 store's PutObject, with the headers s3_client adds.
http_request s3_put_object(const std::string& endpoint) {
  http_request request;
  request.method = "PUT";
  request.url = endpoint + "/widgets-bucket/widgets/mary-matthews/8123f304-f23f-440b-a6d3";
  request.body = widget_document();
  request.headers = {{"Content-Type", "application/json"},
                     {"Content-MD5", base64_encode(md5(request.body))}};
  return request;
}

signing_params params_for(const std::string& service) {
  signing_params params;
  params.region = "us-east-1";
  params.service = service;
  params.time = std::chrono::system_clock::now();
  params.s3 = service == "s3";
  return params;
}

// As service_client does per attempt: the caller's headers restored, then
// signed, so each iteration signs the same request from scratch.
void sign_request(benchmark::State& state, http_request request, const signing_params& params) {
  const auto keys = test_credentials();
  const std::vector<http_header> original = request.headers;
  const auto before = widget_consumer::benchmarks::thread_allocations;
  for (auto _ : state) {
    request.headers = original;
    sign(request, keys, params);
    benchmark::DoNotOptimize(request.headers.back().value.data());
  }
  widget_consumer::benchmarks::report_allocations(state, before);
  state.SetItemsProcessed(state.iterations());
  state.counters["body_bytes"] = static_cast<double>(request.body.size());
}

void sign_sqs_post(benchmark::State& state) {
  sign_request(state, sqs_delete_message("https://sqs.us-east-1.amazonaws.com"), params_for("sqs"));
}

void sign_s3_put_2kb(benchmark::State& state) {
  sign_request(state, s3_put_object("https://s3.us-east-1.amazonaws.com"), params_for("s3"));
}

// A server that answers every request at once, keeping the connection open:
// what is measured is our side plus loopback TCP, not a service.
scripted_reply answer(const widget_consumer::testing::received_http_request& request) {
  return {.bytes = http_reply(200, request.method == "POST" ? "{}" : "",
                              "Content-Type: application/x-amz-json-1.0\r\n")};
}

client_config loopback_config(const std::string& endpoint) {
  client_config config;
  config.region = "us-east-1";
  config.endpoint = endpoint;
  config.max_attempts = 1;
  config.credentials = test_credentials;
  return config;
}

void report_connections(benchmark::State& state, const loopback_http_server& server) {
  state.SetItemsProcessed(state.iterations());
  // 1 means every request reused one keep-alive connection.
  state.counters["connections"] = static_cast<double>(server.connections());
}

void round_trip(benchmark::State& state, const std::string& service,
                http_request (*make)(const std::string&)) {
  loopback_http_server server(answer);
  service_client client(service, loopback_config(server.endpoint()));
  const http_request request = make(server.endpoint());
  const auto before = widget_consumer::benchmarks::thread_allocations;
  for (auto _ : state)
    benchmark::DoNotOptimize(client.send(request, "Benchmark", "loopback"));
  widget_consumer::benchmarks::report_allocations(state, before);
  report_connections(state, server);
}

void unsigned_round_trip(benchmark::State& state, http_request (*make)(const std::string&)) {
  loopback_http_server server(answer);
  http_client client;
  const http_request request = make(server.endpoint());
  const auto before = widget_consumer::benchmarks::thread_allocations;
  for (auto _ : state)
    benchmark::DoNotOptimize(client.send(request));
  widget_consumer::benchmarks::report_allocations(state, before);
  report_connections(state, server);
}

void signed_round_trip_sqs_post(benchmark::State& state) {
  round_trip(state, "sqs", sqs_delete_message);
}

void signed_round_trip_s3_put_2kb(benchmark::State& state) {
  round_trip(state, "s3", s3_put_object);
}

void unsigned_round_trip_sqs_post(benchmark::State& state) {
  unsigned_round_trip(state, sqs_delete_message);
}

void unsigned_round_trip_s3_put_2kb(benchmark::State& state) {
  unsigned_round_trip(state, s3_put_object);
}

}  // namespace

BENCHMARK(sign_sqs_post)->MinTime(run_seconds);
BENCHMARK(sign_s3_put_2kb)->MinTime(run_seconds);
// Wall time: the client thread mostly waits on the server's thread.
BENCHMARK(signed_round_trip_sqs_post)->MinTime(run_seconds)->UseRealTime();
BENCHMARK(signed_round_trip_s3_put_2kb)->MinTime(run_seconds)->UseRealTime();
BENCHMARK(unsigned_round_trip_sqs_post)->MinTime(run_seconds)->UseRealTime();
BENCHMARK(unsigned_round_trip_s3_put_2kb)->MinTime(run_seconds)->UseRealTime();
