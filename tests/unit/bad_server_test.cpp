// Fault injection: service_client, s3_client, sqs_client and dynamodb_client
// against a loopback server (tests/support/loopback_http_server.hpp) that
// answers with broken, foreign, oversized or never-ending responses. Each
// case checks the error's type and message, how many attempts were made,
// and that the call ended in bounded time. Retries do not sleep here (the
// retry environment's sleep is a no-op); the policy itself is retry_test's.
#include "widget_consumer/aws/client.hpp"

#include "widget_consumer/aws/crypto.hpp"
#include "widget_consumer/aws/dynamodb.hpp"
#include "widget_consumer/aws/s3.hpp"
#include "widget_consumer/aws/sqs.hpp"

#include "support/loopback_http_server.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace aws = widget_consumer::aws;
using widget_consumer::testing::http_reply;
using widget_consumer::testing::loopback_http_server;
using widget_consumer::testing::received_http_request;
using widget_consumer::testing::scripted_reply;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t test_body_limit = std::size_t{1} << 20;

aws::client_config config_for(const loopback_http_server& server, int attempts = 3) {
  aws::client_config config;
  config.region = "us-east-1";
  config.endpoint = server.endpoint();
  config.max_attempts = attempts;
  config.http.connect_timeout = 1000ms;
  config.http.total_timeout = 1500ms;
  config.http.max_response_bytes = test_body_limit;
  config.credentials = [] { return aws::credentials{"AKIDEXAMPLE", "secret", {}, {}}; };
  config.retry_env = aws::retry_environment{[] { return std::chrono::system_clock::now(); },
                                            [] { return 0.5; }, [](std::chrono::milliseconds) {}};
  return config;
}

// The same reply to every request.
loopback_http_server always(scripted_reply reply) {
  return loopback_http_server([reply](const received_http_request&) { return reply; });
}
scripted_reply reply(int status, const std::string& body, const std::string& extra = {}) {
  return {.bytes = http_reply(status, body, extra)};
}
// A 200 whose body ends where the connection closes: nothing tells curl it
// is incomplete.
scripted_reply cut_at_close(const std::string& body) {
  return {.bytes = "HTTP/1.1 200 X\r\nConnection: close\r\n\r\n" + body, .close = true};
}

const std::string listing =
    "<ListBucketResult><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>"
    "<Contents><Key>1612306368338</Key></Contents></ListBucketResult>";

