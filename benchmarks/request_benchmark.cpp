// What one request costs the consumer before any I/O: parse and validate a
// typical ~2 KB body, then build the S3 document or the DynamoDB request.
#include <benchmark/benchmark.h>

#include <string>

#include "widget_consumer/destination/detail/dynamodb_widget.hpp"
#include "widget_consumer/destination/detail/widget_document.hpp"
#include "widget_consumer/widget.hpp"

namespace {

using namespace widget_consumer;

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
  for (auto _ : state)
    benchmark::DoNotOptimize(parse_request(body));
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(body.size()));
  state.counters["body_bytes"] = static_cast<double>(body.size());
}

void parse_validate_to_json(benchmark::State& state) {
  const std::string body = typical_request();
  for (auto _ : state) {
    auto result = parse_request(body);
    benchmark::DoNotOptimize(to_json(make_widget(std::get<widget_request>(result))));
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(body.size()));
}

void parse_validate_dynamodb_update(benchmark::State& state) {
  const std::string body = typical_request();
  for (auto _ : state) {
    auto result = parse_request(body);
    benchmark::DoNotOptimize(
        boost::json::serialize(dynamodb_update_item(std::get<widget_request>(result))));
  }
  state.SetItemsProcessed(state.iterations());
}

void s3_read_modify_write(benchmark::State& state) {
  const std::string body = typical_request();
  const widget_request& update = parsed(body);
  const std::string document = to_json(make_widget(update));
  for (auto _ : state) {
    widget stored = widget_from_json(document);
    apply_update(stored, update);
    benchmark::DoNotOptimize(to_json(stored));
  }
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

BENCHMARK(parse_validate);
BENCHMARK(parse_validate_to_json);
BENCHMARK(parse_validate_dynamodb_update);
BENCHMARK(s3_read_modify_write);
