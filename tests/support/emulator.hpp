#pragma once
// Where the integration tests find the local AWS servers that the CTest
// fixtures (scripts/emulators) started: WIDGET_CONSUMER_EMULATOR_STATE names
// the state folder holding moto.url, moto-iam.url, moto-iam.credentials,
// s3rver.url and elasticmq.url.

#include <widget_consumer/aws/client.hpp>

#include <gtest/gtest.h>

#include <unistd.h>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace widget_consumer::testing {

struct emulator {
  std::string endpoint;           // http://127.0.0.1:PORT
  std::string access_key_id;      // "testing" for the plain instance
  std::string secret_access_key;  // the IAM user's key for the IAM instance
  std::string region = "us-east-1";
  std::string role_arn = {};  // IAM instance: a role the user (and the role) may assume
};

inline std::string emulator_state_dir() {
  const char* dir = std::getenv("WIDGET_CONSUMER_EMULATOR_STATE");
  if (dir == nullptr || *dir == '\0')
    throw std::runtime_error(
        "WIDGET_CONSUMER_EMULATOR_STATE is not set: run integration tests through ctest, "
        "which starts the local AWS servers");
  return dir;
}

inline std::string read_first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line))
    throw std::runtime_error("cannot read " + path);
  return line;
}

// The instance that accepts any signature.
inline emulator plain_emulator() {
  return {read_first_line(emulator_state_dir() + "/moto.url"), "testing", "testing"};
}

// The instance in IAM mode: it verifies every SigV4 signature against the key
// of the IAM user scripts/emulator_iam_user.py created.
inline emulator iam_emulator() {
  const std::string dir = emulator_state_dir();
  emulator result{read_first_line(dir + "/moto-iam.url"), {}, {}};
  std::ifstream in(dir + "/moto-iam.credentials");
  for (std::string line; std::getline(in, line);) {
    const auto eq = line.find('=');
    if (eq == std::string::npos)
      continue;
    const auto key = line.substr(0, eq);
    if (key == "AWS_ACCESS_KEY_ID")
      result.access_key_id = line.substr(eq + 1);
    if (key == "AWS_SECRET_ACCESS_KEY")
      result.secret_access_key = line.substr(eq + 1);
    if (key == "ROLE_ARN")
      result.role_arn = line.substr(eq + 1);
  }
  if (result.access_key_id.empty())
    throw std::runtime_error("no IAM credentials in " + dir);
  return result;
}

// s3rver (S3 only), a second S3 implementation: it knows the one key
// S3RVER / S3RVER and checks signatures made with it.
inline emulator s3rver_emulator() {
  return {read_first_line(emulator_state_dir() + "/s3rver.url"), "S3RVER", "S3RVER"};
}

// ElasticMQ (SQS only), a second SQS implementation: it accepts any key and
// checks no signature, but keeps AWS's limits (sqs-limits = strict).
inline emulator elasticmq_emulator() {
  return {read_first_line(emulator_state_dir() + "/elasticmq.url"), "testing", "testing"};
}

// A server by the name a parameterized test gives it (and puts in the test's
// name): "plain", "iam", "s3rver" or "elasticmq".
inline emulator emulator_named(std::string_view name) {
  if (name == "plain")
    return plain_emulator();
  if (name == "iam")
    return iam_emulator();
  if (name == "s3rver")
    return s3rver_emulator();
  if (name == "elasticmq")
    return elasticmq_emulator();
  throw std::invalid_argument("no local server named " + std::string(name));
}

// A client configuration that signs with the server's key.
inline aws::client_config client_config_for(const emulator& server) {
  aws::client_config config;
  config.region = server.region;
  config.endpoint = server.endpoint;
  config.credentials = [server] {
    aws::credentials keys;
    keys.access_key_id = server.access_key_id;
    keys.secret_access_key = server.secret_access_key;
    return keys;
  };
  return config;
}

// Tests run in parallel against one server: every test names its buckets,
// queues and tables with this, so no two tests share one.
inline std::string unique_name(const std::string& prefix) {
  static std::atomic<int> counter{0};
  const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  return prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(now % 1000000007) + "-" +
         std::to_string(counter++);
}

}  // namespace widget_consumer::testing
