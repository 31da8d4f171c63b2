#include "widget_consumer/aws/error.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace aws = widget_consumer::aws;

namespace {

aws::http_response response(long status, std::string body,
                            std::vector<aws::http_header> headers = {}) {
  return {status, std::move(headers), std::move(body)};
}

}  // namespace

TEST(ServiceError, S3XmlBodyReadsExactly) {
  const auto e = aws::parse_service_error(
      "s3", "GetObject", "s3://requests/1612306368338",
      response(403,
               "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>"
               "<Message>Access Denied</Message><RequestId>4442587FB7D0A2F9</RequestId>"
               "<HostId>abc=</HostId></Error>"));
  EXPECT_STREQ(e.what(),
               "S3 GetObject s3://requests/1612306368338: 403 AccessDenied: Access Denied "
               "(request id 4442587FB7D0A2F9)");
  EXPECT_EQ(e.service(), "s3");
  EXPECT_EQ(e.operation(), "GetObject");
  EXPECT_EQ(e.resource(), "s3://requests/1612306368338");
  EXPECT_EQ(e.status(), 403);
  EXPECT_EQ(e.code(), "AccessDenied");
  EXPECT_EQ(e.message(), "Access Denied");
  EXPECT_EQ(e.request_id(), "4442587FB7D0A2F9");
  EXPECT_FALSE(e.retryable());
  EXPECT_FALSE(e.throttling());
}

TEST(ServiceError, S3RequestIdHeaderWins) {
  const auto e = aws::parse_service_error(
      "s3", "HeadObject", "s3://b/k",
      response(404, "", {{"x-amz-request-id", "HEADERID"}, {"x-amz-id-2", "x"}}));
  EXPECT_EQ(e.request_id(), "HEADERID");
  EXPECT_EQ(e.code(), "HTTP 404");
  EXPECT_STREQ(e.what(), "S3 HeadObject s3://b/k: 404 HTTP 404: Not Found (request id HEADERID)");
}

TEST(ServiceError, S3SlowDownIsThrottling) {
  const auto e = aws::parse_service_error(
      "s3", "PutObject", "s3://b/k",
      response(503,
               "<Error><Code>SlowDown</Code><Message>Please reduce your request rate."
               "</Message></Error>"));
  EXPECT_EQ(e.code(), "SlowDown");
  EXPECT_TRUE(e.throttling());
  EXPECT_TRUE(e.retryable());
}

TEST(ServiceError, SqsQueryXml) {
  const auto e = aws::parse_service_error(
      "sqs", "ReceiveMessage", "requests-queue",
      response(400,
               "<ErrorResponse xmlns=\"http://queue.amazonaws.com/doc/2012-11-05/\"><Error>"
               "<Type>Sender</Type><Code>AWS.SimpleQueueService.NonExistentQueue</Code>"
               "<Message>The specified queue does not exist.</Message><Detail/></Error>"
               "<RequestId>42d59b56-7407-4c4a-be0f-4c88daeea257</RequestId></ErrorResponse>"));
  EXPECT_EQ(e.code(), "AWS.SimpleQueueService.NonExistentQueue");
  EXPECT_EQ(e.request_id(), "42d59b56-7407-4c4a-be0f-4c88daeea257");
  EXPECT_STREQ(e.what(),
               "SQS ReceiveMessage requests-queue: 400 AWS.SimpleQueueService.NonExistentQueue: "
               "The specified queue does not exist. (request id "
               "42d59b56-7407-4c4a-be0f-4c88daeea257)");
}

TEST(ServiceError, ErrorsErrorXml) {
  const auto e = aws::parse_service_error(
      "dynamodb", "ListTables", "",
      response(403,
               "<ErrorResponse><Errors><Error><Code>SignatureDoesNotMatch</Code><Message>"
               "bad</Message><Type>Sender</Type></Error></Errors></ErrorResponse>"));
  EXPECT_EQ(e.code(), "SignatureDoesNotMatch");
  EXPECT_STREQ(e.what(), "DynamoDB ListTables: 403 SignatureDoesNotMatch: bad");
}

TEST(ServiceError, DynamoDbJson) {
  const auto e = aws::parse_service_error(
      "dynamodb", "UpdateItem", "widgets",
      response(400,
               R"({"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",)"
               R"("message":"The conditional request failed"})",
               {{"x-amzn-RequestId", "RID123"}}));
  EXPECT_EQ(e.code(), "ConditionalCheckFailedException");
  EXPECT_EQ(e.message(), "The conditional request failed");
  EXPECT_EQ(e.request_id(), "RID123");
  EXPECT_FALSE(e.retryable());
  EXPECT_STREQ(e.what(),
               "DynamoDB UpdateItem widgets: 400 ConditionalCheckFailedException: The conditional "
               "request failed (request id RID123)");
}

TEST(ServiceError, DynamoDbThroughputIsThrottling) {
  const auto e = aws::parse_service_error(
      "dynamodb", "PutItem", "widgets",
      response(
          400,
          R"({"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",)"
          R"("Message":"slow down"})"));
  EXPECT_EQ(e.message(), "slow down");
  EXPECT_TRUE(e.throttling());
  EXPECT_TRUE(e.retryable());
}