// Runs `call`, expects it to throw E, returns the exception's what() and
// checks the call took less than `limit`.
template <class E, class Call>
E expect_throw(Call call, std::chrono::milliseconds limit = 3000ms) {
  const auto start = std::chrono::steady_clock::now();
  try {
    call();
  } catch (const E& e) {
    EXPECT_LT(std::chrono::steady_clock::now() - start, limit) << e.what();
    return e;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "other exception: " << e.what();
    throw;
  }
  ADD_FAILURE() << "no exception";
  throw std::logic_error("no exception");
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST(BadServerS3, ConnectionDyingMidBodyIsRetried) {
  // Content-Length promises more than comes: curl sees the cut.
  auto server = always(
      {.bytes = "HTTP/1.1 200 X\r\nContent-Length: 500\r\n\r\n<ListBucketResult>", .close = true});
  aws::s3_client s3(config_for(server));
  const auto e = expect_throw<aws::transport_error>([&] { s3.list_objects_v2("b"); });
  EXPECT_TRUE(e.retryable());
  EXPECT_TRUE(contains(e.what(), "GET http://127.0.0.1:")) << e.what();
  EXPECT_EQ(server.requests(), 3);
}

TEST(BadServerS3, BodyCutAtCloseIsRetriedThenSucceeds) {
  std::atomic<int> calls{0};
  loopback_http_server server([&](const received_http_request&) {
    return ++calls == 1 ? cut_at_close(listing.substr(0, 40)) : reply(200, listing);
  });
  aws::s3_client s3(config_for(server));
  EXPECT_EQ(s3.list_objects_v2("b").keys, (std::vector<std::string>{"1612306368338"}));
  EXPECT_EQ(server.requests(), 2);
}

TEST(BadServerS3, BodyAlwaysCutEndsAsMalformed) {
  auto server = always(cut_at_close(listing.substr(0, 40)));
  aws::s3_client s3(config_for(server));
  const auto e = expect_throw<aws::transport_error>([&] { s3.list_objects_v2("b"); });
  EXPECT_EQ(e.failure(), aws::transport_error::kind::malformed);
  EXPECT_EQ(std::string(e.what()).rfind("S3 ListObjectsV2 s3://b: malformed XML", 0), 0u)
      << e.what();
  EXPECT_EQ(server.requests(), 3);
}

TEST(BadServerS3, ForeignDocumentsFailAtOnce) {
  const std::vector<std::pair<scripted_reply, std::string>> cases = {
      {reply(200, "<html><body>Welcome to the proxy</body></html>", "Content-Type: text/html\r\n"),
       "an HTML page instead of <ListBucketResult> XML"},
      {reply(200, listing, "Content-Type: text/html\r\n"), "an HTML page"},
      {reply(200, R"({"Contents": []})"), "JSON instead of <ListBucketResult> XML"},
      {reply(200, "<ListAllMyBucketsResult/>"), "<ListAllMyBucketsResult> instead of"},
      {reply(200, "<ListBucketResult/>"), "<IsTruncated> is missing"},
  };
  for (const auto& [answer, problem] : cases) {
    auto server = always(answer);
    aws::s3_client s3(config_for(server));
    const auto e = expect_throw<aws::service_error>([&] { s3.list_objects_v2("b"); });
    EXPECT_EQ(e.code(), "UnexpectedResponse");
    EXPECT_EQ(e.status(), 200);
    EXPECT_TRUE(contains(e.what(), "S3 ListObjectsV2 s3://b: 200 UnexpectedResponse: " + problem))
        << e.what();
    EXPECT_EQ(server.requests(), 1) << problem;
  }
}

TEST(BadServerS3, HtmlErrorPageIsJudgedByItsStatus) {
  auto server = always(reply(502, "<html><body>Bad Gateway</body></html>"));
  aws::s3_client s3(config_for(server));
  const auto e = expect_throw<aws::service_error>([&] { s3.get_object("b", "k"); });
  EXPECT_EQ(e.code(), "HTTP 502");
  EXPECT_TRUE(e.retryable());
  EXPECT_EQ(server.requests(), 3);
}

TEST(BadServerS3, ErrorInA200IsRetriedLikeA500) {
  auto server = always(reply(200, "<Error><Code>InternalError</Code><Message>m</Message></Error>"));
  aws::s3_client s3(config_for(server));
  const auto e = expect_throw<aws::service_error>([&] { s3.copy_object("a", "k", "b", "k"); });
  EXPECT_EQ(e.code(), "InternalError");
  EXPECT_EQ(e.status(), 500);
  EXPECT_EQ(server.requests(), 3);
  auto deletes = always(reply(200, "<Error><Code>AccessDenied</Code></Error>"));
  aws::s3_client s3_deletes(config_for(deletes, 1));
  const std::vector<std::string> keys{"a"};
  EXPECT_EQ(expect_throw<aws::service_error>([&] { s3_deletes.delete_objects("b", keys); }).code(),
            "AccessDenied");
}

TEST(BadServerS3, EmptyDeleteResultIsRetried) {
  auto server = always(reply(200, ""));
  aws::s3_client s3(config_for(server, 2));
  const std::vector<std::string> keys{"a", "b"};
  const auto e = expect_throw<aws::transport_error>([&] { s3.delete_objects("b", keys); });
  EXPECT_TRUE(contains(e.what(), "S3 DeleteObjects s3://b: empty body instead of <DeleteResult>"))
      << e.what();
  EXPECT_EQ(server.requests(), 2);
}

TEST(BadServerHttp, AnnouncedOversizeIsRefusedBeforeTheBody) {
  auto server =
      always({.bytes = "HTTP/1.1 200 X\r\nContent-Length: 107374182400\r\n\r\n", .hold = true});
  aws::s3_client s3(config_for(server));
  const auto e = expect_throw<aws::transport_error>([&] { s3.get_object("b", "k"); }, 1000ms);
  EXPECT_EQ(e.failure(), aws::transport_error::kind::too_large);
  EXPECT_FALSE(e.retryable());
  EXPECT_TRUE(contains(e.what(), "Content-Length 107374182400 over the limit of 1048576 bytes"))
      << e.what();
  EXPECT_EQ(server.requests(), 1);
}

TEST(BadServerHttp, StreamedOversizeIsCutAtTheLimit) {
  // No Content-Length: the size shows only while the body streams in.
  auto server = always({.bytes = "HTTP/1.1 200 X\r\nConnection: close\r\n\r\n",
                        .filler = 8 * test_body_limit,
                        .close = true});
  aws::s3_client s3(config_for(server));
  const auto e = expect_throw<aws::transport_error>([&] { s3.get_object("b", "k"); }, 1000ms);
  EXPECT_EQ(e.failure(), aws::transport_error::kind::too_large);
  EXPECT_TRUE(contains(e.what(), "response body larger than the limit of 1048576 bytes"))
      << e.what();
  EXPECT_EQ(server.requests(), 1);
  // A body right at the limit is fine.
  auto exact = always(reply(200, std::string(test_body_limit, 'y')));
  aws::s3_client s3_exact(config_for(exact));
  EXPECT_EQ(s3_exact.get_object("b", "k")->size(), test_body_limit);
}

TEST(BadServerHttp, EndlessHeadersAreCut) {
  std::string head = "HTTP/1.1 200 X\r\n";
  for (int i = 0; i < 20'000; ++i)
    head += "X-Pad: 0123456789012345678901234567890123456789012345678901234567890123\r\n";
  auto server = always({head + "Content-Length: 0\r\n\r\n"});
  aws::service_client client("s3", config_for(server, 1));
  // curl may refuse such a header block itself before our limit does.
  expect_throw<aws::transport_error>([&] {
    client.send({"GET", server.endpoint() + "/b", {}, {}}, "ListObjectsV2", "s3://b");
  });
  EXPECT_EQ(server.requests(), 1);
}

TEST(BadServerHttp, SilentServerTimesOutAndIsRetried) {
  auto server =
      always({.bytes = "HTTP/1.1 200 X\r\nContent-Length: 100\r\n\r\n<List", .hold = true});
  auto config = config_for(server, 2);
  config.http.total_timeout = 300ms;
  aws::s3_client s3(config);
  const auto e = expect_throw<aws::transport_error>([&] { s3.list_objects_v2("b"); }, 2000ms);
  EXPECT_TRUE(e.timeout()) << e.what();
  EXPECT_EQ(server.requests(), 2);
}

namespace {

const std::string queue_path = "/123456789012/q";

std::string message_json(const std::string& body, const std::string& md5) {
  return R"({"MessageId": "m1", "ReceiptHandle": "r1", "Body": ")" + body + R"(", "MD5OfBody": ")" +
         md5 + R"("})";
}

}  // namespace

