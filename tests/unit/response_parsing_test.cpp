// The readers of every 2xx answer in aws/ (and parse_service_error for the
// others) fed broken, foreign and hostile bodies directly: each must end in
// a value, a retryable "malformed" transport_error or a non-retryable
// "UnexpectedResponse" service_error naming the operation and the problem.
#include "widget_consumer/aws/response.hpp"

#include "widget_consumer/aws/crypto.hpp"
#include "widget_consumer/aws/dynamodb.hpp"
#include "widget_consumer/aws/s3.hpp"
#include "widget_consumer/aws/sqs.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

namespace aws = widget_consumer::aws;

namespace {

aws::http_response make_response(std::string body, std::vector<aws::http_header> headers = {},
                                 long status = 200) {
  aws::http_response response;
  response.status = status;
  response.headers = std::move(headers);
  response.body = std::move(body);
  return response;
}

// Runs `read` and checks it fails as a retryable malformed answer whose
// message starts with `prefix` and contains `fragment`.
void expect_malformed(const std::function<void()>& read, const std::string& prefix,
                      const std::string& fragment) {
  try {
    read();
    ADD_FAILURE() << "no error; expected malformed: " << fragment;
  } catch (const aws::transport_error& e) {
    EXPECT_EQ(e.failure(), aws::transport_error::kind::malformed) << e.what();
    EXPECT_TRUE(e.retryable());
    EXPECT_EQ(std::string(e.what()).rfind(prefix, 0), 0u) << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

void expect_unexpected(const std::function<void()>& read, const std::string& prefix,
                       const std::string& fragment) {
  try {
    read();
    ADD_FAILURE() << "no error; expected unexpected: " << fragment;
  } catch (const aws::service_error& e) {
    EXPECT_EQ(e.code(), "UnexpectedResponse") << e.what();
    EXPECT_FALSE(e.retryable()) << e.what();
    EXPECT_EQ(std::string(e.what()).rfind(prefix, 0), 0u) << e.what();
    EXPECT_NE(e.message().find(fragment), std::string::npos) << e.what();
  }
}

// Every way a reader may fail on bad input; anything else (a crash, another
// exception type) fails the test.
void expect_clean_outcome(const std::function<void()>& read) {
  try {
    read();
  } catch (const aws::transport_error& e) {
    EXPECT_EQ(e.failure(), aws::transport_error::kind::malformed) << e.what();
  } catch (const aws::service_error& e) {
    EXPECT_FALSE(e.code().empty()) << e.what();
  }
}

const std::string listing =
    R"(<?xml version="1.0" encoding="UTF-8"?>)"
    R"(<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name>)"
    "<Prefix></Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><EncodingType>url</EncodingType>"
    "<IsTruncated>true</IsTruncated><Contents><Key>a+b%2B</Key><Size>3</Size></Contents>"
    "<Contents><Key>c</Key></Contents><NextContinuationToken>tok</NextContinuationToken>"
    "</ListBucketResult>";

aws::s3_object_list list(const aws::http_response& response) {
  return aws::detail::s3_read_list_objects_v2({"s3", "ListObjectsV2", "s3://b", response});
}

std::vector<aws::s3_delete_failure> deleted(const aws::http_response& response) {
  return aws::detail::s3_read_delete_result({"s3", "DeleteObjects", "s3://b", response});
}

const std::string list_prefix = "S3 ListObjectsV2 s3://b: ";

}  // namespace

TEST(S3ListingResponse, ReadsAGoodPage) {
  const auto page = list(make_response(listing));
  EXPECT_EQ(page.keys, (std::vector<std::string>{"a b+", "c"}));
  EXPECT_EQ(page.next_continuation_token, "tok");
}

TEST(S3ListingResponse, EmptyOrCutShortIsRetryable) {
  const auto empty = make_response("");
  expect_malformed([&] { list(empty); }, list_prefix, "empty body instead of <ListBucketResult>");
  const auto blank = make_response(" \r\n");
  expect_malformed([&] { list(blank); }, list_prefix, "empty body");
  const auto cut = make_response(listing.substr(0, listing.size() / 2));
  expect_malformed([&] { list(cut); }, list_prefix, "malformed XML");
  expect_malformed([&] { list(cut); }, list_prefix, "(status 200, ");
}

TEST(S3ListingResponse, EveryPrefixEndsCleanly) {
  for (std::size_t size = 0; size < listing.size(); ++size) {
    const auto response = make_response(listing.substr(0, size));
    expect_clean_outcome([&] { list(response); });
  }
}

TEST(S3ListingResponse, ForeignDocumentsAreNotRetried) {
  const auto html = make_response("<!DOCTYPE html><html><body>Gateway</body></html>");
  expect_unexpected([&] { list(html); }, list_prefix, "an HTML page instead of <ListBucketResult>");
  const auto html_by_type =
      make_response("<p>proxy</p>", {{"Content-Type", "text/html; charset=utf-8"}});
  expect_unexpected([&] { list(html_by_type); }, list_prefix, "an HTML page");
  const auto json = make_response(R"({"Contents": []})");
  expect_unexpected([&] { list(json); }, list_prefix, "JSON instead of <ListBucketResult> XML");
  const auto text = make_response("OK");
  expect_unexpected([&] { list(text); }, list_prefix, "text instead of");
  const auto other_root = make_response("<ListAllMyBucketsResult/>");
  expect_unexpected([&] { list(other_root); }, list_prefix,
                    "<ListAllMyBucketsResult> instead of <ListBucketResult>");
}

TEST(S3ListingResponse, MissingOrOddFieldsAreNotRetried) {
  const auto no_key = make_response(
      "<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Size>1</Size></Contents>"
      "</ListBucketResult>");
  expect_unexpected([&] { list(no_key); }, list_prefix, "a <Contents> without a <Key>");
  const auto no_truncated = make_response("<ListBucketResult></ListBucketResult>");
  expect_unexpected([&] { list(no_truncated); }, list_prefix, "<IsTruncated> is missing");
  const auto odd_truncated =
      make_response("<ListBucketResult><IsTruncated>yes</IsTruncated></ListBucketResult>");
  expect_unexpected([&] { list(odd_truncated); }, list_prefix, "neither true nor false");
  const auto no_token =
      make_response("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>");
  expect_unexpected([&] { list(no_token); }, list_prefix, "without <NextContinuationToken>");
}

TEST(S3ListingResponse, HostileShapesHitTheLimits) {
  std::string deep;
  for (int i = 0; i < 100'000; ++i)
    deep += "<a>";
  const auto deep_response = make_response(deep);
  expect_unexpected([&] { list(deep_response); }, list_prefix, "nested deeper than 64");
  std::string wide = "<ListBucketResult>";
  for (int i = 0; i < 250'000; ++i)
    wide += "<a/>";
  wide += "</ListBucketResult>";
  const auto wide_response = make_response(wide);
  expect_unexpected([&] { list(wide_response); }, list_prefix, "more than 200000 elements");
  // Comments, CDATA and quoted '>' do not count as nesting.
  std::string quiet = "<ListBucketResult a=\"/>\"><IsTruncated>false</IsTruncated>";
  for (int i = 0; i < 100; ++i)
    quiet += "<!-- <a> --><![CDATA[<b>]]>";
  quiet += "</ListBucketResult>";
  EXPECT_TRUE(list(make_response(quiet)).keys.empty());
}

TEST(S3ListingResponse, AnErrorInA200IsTheServerFailing) {
  const auto error = make_response(
      "<Error><Code>InternalError</Code><Message>We encountered an internal error</Message>"
      "<RequestId>R1</RequestId></Error>");
  try {
    list(error);
    FAIL();
  } catch (const aws::service_error& e) {
    EXPECT_EQ(e.code(), "InternalError");
    EXPECT_EQ(e.status(), 500);
    EXPECT_TRUE(e.retryable());
    EXPECT_EQ(e.request_id(), "R1");
    EXPECT_EQ(std::string(e.what()).rfind("S3 ListObjectsV2 s3://b: 500 InternalError", 0), 0u)
        << e.what();
  }
}

TEST(S3DeleteResponse, ReadsFailuresAndRefusesBrokenOnes) {
  const auto good = make_response(
      "<DeleteResult><Deleted><Key>a</Key></Deleted><Error><Key>b</Key><Code>AccessDenied</Code>"
      "<Message>no</Message></Error></DeleteResult>");
  const auto failures = deleted(good);
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].key, "b");
  EXPECT_EQ(failures[0].code, "AccessDenied");
  const std::string prefix = "S3 DeleteObjects s3://b: ";
  const auto no_key = make_response("<DeleteResult><Error><Code>X</Code></Error></DeleteResult>");
  expect_unexpected([&] { deleted(no_key); }, prefix, "an <Error> without a <Key>");
  const auto cut = make_response("<DeleteResult><Error><Key>b");
  expect_malformed([&] { deleted(cut); }, prefix, "malformed XML");
  const auto html = make_response("<html><body>503</body></html>");
  expect_unexpected([&] { deleted(html); }, prefix, "an HTML page instead of <DeleteResult>");
}

TEST(S3CopyResponse, OnlyACopyObjectResultIsACopy) {
  auto copy = [](const aws::http_response& response) {
    aws::detail::s3_read_copy_result({"s3", "CopyObject", "s3://b/k", response});
  };
  EXPECT_NO_THROW(copy(make_response("<CopyObjectResult><ETag>x</ETag></CopyObjectResult>")));
  const std::string prefix = "S3 CopyObject s3://b/k: ";
  const auto empty = make_response("");
  expect_malformed([&] { copy(empty); }, prefix, "empty body instead of <CopyObjectResult>");
  const auto json = make_response("{}");
  expect_unexpected([&] { copy(json); }, prefix, "JSON instead of <CopyObjectResult>");
}

TEST(ServiceErrorBodies, NeverThrowWhateverTheBody) {
  const std::vector<std::string> bodies = {
      "",
      "<Error><Code>NoSuchKey</Code>",
      R"({"__type": "com.amazon#Thing", "message": )",
      R"({"__type": 5, "message": [1, 2], "Code": {}})",
      "<!DOCTYPE html><html><body>Bad Gateway</body></html>",
      "<ErrorResponse><Error><Code><Code>x</Code></Code></Error></ErrorResponse>",
      std::string(100'000, '['),
      std::string(100'000, '<'),
      "\xEF\xBB\xBF{}",
      "[1]",
  };
  for (const auto& body : bodies) {
    const auto error =
        aws::parse_service_error("sqs", "ReceiveMessage", "q", make_response(body, {}, 502));
    EXPECT_FALSE(error.code().empty()) << body.substr(0, 40);
    EXPECT_TRUE(error.retryable()) << error.what();
    EXPECT_EQ(std::string(error.what()).rfind("SQS ReceiveMessage q: 502 ", 0), 0u) << error.what();
  }
}

namespace {

boost::json::object json_of(const aws::http_response& response) {
  return aws::read_json_response({"sqs", "ReceiveMessage", "q", response});
}

std::vector<aws::sqs_message> messages_of(const std::string& body) {
  const auto response = make_response(body);
  const aws::response_origin origin{"sqs", "ReceiveMessage", "q", response};
  return aws::detail::sqs_read_messages(origin, aws::read_json_response(origin));
}

const std::string receive_prefix = "SQS ReceiveMessage q: ";

}  // namespace

TEST(JsonResponse, EmptyIsAnEmptyObjectBrokenIsRetryableForeignIsNot) {
  EXPECT_TRUE(json_of(make_response("")).empty());
  const auto cut = make_response(R"({"Messages": [{"Body": "x)");
  expect_malformed([&] { json_of(cut); }, receive_prefix, "JSON that does not parse");
  const auto garbage = make_response("{\"a\": \xFF}");
  expect_malformed([&] { json_of(garbage); }, receive_prefix, "JSON that does not parse");
  const auto html = make_response("<html>Service Unavailable</html>");
  expect_unexpected([&] { json_of(html); }, receive_prefix, "an HTML page instead of JSON");
  const auto xml = make_response("<ReceiveMessageResponse/>");
  expect_unexpected([&] { json_of(xml); }, receive_prefix, "XML instead of JSON");
  const auto array = make_response("[1, 2]");
  expect_unexpected([&] { json_of(array); }, receive_prefix,
                    "JSON that is an array, not an object");
  const auto deep = make_response(std::string(100'000, '['));
  expect_unexpected([&] { json_of(deep); }, receive_prefix, "nested deeper than 128");
}

TEST(SqsReceiveResponse, ReadsMessagesAndChecksTheirMd5) {
  const std::string md5 = aws::to_hex(aws::md5("hello"));
  const auto messages = messages_of(
      R"({"Messages": [{"MessageId": "m1", "ReceiptHandle": "r1", "Body": "hello", "MD5OfBody": ")" +
      md5 + R"(", "Attributes": {"ApproximateReceiveCount": "2"}}]})");
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].body, "hello");
  EXPECT_EQ(messages[0].receive_count(), 2);
  EXPECT_TRUE(messages_of("{}").empty());
  EXPECT_TRUE(messages_of(R"({"Messages": null})").empty());

  expect_malformed(
      [] {
        messages_of(R"({"Messages": [{"MessageId": "m1", "ReceiptHandle": "r", "Body": "hellO",)"
                    R"( "MD5OfBody": "5d41402abc4b2a76b9719d911017c592"}]})");
      },
      receive_prefix, "message m1: body does not match its MD5OfBody");
}

TEST(SqsReceiveResponse, WrongTypesAndMissingFieldsAreNamed) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"Messages": 5})", "Messages is a number, expected an array"},
      {R"({"Messages": {"MessageId": "m"}})", "Messages is an object, expected an array"},
      {R"({"Messages": ["m"]})", "Messages[0] is a string, expected an object"},
      {R"({"Messages": [{"ReceiptHandle": "r", "Body": "b"}]})",
       "Messages[0].MessageId is missing"},
      {R"({"Messages": [{"MessageId": "m", "Body": "b"}]})",
       "Messages[0].ReceiptHandle is missing"},
      {R"({"Messages": [{"MessageId": "m", "ReceiptHandle": "r", "Body": 7}]})",
       "Messages[0].Body is a number, expected a string"},
      {R"({"Messages": [{"MessageId": "m", "ReceiptHandle": "r", "Body": "b", "MD5OfBody": 1}]})",
       "Messages[0].MD5OfBody is a number"},
      {R"({"Messages": [{"MessageId": "m", "ReceiptHandle": "r", "Body": "b", "Attributes": []}]})",
       "Messages[0].Attributes is an array, expected an object"},
      {R"({"Messages": [{"MessageId": "m", "ReceiptHandle": "r", "Body": "b",)"
       R"( "Attributes": {"ApproximateReceiveCount": 3}}]})",
       "Messages[0].Attributes.ApproximateReceiveCount is a number, expected a string"},
  };
  // A pair, not a structured binding: clang before 16 cannot capture one.
  for (const auto& each : cases)
    expect_unexpected([&] { messages_of(each.first); }, receive_prefix, each.second);
}

