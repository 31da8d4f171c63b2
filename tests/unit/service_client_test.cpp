// service_client over a scripted transport: each way a request can end
// reaches the retry policy (aws/retry.hpp) and the unknown-outcome flag the
// settle logic reads, with no socket. The expectations are the AWS SDKs'
// retry rules as retry.hpp and error.hpp state them, one row per path.
#include "support/scripted_transport.hpp"
#include "widget_consumer/aws/client.hpp"
#include "widget_consumer/destination/dynamodb_table.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <ostream>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

namespace aws = widget_consumer::aws;
using widget_consumer::testing::scripted_transport;
using kind = aws::transport_error::kind;
using namespace std::chrono_literals;

namespace {

aws::client_config config_with(std::shared_ptr<scripted_transport> transport,
                               int max_attempts = 3) {
  aws::client_config config;
  config.region = "us-east-1";
  config.endpoint = "http://127.0.0.1:1";
  config.max_attempts = max_attempts;
  config.credentials = [] { return aws::credentials{"AKIDEXAMPLE", "secret", {}, {}}; };
  config.retry_env = aws::retry_environment{[] { return std::chrono::system_clock::now(); },
                                            [] { return 0.0; }, [](std::chrono::milliseconds) {}};
  config.transport = std::move(transport);
  return config;
}

aws::http_request put_request() {
  aws::http_request request;
  request.method = "PUT";
  request.url = "http://127.0.0.1:1/widgets/w1";
  request.body = R"({"id":"w1"})";
  return request;
}

const std::vector<aws::http_header> json_type{{"Content-Type", "application/x-amz-json-1.0"}};

std::string dynamodb_error(std::string type) {
  return R"({"__type":"com.amazonaws.dynamodb.v20120810#)" + type + R"(","message":"m"})";
}

// One way a first attempt can end, and what the client must make of it.
struct failure_case {
  std::string name;
  std::optional<kind> transport;  // else the answer below
  long status = 0;
  std::string error_type;        // DynamoDB's __type of that answer
  int attempts = 0;              // when every attempt ends the same way
  bool unknown_outcome = false;  // after one such attempt and then a 200

  friend void PrintTo(const failure_case& c, std::ostream* out) { *out << c.name; }
};

void script_failure(scripted_transport& transport, const failure_case& c) {
  if (c.transport)
    transport.fail(*c.transport, "PUT http://127.0.0.1:1: " + c.name);
  else
    transport.answer(c.status, dynamodb_error(c.error_type), json_type);
}

class FailurePath : public ::testing::TestWithParam<failure_case> {};
class RetriedPath : public ::testing::TestWithParam<failure_case> {};

}  // namespace

// Retried up to max_attempts when it may heal; once when it cannot.
TEST_P(FailurePath, IsRetriedAsTheRulesSay) {
  const auto& c = GetParam();
  auto transport = std::make_shared<scripted_transport>();
  for (int i = 0; i < 3; ++i)
    script_failure(*transport, c);
  aws::service_client client("dynamodb", config_with(transport));
  if (c.transport) {
    try {
      (void)client.send(put_request(), "PutItem", "widgets");
      FAIL() << "no error";
    } catch (const aws::transport_error& e) {
      EXPECT_EQ(e.failure(), *c.transport);
    }
  } else {
    try {
      (void)client.send(put_request(), "PutItem", "widgets");
      FAIL() << "no error";
    } catch (const aws::service_error& e) {
      EXPECT_EQ(e.status(), c.status);
      EXPECT_EQ(e.code(), c.error_type);
    }
  }
  EXPECT_EQ(transport->requests().size(), static_cast<std::size_t>(c.attempts));
}

// After one such attempt and a success, the answer says whether the failed
// attempt may have been carried out (the settle logic's "maybe done" rule).
TEST_P(RetriedPath, MarksTheOutcomeUnknownWhenTheRequestMayHaveGoneOut) {
  const auto& c = GetParam();
  auto transport = std::make_shared<scripted_transport>();
  script_failure(*transport, c);
  transport->answer(200, "{}", json_type);
  aws::service_client client("dynamodb", config_with(transport));
  const auto response = client.send(put_request(), "PutItem", "widgets");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.after_unknown_outcome, c.unknown_outcome);
  EXPECT_EQ(transport->requests().size(), 2u);
}

failure_case no_answer(std::string name, kind k, int attempts, bool unknown_outcome) {
  failure_case c;
  c.name = std::move(name);
  c.transport = k;
  c.attempts = attempts;
  c.unknown_outcome = unknown_outcome;
  return c;
}

failure_case answer(std::string name, long status, std::string type, int attempts,
                    bool unknown_outcome) {
  failure_case c;
  c.name = std::move(name);
  c.status = status;
  c.error_type = std::move(type);
  c.attempts = attempts;
  c.unknown_outcome = unknown_outcome;
  return c;
}

// Retried: each may heal.
const auto retried =
    ::testing::Values(no_answer("connection_refused", kind::connect, 3, false),
                      no_answer("timeout", kind::timeout, 3, true),
                      // curl's CURLE_RECV_ERROR (a reset) and CURLE_PARTIAL_FILE (closed
                      // mid-response) are both classified "other" (http.hpp)
                      no_answer("reset_or_closed_mid_response", kind::other, 3, true),
                      no_answer("tls_handshake", kind::tls, 3, true),
                      answer("internal_error", 500, "InternalServerError", 3, true),
                      answer("unavailable", 503, "ServiceUnavailable", 3, true),
                      answer("throttled", 400, "ProvisionedThroughputExceededException", 3, false));