TEST(BadServerSqs, WrongMd5IsRetriedAndNeverApplied) {
  std::atomic<int> calls{0};
  loopback_http_server server([&](const received_http_request&) {
    const std::string md5 = aws::to_hex(aws::md5("good"));
    const auto body = ++calls == 1 ? message_json("evil", md5) : message_json("good", md5);
    return reply(200, R"({"Messages": [)" + body + "]}");
  });
  aws::sqs_client sqs(config_for(server));
  const auto messages = sqs.receive_message(server.endpoint() + queue_path);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].body, "good");
  EXPECT_EQ(server.requests(), 2);

  auto always_bad = always(reply(200, R"({"Messages": [)" + message_json("x", "00") + "]}"));
  aws::sqs_client bad(config_for(always_bad));
  const auto e = expect_throw<aws::transport_error>(
      [&] { bad.receive_message(always_bad.endpoint() + queue_path); });
  EXPECT_TRUE(contains(e.what(), "SQS ReceiveMessage " + always_bad.endpoint() + queue_path +
                                     ": message m1: body does not match its MD5OfBody"))
      << e.what();
  EXPECT_EQ(always_bad.requests(), 3);
}

TEST(BadServerSqs, WrongTypesFailAtOnceAndNameTheField) {
  const std::vector<std::pair<scripted_reply, std::string>> cases = {
      {reply(200, R"({"Messages": 5})"), "Messages is a number, expected an array"},
      {reply(200, R"({"Messages": [{"MessageId": "m"}]})"), "Messages[0].ReceiptHandle is missing"},
      {reply(200, "<ReceiveMessageResponse><ReceiveMessageResult/></ReceiveMessageResponse>",
             "Content-Type: text/xml\r\n"),
       "XML instead of JSON"},
      {reply(200, "<!doctype html><title>Login</title>"), "an HTML page instead of JSON"},
      {reply(200, "[]"), "JSON that is an array, not an object"},
  };
  for (const auto& [answer, problem] : cases) {
    auto server = always(answer);
    aws::sqs_client sqs(config_for(server));
    const auto e = expect_throw<aws::service_error>(
        [&] { sqs.receive_message(server.endpoint() + queue_path); });
    EXPECT_EQ(e.code(), "UnexpectedResponse");
    EXPECT_TRUE(contains(e.what(), problem)) << e.what();
    EXPECT_EQ(server.requests(), 1) << problem;
  }
}