TEST(SqsBatchResponse, FailuresMapBackAndStrayIdsAreRefused) {
  auto batch = [](const std::string& body) {
    const auto response = make_response(body);
    const aws::response_origin origin{"sqs", "DeleteMessageBatch", "q", response};
    return aws::detail::sqs_read_batch(origin, aws::read_json_response(origin), 10, 13);
  };
  const auto failures = batch(
      R"({"Successful": [{"Id": "10"}], "Failed": [{"Id": "12", "Code": "ReceiptHandleIsInvalid",)"
      R"( "Message": "bad", "SenderFault": true}]})");
  ASSERT_EQ(failures.size(), 2u);
  EXPECT_EQ(failures[0].index, 12u);
  EXPECT_EQ(failures[0].code, "ReceiptHandleIsInvalid");
  EXPECT_TRUE(failures[0].sender_fault);
  // Entry 11 was in neither list: not taken for done.
  EXPECT_EQ(failures[1].index, 11u);
  EXPECT_EQ(failures[1].code, "MissingFromResponse");
  EXPECT_EQ(batch("{}").size(), 3u);

  const std::string prefix = "SQS DeleteMessageBatch q: ";
  expect_unexpected([&] { batch(R"({"Failed": [{"Id": "x"}]})"); }, prefix,
                    R"(Failed[0].Id "x" is not an entry of the batch)");
  expect_unexpected([&] { batch(R"({"Failed": [{"Id": "999"}]})"); }, prefix,
                    R"(Failed[0].Id "999" is not an entry)");
  expect_unexpected([&] { batch(R"({"Successful": [{"Id": "9"}]})"); }, prefix,
                    R"(Successful[0].Id "9" is not an entry)");
  expect_unexpected([&] { batch(R"({"Successful": [{}]})"); }, prefix,
                    "Successful[0].Id is missing");
  expect_unexpected([&] { batch(R"({"Failed": 1})"); }, prefix, "Failed is a number");
  expect_unexpected([&] { batch(R"({"Failed": [{"Id": "10", "SenderFault": "yes"}]})"); }, prefix,
                    "Failed[0].SenderFault is a string, expected a boolean");
}

