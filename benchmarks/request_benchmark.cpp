// What one request costs the consumer before any I/O: parse and validate a
// typical ~2 KB body, then build the S3 document or the DynamoDB request;
// and reading a 1,000-key S3 listing, the source's share of each request.
// Each benchmark prints its allocations per iteration ("allocs").
#include <benchmark/benchmark.h>

#include <string>

#include "allocation_counter.hpp"
#include "widget_consumer/aws/s3.hpp"
#include "widget_consumer/destination/detail/dynamodb_widget.hpp"
#include "widget_consumer/destination/detail/widget_document.hpp"
#include "widget_consumer/widget.hpp"

namespace {

using namespace widget_consumer;
using benchmarks::report_allocations;
using benchmarks::thread_allocations;

// Shaped like the course producer's requests, padded to about 2 KB.
std::string typical_request() {
  std::string body =
      R"({"type":"WidgetUpdateRequest","requestId":"e80417d3-5c4a-4d0b-9a4e-3c1f0a2b7d11",)"
      R"("widgetId":"8123f304-f23f-440b-a6d3-80e979fa4cd6","owner":"Mary Matthews",)"
      R"("label":"JWJYY","description":")";
  body += std::string(300, 'T');
  body += R"(","otherAttributes":[)";
  for (int i = 0; i < 24; ++i) {
    if (i > 0)
      body += ',';
    body += R"({"name":"attribute-)" + std::to_string(i) + R"(","value":"caf\u00e9 )" +
            std::string(30, 'v') + R"("})";
  }
  body += "]}";
  return body;
}

const widget_request& parsed(const std::string& body) {
  static const widget_request request = std::get<widget_request>(parse_request(body));
  return request;
}

void parse_validate(benchmark::State& state) {
  const std::string body = typical_request();
  const auto before = thread_allocations;
  for (auto _ : state)
    benchmark::DoNotOptimize(parse_request(body));
  report_allocations(state, before);
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(body.size()));
  state.counters["body_bytes"] = static_cast<double>(body.size());
}

void parse_validate_to_json(benchmark::State& state) {
  const std::string body = typical_request();
  const auto before = thread_allocations;
  for (auto _ : state) {
    auto result = parse_request(body);
    benchmark::DoNotOptimize(to_json(make_widget(std::get<widget_request>(result))));
  }
  report_allocations(state, before);
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(body.size()));
}

void parse_validate_dynamodb_update(benchmark::State& state) {
  const std::string body = typical_request();
  const auto before = thread_allocations;
  for (auto _ : state) {
    auto result = parse_request(body);
    benchmark::DoNotOptimize(
        boost::json::serialize(dynamodb_update_item(std::get<widget_request>(result))));
  }
  report_allocations(state, before);
  state.SetItemsProcessed(state.iterations());
}

void s3_read_modify_write(benchmark::State& state) {
  const std::string body = typical_request();
  const widget_request& update = parsed(body);
  const std::string document = to_json(make_widget(update));
  const auto before = thread_allocations;
  for (auto _ : state) {
    widget stored = widget_from_json(document);
    apply_update(stored, update);
    benchmark::DoNotOptimize(to_json(stored));
  }
  report_allocations(state, before);
  state.SetItemsProcessed(state.iterations());
}

// A ListObjectsV2 page as S3 sends it: 1,000 keys of 13-digit epoch
// milliseconds, url-encoded as the source asks.
std::string listing_page() {
  std::string body =
      R"(<?xml version="1.0" encoding="UTF-8"?>)"
      R"(<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">)"
      "<Name>requests</Name><Prefix></Prefix><KeyCount>1000</KeyCount><MaxKeys>1000</MaxKeys>"
      "<EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>"
      "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</"
      "NextContinuationToken>";
  for (int i = 0; i < 1000; ++i)
    body += "<Contents><Key>" + std::to_string(1612306368338 + i) +
            "</Key><LastModified>2021-02-02T22:52:48.000Z</LastModified>"
            "<ETag>&quot;6805f2cfc46c0f04559748bb039d69ae&quot;</ETag><Size>2048</Size>"
            "<StorageClass>STANDARD</StorageClass></Contents>";
  return body + "</ListBucketResult>";
}

void read_listing_1000_keys(benchmark::State& state) {
  aws::http_response response;
  response.status = 200;
  response.body = listing_page();
  const aws::response_origin origin{"s3", "ListObjectsV2", "s3://requests", response};
  const auto before = thread_allocations;
  for (auto _ : state)
    benchmark::DoNotOptimize(aws::detail::s3_read_list_objects_v2(origin));
  report_allocations(state, before);
  state.SetItemsProcessed(state.iterations() * 1000);
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(response.body.size()));
}

}  // namespace

BENCHMARK(parse_validate);
BENCHMARK(parse_validate_to_json);
BENCHMARK(parse_validate_dynamodb_update);
BENCHMARK(s3_read_modify_write);
BENCHMARK(read_listing_1000_keys);