TEST(BadServerSqs, EmptyAnswerIsNoMessagesTruncatedIsRetried) {
  auto empty = always(reply(200, ""));
  aws::sqs_client sqs(config_for(empty));
  EXPECT_TRUE(sqs.receive_message(empty.endpoint() + queue_path).empty());

  auto cut = always(cut_at_close(R"({"Messages": [{"MessageId": "m1", "Rece)"));
  aws::sqs_client cut_sqs(config_for(cut));
  const auto e = expect_throw<aws::transport_error>(
      [&] { cut_sqs.receive_message(cut.endpoint() + queue_path); });
  EXPECT_EQ(e.failure(), aws::transport_error::kind::malformed);
  EXPECT_TRUE(contains(e.what(), "JSON that does not parse")) << e.what();
  EXPECT_EQ(cut.requests(), 3);
}

TEST(BadServerSqs, BatchEntriesMissingFromTheAnswerAreFailures) {
  auto server = always(reply(200, R"({"Successful": [{"Id": "0"}]})"));
  aws::sqs_client sqs(config_for(server));
  const std::vector<std::string> receipts{"r0", "r1"};
  const auto failures = sqs.delete_message_batch(server.endpoint() + queue_path, receipts);
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].index, 1u);
  EXPECT_EQ(failures[0].code, "MissingFromResponse");

  auto stray = always(reply(200, R"({"Failed": [{"Id": "7", "Code": "X"}]})"));
  aws::sqs_client stray_sqs(config_for(stray));
  const auto e = expect_throw<aws::service_error>(
      [&] { stray_sqs.delete_message_batch(stray.endpoint() + queue_path, receipts); });
  EXPECT_TRUE(contains(e.what(), R"(Failed[0].Id "7" is not an entry of the batch)")) << e.what();
}

