// libFuzzer target for the readers of the JSON-protocol answers (SQS
// ReceiveMessage and batch results, DynamoDB GetItem / Scan / table
// descriptions / writes) and for parse_service_error on JSON error bodies:
// no crash, no sanitizer report, no exception other than the two
// response.hpp promises, and the invariants of a successful read.
#include "widget_consumer/aws/dynamodb.hpp"
#include "widget_consumer/aws/sqs.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

namespace aws = widget_consumer::aws;

void require(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
  }
}

// Parses the body as `operation` would and hands the object to `read`.
template <class Read>
void read_one(const aws::http_response& response, const char* service, const char* operation,
              Read read) {
  const aws::response_origin origin{service, operation, "r", response};
  try {
    auto object = aws::read_json_response(origin);
    read(origin, object);
  } catch (const aws::transport_error& e) {
    require(e.failure() == aws::transport_error::kind::malformed,
            "only a malformed transport_error");
    require(e.retryable(), "malformed is retryable");
    require(std::string(e.what()).find(operation) != std::string::npos, "names the operation");
  } catch (const aws::service_error& e) {
    require(e.code() == "UnexpectedResponse" && !e.retryable(), "unexpected, not retried");
    require(e.operation() == operation, "names the operation");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  aws::http_response response;
  response.status = 200;
  response.body.assign(reinterpret_cast<const char*>(data), size);

  read_one(response, "sqs", "ReceiveMessage", [](const auto& origin, auto& object) {
    for (const auto& message : aws::detail::sqs_read_messages(origin, object))
      (void)message.receive_count();
  });
  read_one(response, "sqs", "DeleteMessageBatch", [](const auto& origin, auto& object) {
    const auto failures = aws::detail::sqs_read_batch(origin, object, 10, 20);
    for (const auto& failure : failures)
      require(failure.index >= 10 && failure.index < 20, "failure indexes stay in the batch");
  });
  read_one(response, "dynamodb", "GetItem", [](const auto& origin, auto& object) {
    (void)aws::detail::dynamodb_read_get_item(origin, object);
  });
  read_one(response, "dynamodb", "Scan", [](const auto& origin, auto& object) {
    (void)aws::detail::dynamodb_read_scan(origin, object);
  });
  read_one(response, "dynamodb", "DescribeTable", [](const auto& origin, auto& object) {
    (void)aws::detail::dynamodb_read_object(origin, object, "Table");
  });
  read_one(response, "dynamodb", "PutItem", [](const auto& origin, auto& object) {
    (void)aws::detail::dynamodb_read_write(origin, object);
  });

  response.status = 400;
  const auto error = aws::parse_service_error("dynamodb", "PutItem", "t", response);
  require(!error.code().empty(), "an error always has a code");
  require(std::string(error.what()).starts_with("DynamoDB PutItem t: 400 "),
          "an error names operation and status");
  return 0;
}