namespace {

aws::response_origin dynamodb_origin(const aws::http_response& response, const char* operation) {
  return {"dynamodb", operation, "t", response};
}

}  // namespace

TEST(DynamoDbResponse, WrongTypesAreErrorsNotAbsentItems) {
  auto get = [](const std::string& body) {
    const auto response = make_response(body);
    const auto origin = dynamodb_origin(response, "GetItem");
    auto object = aws::read_json_response(origin);
    return aws::detail::dynamodb_read_get_item(origin, object);
  };
  EXPECT_FALSE(get("{}").has_value());
  EXPECT_TRUE(get(R"({"Item": {"id": {"S": "w"}}})").has_value());
  expect_unexpected([&] { get(R"({"Item": 5})"); },
                    "DynamoDB GetItem t: ", "Item is a number, expected an object");
  expect_malformed([&] { get(R"({"Item": {"id": {"S": )"); },
                   "DynamoDB GetItem t: ", "does not parse");

  auto scan = [](const std::string& body) {
    const auto response = make_response(body);
    const auto origin = dynamodb_origin(response, "Scan");
    auto object = aws::read_json_response(origin);
    return aws::detail::dynamodb_read_scan(origin, object);
  };
  const auto page =
      scan(R"({"Items": [{"id": {"S": "a"}}], "LastEvaluatedKey": {"id": {"S": "a"}}})");
  EXPECT_EQ(page.items.size(), 1u);
  EXPECT_TRUE(page.has_more());
  expect_unexpected([&] { scan("{}"); }, "DynamoDB Scan t: ", "Items is missing");
  expect_unexpected([&] { scan(R"({"Items": {}})"); }, "DynamoDB Scan t: ", "Items is an object");
  expect_unexpected([&] { scan(R"({"Items": [{}, 3]})"); },
                    "DynamoDB Scan t: ", "Items[1] is a number, expected an object");
  expect_unexpected([&] { scan(R"({"Items": [], "LastEvaluatedKey": "k"})"); },
                    "DynamoDB Scan t: ", "LastEvaluatedKey is a string");

  auto described = [](const std::string& body) {
    const auto response = make_response(body);
    const auto origin = dynamodb_origin(response, "DescribeTable");
    auto object = aws::read_json_response(origin);
    return aws::detail::dynamodb_read_object(origin, object, "Table");
  };
  expect_unexpected([&] { described("{}"); }, "DynamoDB DescribeTable t: ", "Table is missing");
  expect_unexpected([&] { described(R"({"Table": []})"); },
                    "DynamoDB DescribeTable t: ", "Table is an array");

  const auto written = make_response(R"({"Attributes": "old"})");
  const auto origin = dynamodb_origin(written, "DeleteItem");
  auto object = aws::read_json_response(origin);
  expect_unexpected([&] { aws::detail::dynamodb_read_write(origin, object); },
                    "DynamoDB DeleteItem t: ", "Attributes is a string");
}