// A delete retried after a 500 may find its message deleted by the first
// attempt, which ElasticMQ answers with ReceiptHandleIsInvalid: the failure
// says that it came after an attempt that may have taken effect, so the
// settler can take it for done (source/detail/sqs_settlement.hpp). After a
// throttled attempt, which SQS turned away, it does not.
TEST(BadServerSqs, ARetryAfterA500SaysTheEntryMayBeDoneAlready) {
  const std::string invalid =
      R"({"Failed": [{"Id": "0", "Code": "ReceiptHandleIsInvalid", "SenderFault": true}]})";
  const auto answers = [&](scripted_reply first) {
    auto calls = std::make_shared<std::atomic<int>>(0);
    return loopback_http_server(
        [=](const received_http_request&) { return ++*calls == 1 ? first : reply(200, invalid); });
  };
  const std::vector<std::string> receipts{"r0"};

  auto after_500 = answers(reply(500, R"({"__type": "InternalError", "message": "m"})"));
  aws::sqs_client sqs(config_for(after_500));
  auto failures = sqs.delete_message_batch(after_500.endpoint() + queue_path, receipts);
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].code, "ReceiptHandleIsInvalid");
  EXPECT_TRUE(failures[0].after_unknown_outcome);
  EXPECT_EQ(after_500.requests(), 2);

  auto after_throttle =
      answers(reply(400, R"({"__type": "com.amazonaws.sqs#RequestThrottled", "message": "m"})"));
  aws::sqs_client throttled(config_for(after_throttle));
  failures = throttled.delete_message_batch(after_throttle.endpoint() + queue_path, receipts);
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_FALSE(failures[0].after_unknown_outcome);
  EXPECT_EQ(after_throttle.requests(), 2);

  auto first_answer = always(reply(200, invalid));
  aws::sqs_client plain(config_for(first_answer));
  failures = plain.delete_message_batch(first_answer.endpoint() + queue_path, receipts);
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_FALSE(failures[0].after_unknown_outcome);
}

// A FIFO receive retried after a 500 carries the same ReceiveRequestAttemptId,
// so SQS hands the retry the messages the lost answer held.
TEST(BadServerSqs, AReceiveRetriedKeepsItsAttemptId) {
  std::mutex mutex;
  std::vector<std::string> bodies;
  loopback_http_server server([&](const received_http_request& request) {
    std::lock_guard lock(mutex);
    bodies.push_back(request.body);
    return bodies.size() == 1 ? reply(500, R"({"__type": "InternalError", "message": "m"})")
                              : reply(200, R"({"Messages": []})");
  });
  aws::sqs_client sqs(config_for(server));
  aws::sqs_receive_options options;
  options.receive_request_attempt_id = "attempt-1";
  EXPECT_TRUE(sqs.receive_message(server.endpoint() + queue_path, options).empty());
  std::lock_guard lock(mutex);
  ASSERT_EQ(bodies.size(), 2u);
  for (const auto& body : bodies)
    EXPECT_TRUE(contains(body, R"("ReceiveRequestAttemptId":"attempt-1")")) << body;
}

TEST(BadServerDynamoDb, WrongItemTypeIsAnErrorNotAMissingItem) {
  auto server =
      always(reply(200, R"({"Item": 5})", "Content-Type: application/x-amz-json-1.0\r\n"));
  aws::dynamodb_client dynamodb(config_for(server));
  const auto e = expect_throw<aws::service_error>([&] {
    dynamodb.get_item("widgets", {{"Key", {{"id", {{"S", "w"}}}}}});
  });
  EXPECT_TRUE(contains(e.what(),
                       "DynamoDB GetItem widgets: 200 UnexpectedResponse: Item is a "
                       "number, expected an object"))
      << e.what();
  EXPECT_EQ(server.requests(), 1);
}

TEST(BadServerDynamoDb, ConnectionDyingMidJsonIsRetried) {
  auto server =
      always({.bytes = "HTTP/1.1 200 X\r\nContent-Length: 64\r\n\r\n{\"Items\": [", .close = true});
  aws::dynamodb_client dynamodb(config_for(server));
  const auto e = expect_throw<aws::transport_error>([&] { dynamodb.scan("widgets"); });
  EXPECT_TRUE(e.retryable());
  EXPECT_EQ(server.requests(), 3);
}

TEST(BadServerDynamoDb, ThrottlingPageThenGoodAnswer) {
  std::atomic<int> calls{0};
  loopback_http_server server([&](const received_http_request&) {
    if (++calls == 1)
      return reply(400, R"({"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException"})");
    return reply(200, R"({"Items": [], "Count": 0})");
  });
  aws::dynamodb_client dynamodb(config_for(server));
  EXPECT_FALSE(dynamodb.scan("widgets").has_more());
  EXPECT_EQ(server.requests(), 2);
}
