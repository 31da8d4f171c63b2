#include "widget_consumer/aws/client.hpp"

#include "support/emulator.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace aws = widget_consumer::aws;
using widget_consumer::testing::emulator;

namespace {

aws::client_config config_for(const emulator& server, std::string secret) {
  aws::client_config config;
  config.region = server.region;
  config.endpoint = server.endpoint;
  config.credentials = [id = server.access_key_id, secret = std::move(secret)] {
    return aws::credentials{id, secret, {}, {}};
  };
  return config;
}

aws::http_request list_buckets_request(const aws::client_config& config) {
  return {"GET", config.endpoint + "/", {}, {}};
}

}  // namespace

TEST(ServiceClientIam, SignedListBucketsSucceeds) {
  const auto server = widget_consumer::testing::iam_emulator();
  aws::service_client s3("s3", config_for(server, server.secret_access_key));
  const auto response = s3.send(list_buckets_request(s3.config()), "ListBuckets", "s3://");
  EXPECT_EQ(response.status, 200);
  EXPECT_NE(response.body.find("ListAllMyBucketsResult"), std::string::npos);
  const auto doc = aws::xml_document::parse(response.body);
  EXPECT_EQ(doc.root().name(), "ListAllMyBucketsResult");
}

TEST(ServiceClientIam, ListBucketsWithWrongSecretNamesTheCode) {
  const auto server = widget_consumer::testing::iam_emulator();
  aws::service_client s3("s3", config_for(server, "not-the-secret"));
  try {
    s3.send(list_buckets_request(s3.config()), "ListBuckets", "s3://");
    FAIL() << "a wrong secret was accepted";
  } catch (const aws::service_error& e) {
    EXPECT_EQ(e.status(), 403);
    EXPECT_EQ(e.code(), "SignatureDoesNotMatch") << e.what();
    EXPECT_FALSE(e.retryable());
    EXPECT_EQ(std::string(e.what()).rfind("S3 ListBuckets s3://: 403 SignatureDoesNotMatch", 0), 0u)
        << e.what();
    EXPECT_EQ(std::string(e.what()).find("not-the-secret"), std::string::npos);
  }
  // A signature error with agreeing clocks is not retried and costs no quota.
  EXPECT_EQ(s3.retries().quota().available(), aws::retry_quota::initial_tokens);
}

TEST(ServiceClientIam, DynamoDbListTablesSucceeds) {
  const auto server = widget_consumer::testing::iam_emulator();
  aws::service_client dynamodb("dynamodb", config_for(server, server.secret_access_key));
  const auto result = dynamodb.call_json("DynamoDB_20120810", "ListTables", {}, "");
  ASSERT_TRUE(result.is_object());
  EXPECT_TRUE(result.as_object().contains("TableNames")) << result;
}

TEST(ServiceClientIam, DynamoDbWithWrongSecretNamesTheCode) {
  const auto server = widget_consumer::testing::iam_emulator();
  aws::service_client dynamodb("dynamodb", config_for(server, "not-the-secret"));
  try {
    dynamodb.call_json("DynamoDB_20120810", "ListTables", {}, "");
    FAIL() << "a wrong secret was accepted";
  } catch (const aws::service_error& e) {
    EXPECT_EQ(e.service(), "dynamodb");
    EXPECT_EQ(e.operation(), "ListTables");
    EXPECT_GE(e.status(), 400);
    EXPECT_LT(e.status(), 500);
    // AWS says InvalidSignatureException in JSON, moto SignatureDoesNotMatch in XML.
    EXPECT_TRUE(e.code() == "SignatureDoesNotMatch" || e.code() == "InvalidSignatureException")
        << e.what();
    EXPECT_FALSE(e.retryable());
    EXPECT_EQ(std::string(e.what()).rfind("DynamoDB ListTables: ", 0), 0u) << e.what();
  }
}

TEST(ServiceClientPlain, JsonErrorIsParsed) {
  const auto server = widget_consumer::testing::plain_emulator();
  aws::service_client dynamodb("dynamodb", config_for(server, server.secret_access_key));
  const auto table = widget_consumer::testing::unique_name("missing");
  try {
    dynamodb.call_json("DynamoDB_20120810", "DescribeTable", {{"TableName", table}}, table);
    FAIL() << "a missing table was described";
  } catch (const aws::service_error& e) {
    EXPECT_EQ(e.status(), 400);
    EXPECT_EQ(e.code(), "ResourceNotFoundException") << e.what();
    EXPECT_EQ(e.resource(), table);
  }
}