// Final at once: the same request would fail the same way, or was given up.
const auto final_at_once =
    ::testing::Values(no_answer("certificate", kind::permanent, 1, false),
                      no_answer("too_large", kind::too_large, 1, false),
                      no_answer("cancelled", kind::cancelled, 1, false),
                      answer("validation", 400, "ValidationException", 1, false));

std::string case_name(const ::testing::TestParamInfo<failure_case>& param) {
  return param.param.name;
}

INSTANTIATE_TEST_SUITE_P(Retried, FailurePath, retried, case_name);
INSTANTIATE_TEST_SUITE_P(Final, FailurePath, final_at_once, case_name);
INSTANTIATE_TEST_SUITE_P(Retried, RetriedPath, retried, case_name);

TEST(ServiceClientOverATransport, SignsEachAttemptAfreshFromTheCallersHeaders) {
  auto transport = std::make_shared<scripted_transport>();
  transport->fail(kind::timeout, "timed out").answer(200);
  aws::service_client client("dynamodb", config_with(transport));
  auto request = put_request();
  request.headers.push_back({"X-Caller", "kept"});
  (void)client.send(request, "PutItem", "widgets");
  const auto seen = transport->requests();
  ASSERT_EQ(seen.size(), 2u);
  for (const auto& sent : seen) {
    std::size_t authorizations = 0;
    for (const auto& header : sent.headers)
      authorizations += aws::detail::iequals(header.name, "Authorization") ? 1 : 0;
    EXPECT_EQ(authorizations, 1u);
    EXPECT_EQ(sent.header("X-Caller"), "kept");
    EXPECT_EQ(sent.body, request.body);  // the body travels as it was signed
  }
}

// An answer that comes later on another thread (an event loop's) is waited
// for; a slow body that ends in a timeout is retried like any timeout.
TEST(ServiceClientOverATransport, WaitsForAnAnswerFinishedOnAnotherThread) {
  auto transport = std::make_shared<scripted_transport>();
  transport->fail(kind::timeout, "slow body: timed out", 30ms).answer(200, "{}", json_type, 20ms);
  aws::service_client client("dynamodb", config_with(transport));
  const auto response = client.send(put_request(), "PutItem", "widgets");
  EXPECT_EQ(response.status, 200);
  EXPECT_TRUE(response.after_unknown_outcome);
  EXPECT_EQ(transport->steps_left(), 0u);
}

// A stop ends a request waiting on a slow server at once, and is not retried.
TEST(ServiceClientOverATransport, AStopEndsAWaitingRequestAtOnceAndIsNotRetried) {
  auto transport = std::make_shared<scripted_transport>();
  transport->answer(200, "{}", json_type, 60s).answer(200);
  aws::service_client client("dynamodb", config_with(transport));
  std::stop_source stop;
  std::jthread stopper([&] {
    std::this_thread::sleep_for(50ms);
    stop.request_stop();
  });
  const auto started = std::chrono::steady_clock::now();
  try {
    (void)client.send(put_request(), "PutItem", "widgets", stop.get_token());
    FAIL() << "no error";
  } catch (const aws::transport_error& e) {
    EXPECT_EQ(e.failure(), kind::cancelled);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
  EXPECT_EQ(transport->requests().size(), 1u);
}

// The store_error kind `store.apply(request)` throws; none when it applies.
static std::optional<widget_consumer::store_failure> failure_of(
    widget_consumer::dynamodb_table_store& store, const widget_consumer::widget_request& request) {
  try {
    (void)store.apply(request);
  } catch (const widget_consumer::store_error& e) {
    return e.failure();
  }
  return std::nullopt;
}

// Through a store: what the transport reports becomes the store_error kind
// the consumer settles by (transient: released and tried again later;
// permanent: the run stops), as detail/store_failure.hpp says.
TEST(ServiceClientOverATransport, AStoreTurnsTransportOutcomesIntoSettleDecisions) {
  using namespace widget_consumer;
  const auto request = std::get<widget_request>(parse_request(
      R"({"type":"create","requestId":"r1","widgetId":"w1","owner":"Mary Matthews"})"));

  auto healing = std::make_shared<scripted_transport>();
  healing->fail(kind::other, "connection reset").answer(200, "{}", json_type);
  dynamodb_table_store healed(config_with(healing), "widgets", fencing_options{.enabled = false});
  EXPECT_EQ(healed.apply(request), apply_outcome::applied);

  auto down = std::make_shared<scripted_transport>();
  for (int i = 0; i < 3; ++i)
    down->fail(kind::timeout, "timed out");
  dynamodb_table_store unreachable(config_with(down), "widgets", fencing_options{.enabled = false});
  EXPECT_EQ(failure_of(unreachable, request), store_failure::transient);

  auto refusing = std::make_shared<scripted_transport>();
  refusing->answer(400, dynamodb_error("AccessDeniedException"), json_type);
  dynamodb_table_store denied(config_with(refusing), "widgets", fencing_options{.enabled = false});
  EXPECT_EQ(failure_of(denied, request), store_failure::permanent);
}
