#include "widget_consumer/destination/detail/store_failure.hpp"

#include <gtest/gtest.h>

#include <ostream>
#include <stdexcept>
#include <string>

namespace {

using namespace widget_consumer;
using widget_consumer::aws::service_error;
using widget_consumer::aws::transport_error;

service_error refusal(std::string service, long status, std::string code,
                      std::string message = {}) {
  return service_error({.service = std::move(service),
                        .operation = "Op",
                        .resource = {},
                        .status = status,
                        .code = std::move(code),
                        .message = std::move(message),
                        .request_id = {},
                        .server_time = {}});
}

struct refusal_case {
  std::string name;
  long status;
  std::string code;
  std::string message;
  store_failure expected;

  friend void PrintTo(const refusal_case& c, std::ostream* out) { *out << c.name; }
};

std::string case_name(const testing::TestParamInfo<refusal_case>& info) {
  return info.param.name;
}

class s3_refusal : public testing::TestWithParam<refusal_case> {};

TEST_P(s3_refusal, is_classified) {
  const auto& c = GetParam();
  EXPECT_EQ(detail::s3_store_failure(refusal("s3", c.status, c.code, c.message)), c.expected);
}

// A key S3 cannot hold can never be stored; a refusal that may pass by
// itself is retried; anything else needs a person.
INSTANTIATE_TEST_SUITE_P(
    s3, s3_refusal,
    testing::Values(
        refusal_case{"key_too_long", 400, "KeyTooLongError", "", store_failure::bad_request},
        refusal_case{"key_too_long_even_with_a_5xx", 500, "KeyTooLongError", "",
                     store_failure::bad_request},
        refusal_case{"slow_down", 503, "SlowDown", "", store_failure::transient},
        refusal_case{"internal_error", 500, "InternalError", "", store_failure::transient},
        refusal_case{"too_many_requests", 429, "HTTP 429", "", store_failure::transient},
        refusal_case{"access_denied", 403, "AccessDenied", "", store_failure::permanent},
        refusal_case{"no_such_bucket", 404, "NoSuchBucket", "", store_failure::permanent},
        refusal_case{"validation_means_nothing_to_s3", 400, "ValidationException", "",
                     store_failure::permanent}),
    case_name);

class dynamodb_refusal : public testing::TestWithParam<refusal_case> {};

TEST_P(dynamodb_refusal, is_classified) {
  const auto& c = GetParam();
  EXPECT_EQ(detail::dynamodb_store_failure(refusal("dynamodb", c.status, c.code, c.message)),
            c.expected);
}

// A ValidationException refuses the request itself (rejected), unless it is
// about the table's key, which every request would meet (permanent).
INSTANTIATE_TEST_SUITE_P(
    dynamodb, dynamodb_refusal,
    testing::Values(
        refusal_case{"throughput", 400, "ProvisionedThroughputExceededException", "",
                     store_failure::transient},
        refusal_case{"service_unavailable", 503, "ServiceUnavailable", "",
                     store_failure::transient},
        refusal_case{"validation_with_a_5xx_is_retried", 500, "ValidationException", "",
                     store_failure::transient},
        refusal_case{"item_too_large", 400, "ValidationException",
                     "Item size has exceeded the maximum allowed size", store_failure::bad_request},
        refusal_case{"empty_key", 400, "ValidationException",
                     "One or more parameter values are not valid. The AttributeValue for a key "
                     "attribute cannot contain an empty string value. Key: id",
                     store_failure::bad_request},
        refusal_case{"key_schema", 400, "ValidationException",
                     "The provided key element does not match the schema",
                     store_failure::permanent},
        refusal_case{"key_type", 400, "ValidationException",
                     "One or more parameter values were invalid: Type mismatch for key id "
                     "expected: N actual: S",
                     store_failure::permanent},
        refusal_case{"missing_key", 400, "ValidationException",
                     "One or more parameter values were invalid: Missing the key pk in the item",
                     store_failure::permanent},
        refusal_case{"key_too_long_means_nothing_to_dynamodb", 400, "KeyTooLongError", "",
                     store_failure::permanent},
        refusal_case{"missing_table", 400, "ResourceNotFoundException", "",
                     store_failure::permanent},
        refusal_case{"access_denied", 400, "AccessDeniedException", "", store_failure::permanent}),
    case_name);

TEST(transport_store_failure, only_what_may_heal_is_transient) {
  using kind = transport_error::kind;
  for (const auto k : {kind::connect, kind::timeout, kind::tls, kind::other, kind::malformed})
    EXPECT_EQ(detail::transport_store_failure(transport_error(k, "x")), store_failure::transient);
  for (const auto k : {kind::permanent, kind::too_large, kind::cancelled})
    EXPECT_EQ(detail::transport_store_failure(transport_error(k, "x")), store_failure::permanent);
}

store_failure failure_of(const auto& operation) {
  try {
    detail::with_store_failures(detail::s3_store_failure, operation);
  } catch (const store_error& e) {
    return e.failure();
  }
  ADD_FAILURE() << "no store_error";
  return store_failure::permanent;
}

TEST(with_store_failures, turns_aws_errors_into_store_errors_and_keeps_the_message) {
  EXPECT_EQ(detail::with_store_failures(detail::s3_store_failure, [] { return 7; }), 7);
  EXPECT_EQ(failure_of([] { throw refusal("s3", 400, "KeyTooLongError"); }),
            store_failure::bad_request);
  EXPECT_EQ(failure_of([] { throw transport_error(transport_error::kind::timeout, "slow"); }),
            store_failure::transient);
  try {
    detail::with_store_failures(detail::dynamodb_store_failure,
                                [] { throw refusal("dynamodb", 400, "AccessDeniedException"); });
    ADD_FAILURE() << "no store_error";
  } catch (const store_error& e) {
    EXPECT_EQ(std::string(e.what()), "DynamoDB Op: 400 AccessDeniedException");
  }
}

TEST(with_store_failures, lets_other_errors_pass_unchanged) {
  EXPECT_THROW(
      detail::with_store_failures(detail::s3_store_failure,
                                  [] { throw store_error(store_failure::transient, "mine"); }),
      store_error);
  EXPECT_THROW(detail::with_store_failures(detail::s3_store_failure,
                                           [] { throw std::invalid_argument("not aws"); }),
               std::invalid_argument);
}

}  // namespace