TEST(ServiceClientPlain, S3XmlErrorIsParsed) {
  const auto server = widget_consumer::testing::plain_emulator();
  aws::service_client s3("s3", config_for(server, server.secret_access_key));
  const auto bucket = widget_consumer::testing::unique_name("missing");
  try {
    s3.send({"GET", server.endpoint + "/" + bucket + "/some-key", {}, {}}, "GetObject",
            "s3://" + bucket + "/some-key");
    FAIL() << "a missing bucket was read";
  } catch (const aws::service_error& e) {
    EXPECT_EQ(e.status(), 404);
    EXPECT_EQ(e.code(), "NoSuchBucket") << e.what();
    EXPECT_FALSE(e.message().empty());
  }
}

TEST(ServiceClientPlain, PutThenGetObjectThroughManyThreads) {
  const auto server = widget_consumer::testing::plain_emulator();
  aws::service_client s3("s3", config_for(server, server.secret_access_key));
  const auto bucket = widget_consumer::testing::unique_name("client");
  s3.send({"PUT", server.endpoint + "/" + bucket, {}, {}}, "CreateBucket", "s3://" + bucket);

  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) {
        const std::string key = "k" + std::to_string(t) + "-" + std::to_string(i);
        const std::string body = "body of " + key;
        s3.send({"PUT",
                 server.endpoint + "/" + bucket + "/" + key,
                 {{"Content-Type", "application/octet-stream"}},
                 body},
                "PutObject", "s3://" + bucket + "/" + key);
        const auto got = s3.send({"GET", server.endpoint + "/" + bucket + "/" + key, {}, {}},
                                 "GetObject", "s3://" + bucket + "/" + key);
        if (got.body == body)
          ++ok;
      }
    });
  for (auto& thread : threads)
    thread.join();
  EXPECT_EQ(ok.load(), 40);
}

TEST(ServiceClientPlain, ConnectionErrorsAreRetriedThenThrown) {
  auto config = config_for(widget_consumer::testing::plain_emulator(), "testing");
  config.endpoint = "http://127.0.0.1:1";  // nothing listens on port 1
  config.max_attempts = 2;
  aws::service_client sqs("sqs", config);
  try {
    sqs.call_json("AmazonSQS", "ListQueues", {}, "");
    FAIL() << "connected to port 1";
  } catch (const aws::transport_error& e) {
    EXPECT_EQ(e.failure(), aws::transport_error::kind::connect) << e.what();
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:1"), std::string::npos) << e.what();
  }
  // One retry after a connection error costs 10 tokens.
  EXPECT_EQ(sqs.retries().quota().available(), aws::retry_quota::initial_tokens - 10);
}

TEST(ServiceClientPlain, SqsJsonProtocolRoundTrip) {
  const auto server = widget_consumer::testing::plain_emulator();
  aws::service_client sqs("sqs", config_for(server, server.secret_access_key));
  const auto name = widget_consumer::testing::unique_name("client");
  const auto created = sqs.call_json("AmazonSQS", "CreateQueue", {{"QueueName", name}}, name);
  const auto url = std::string(created.at("QueueUrl").as_string());
  sqs.call_json("AmazonSQS", "SendMessage", {{"QueueUrl", url}, {"MessageBody", "{}"}}, name);
  const auto received = sqs.call_json("AmazonSQS", "ReceiveMessage",
                                      {{"QueueUrl", url}, {"MaxNumberOfMessages", 1}}, name);
  ASSERT_EQ(received.at("Messages").as_array().size(), 1u);
  EXPECT_EQ(received.at("Messages").at(0).at("Body").as_string(), "{}");
  try {
    sqs.call_json("AmazonSQS", "GetQueueUrl", {{"QueueName", name + "-missing"}}, name);
    FAIL();
  } catch (const aws::service_error& e) {
    EXPECT_EQ(e.status(), 400);
    // The JSON protocol's own code; AWS adds the query protocol's
    // (AWS.SimpleQueueService.NonExistentQueue) only in x-amzn-query-error.
    EXPECT_TRUE(e.code() == "QueueDoesNotExist" || e.code().ends_with("NonExistentQueue"))
        << e.what();
  }
}