TEST(ServiceError, SqsJsonProtocolWithoutNamespace) {
  const auto e = aws::parse_service_error(
      "sqs", "GetQueueUrl", "q",
      response(400, R"({"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"nope"})"));
  EXPECT_EQ(e.code(), "QueueDoesNotExist");
  const auto plain = aws::parse_service_error("sqs", "GetQueueUrl", "q",
                                              response(400, R"({"__type":"QueueDoesNotExist"})"));
  EXPECT_EQ(plain.code(), "QueueDoesNotExist");
  EXPECT_STREQ(plain.what(), "SQS GetQueueUrl q: 400 QueueDoesNotExist");
}

TEST(ServiceError, ErrorTypeHeader) {
  const auto e = aws::parse_service_error(
      "dynamodb", "GetItem", "t",
      response(400, "", {{"x-amzn-ErrorType", "ResourceNotFoundException:http://internal/"}}));
  EXPECT_EQ(e.code(), "ResourceNotFoundException");
  const auto namespaced = aws::parse_service_error(
      "sqs", "GetQueueUrl", "q",
      response(400, R"({"__type":"com.amazonaws.sqs#QueueDoesNotExist"})",
               {{"x-amzn-ErrorType", "com.amazonaws.sqs#QueueDoesNotExist"}}));
  EXPECT_EQ(namespaced.code(), "QueueDoesNotExist");
}

TEST(ServiceError, HtmlBodyFallsBackToStatus) {
  const auto e = aws::parse_service_error(
      "s3", "GetObject", "s3://b/k",
      response(503,
               "<html><head><title>503 Service Temporarily Unavailable</title></head>"
               "<body><center><h1>503</h1></center><hr></body></html>"));
  EXPECT_EQ(e.code(), "HTTP 503");
  EXPECT_EQ(e.message(), "Service Unavailable");
  EXPECT_TRUE(e.retryable());
  EXPECT_FALSE(e.throttling());
  EXPECT_STREQ(e.what(), "S3 GetObject s3://b/k: 503 HTTP 503: Service Unavailable");
}

TEST(ServiceError, MalformedBodiesNeverThrow) {
  for (const char* body : {"<Error><Code>x", "{\"__type\": ", "\xff\xfe garbage", "<<<>>>",
                           "{\"__type\": 42}", "[1,2]", "<!DOCTYPE html><html>"}) {
    const auto e = aws::parse_service_error("s3", "GetObject", "", response(502, body));
    EXPECT_FALSE(e.code().empty()) << body;
    EXPECT_TRUE(e.retryable()) << body;
  }
}

TEST(ServiceError, EmptyBodyUnknownStatus) {
  const auto e = aws::parse_service_error("sqs", "SendMessage", "", response(418, ""));
  EXPECT_STREQ(e.what(), "SQS SendMessage: 418 HTTP 418");
  EXPECT_FALSE(e.retryable());
}

TEST(ServiceError, Status429IsThrottling) {
  const auto e = aws::parse_service_error("sqs", "SendMessage", "", response(429, ""));
  EXPECT_TRUE(e.throttling());
  EXPECT_TRUE(e.retryable());
}

TEST(ServiceError, TransientCodesRetry) {
  for (const char* code :
       {"RequestTimeout", "RequestTimeoutException", "InternalError", "PriorRequestNotComplete",
        "ThrottlingException", "RequestLimitExceeded"}) {
    const auto e = aws::parse_service_error(
        "s3", "PutObject", "",
        response(400, std::string("<Error><Code>") + code + "</Code></Error>"));
    EXPECT_TRUE(e.retryable()) << code;
  }
}

TEST(ServiceError, ClockSkewAndServerTime) {
  const auto e =
      aws::parse_service_error("s3", "ListObjectsV2", "s3://b",
                               response(403, "<Error><Code>RequestTimeTooSkewed</Code></Error>",
                                        {{"Date", "Tue, 02 Feb 2021 22:52:48 GMT"}}));
  EXPECT_TRUE(e.clock_skew());
  ASSERT_TRUE(e.server_time());
  EXPECT_EQ(std::chrono::system_clock::to_time_t(*e.server_time()), 1612306368);
}

TEST(HttpDate, ParsesImfFixdateAndRejectsOthers) {
  EXPECT_EQ(std::chrono::system_clock::to_time_t(
                *aws::detail::parse_http_date("Thu, 01 Jan 1970 00:00:01 GMT")),
            1);
  EXPECT_FALSE(aws::detail::parse_http_date(""));
  EXPECT_FALSE(aws::detail::parse_http_date("Tue, 31 Feb 2021 22:52:48 GMT"));
  EXPECT_FALSE(aws::detail::parse_http_date("Tue, 02 Foo 2021 22:52:48 GMT"));
  EXPECT_FALSE(aws::detail::parse_http_date("Tuesday, 02-Feb-21 22:52:48 GMT"));
}

TEST(TransportError, Classification) {
  const aws::transport_error timeout(aws::transport_error::kind::timeout, "GET http://h: timeout");
  EXPECT_TRUE(timeout.timeout());
  EXPECT_TRUE(timeout.retryable());
  const aws::transport_error tls(aws::transport_error::kind::permanent, "certificate");
  EXPECT_FALSE(tls.retryable());
}
