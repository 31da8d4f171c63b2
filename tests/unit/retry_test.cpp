#include "widget_consumer/aws/retry.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

namespace aws = widget_consumer::aws;
using namespace std::chrono_literals;
using time_point = std::chrono::system_clock::time_point;

namespace {

// A fake world: a fixed clock, a scripted random source, and a sleep that
// only records what it was asked.
struct fake_world {
  time_point now = time_point{} + std::chrono::hours{24 * 365 * 50};
  double random = 1.0;
  std::vector<std::chrono::milliseconds> sleeps;

  aws::retry_environment environment() {
    return {[this] { return now; }, [this] { return random; },
            [this](std::chrono::milliseconds d) { sleeps.push_back(d); }};
  }
};

aws::service_error error(long status, std::string code,
                         std::optional<time_point> server_time = std::nullopt) {
  aws::service_error::details d;
  d.service = "s3";
  d.operation = "GetObject";
  d.status = status;
  d.code = std::move(code);
  d.server_time = server_time;
  return aws::service_error(std::move(d));
}

aws::transport_error timeout() {
  return aws::transport_error(aws::transport_error::kind::timeout, "GET http://h: timed out");
}

}  // namespace

TEST(Retry, BackoffIsFullJitterExponentialCappedAt20Seconds) {
  fake_world world;
  aws::retry_strategy retry(10, world.environment());
  world.random = 1.0;
  EXPECT_EQ(retry.backoff(1), 1000ms);
  EXPECT_EQ(retry.backoff(2), 2000ms);
  EXPECT_EQ(retry.backoff(3), 4000ms);
  EXPECT_EQ(retry.backoff(5), 16000ms);
  EXPECT_EQ(retry.backoff(6), 20000ms);
  EXPECT_EQ(retry.backoff(1000), 20000ms);
  world.random = 0.5;
  EXPECT_EQ(retry.backoff(1), 500ms);
  EXPECT_EQ(retry.backoff(3), 2000ms);
  world.random = 0.0;
  EXPECT_EQ(retry.backoff(4), 0ms);
  world.random = 7.0;  // a broken random source cannot exceed the bound
  EXPECT_EQ(retry.backoff(1), 1000ms);
}

TEST(Retry, SucceedsAfterTransientFailures) {
  fake_world world;
  world.random = 0.25;
  aws::retry_strategy retry(3, world.environment());
  int calls = 0;
  const int result = retry.run([&](time_point) {
    if (++calls < 3)
      throw error(503, "HTTP 503");
    return 42;
  });
  EXPECT_EQ(result, 42);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(world.sleeps, (std::vector<std::chrono::milliseconds>{250ms, 500ms}));
  // Two retries cost 5 each; the success refunds the last one.
  EXPECT_EQ(retry.quota().available(), 500 - 10 + 5);
}

TEST(Retry, GivesUpAfterMaxAttemptsAndRethrowsTheLastError) {
  fake_world world;
  aws::retry_strategy retry(3, world.environment());
  int calls = 0;
  try {
    retry.run([&](time_point) -> int {
      ++calls;
      throw error(500, "InternalError");
    });
    FAIL();
  } catch (const aws::service_error& e) {
    EXPECT_EQ(e.code(), "InternalError");
  }
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(world.sleeps.size(), 2u);
}

TEST(Retry, NonRetryableErrorsAreNotRetried) {
  fake_world world;
  aws::retry_strategy retry(3, world.environment());
  // A pair, not a structured binding: clang before 16 cannot capture one.
  for (const auto& failure :
       std::vector<std::pair<long, std::string>>{{403, "AccessDenied"},
                                                 {404, "NoSuchKey"},
                                                 {400, "ConditionalCheckFailedException"},
                                                 {400, "ValidationException"},
                                                 {501, "NotImplemented"}}) {
    int calls = 0;
    EXPECT_THROW(retry.run([&](time_point) -> int {
      ++calls;
      throw error(failure.first, failure.second);
    }),
                 aws::service_error);
    EXPECT_EQ(calls, 1) << failure.second;
  }
  EXPECT_TRUE(world.sleeps.empty());
  EXPECT_EQ(retry.quota().available(), 500);
}

TEST(Retry, WhichErrorsRetry) {
  for (const char* code :
       {"Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
        "TooManyRequestsException", "ProvisionedThroughputExceededException",
        "TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
        "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
        "EC2ThrottledException", "RequestTimeout", "RequestTimeoutException", "InternalError"}) {
    EXPECT_TRUE(error(400, code).retryable()) << code;
  }
  for (long status : {500L, 502L, 503L, 504L, 429L})
    EXPECT_TRUE(error(status, "HTTP " + std::to_string(status)).retryable()) << status;
  for (long status : {400L, 401L, 403L, 404L, 409L, 501L})
    EXPECT_FALSE(error(status, "HTTP " + std::to_string(status)).retryable()) << status;
  EXPECT_TRUE(timeout().retryable());
  EXPECT_FALSE(aws::transport_error(aws::transport_error::kind::permanent, "bad cert").retryable());
}

TEST(Retry, TransportErrorsCostTenAndPermanentOnesAreNotRetried) {
  fake_world world;
  aws::retry_strategy retry(3, world.environment());
  int calls = 0;
  EXPECT_THROW(retry.run([&](time_point) -> int {
    ++calls;
    throw timeout();
  }),
               aws::transport_error);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(retry.quota().available(), 480);

  calls = 0;
  EXPECT_THROW(retry.run([&](time_point) -> int {
    ++calls;
    throw aws::transport_error(aws::transport_error::kind::permanent, "certificate");
  }),
               aws::transport_error);
  EXPECT_EQ(calls, 1);
}

TEST(Retry, QuotaExhaustionStopsRetriesAndSuccessesRefill) {
  fake_world world;
  aws::retry_strategy retry(3, world.environment());
  // 50 calls that each time out twice then fail: 2 * 10 tokens each until the
  // quota (500) is gone after 25 calls; later calls get no retry at all.
  int calls = 0;
  for (int i = 0; i < 30; ++i) {
    EXPECT_THROW(retry.run([&](time_point) -> int {
      ++calls;
      throw timeout();
    }),
                 aws::transport_error);
  }
  EXPECT_EQ(retry.quota().available(), 0);
  EXPECT_EQ(calls, 25 * 3 + 5 * 1);

  // A first-attempt success gives back one token.
  retry.run([](time_point) { return 0; });
  EXPECT_EQ(retry.quota().available(), 1);
  for (int i = 0; i < 9; ++i)
    retry.run([](time_point) { return 0; });
  EXPECT_EQ(retry.quota().available(), 10);

  // Enough for one throttling retry (5) again; success refunds it.
  int attempts = 0;
  retry.run([&](time_point) {
    if (++attempts == 1)
      throw error(400, "ThrottlingException");
    return 0;
  });
  EXPECT_EQ(attempts, 2);
  EXPECT_EQ(retry.quota().available(), 10);

  // The quota never grows past its capacity.
  for (int i = 0; i < 1000; ++i)
    retry.run([](time_point) { return 0; });
  EXPECT_EQ(retry.quota().available(), 500);
}

TEST(Retry, ClockSkewIsLearnedAndAppliedToTheSigningTime) {
  fake_world world;
  aws::retry_strategy retry(3, world.environment());
  const time_point server = world.now + 20min;
  std::vector<time_point> signing_times;
  retry.run([&](time_point signing_time) {
    signing_times.push_back(signing_time);
    if (signing_times.size() == 1)
      throw error(403, "RequestTimeTooSkewed", server);
    return 0;
  });
  ASSERT_EQ(signing_times.size(), 2u);
  EXPECT_EQ(signing_times[0], world.now);
  EXPECT_EQ(signing_times[1], server);
  EXPECT_EQ(retry.clock_offset(), 20min);
  EXPECT_TRUE(world.sleeps.empty());  // no backoff and no quota for a skew retry
  EXPECT_EQ(retry.quota().available(), 500);
  // Later calls sign with the corrected time from the start.
  world.now += 1h;
  EXPECT_EQ(retry.signing_time(), world.now + 20min);
}

TEST(Retry, SignatureMismatchIsSkewOnlyWhenTheClocksDisagree) {
  fake_world world;
  aws::retry_strategy retry(3, world.environment());
  int calls = 0;
  // Clocks agree (the Date header is 2 s ahead): a wrong key, not retried.
  EXPECT_THROW(retry.run([&](time_point) -> int {
    ++calls;
    throw error(403, "SignatureDoesNotMatch", world.now + 2s);
  }),
               aws::service_error);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(retry.clock_offset(), 0ms);

  // Clocks 10 minutes apart: skew, corrected, retried.
  calls = 0;
  std::vector<time_point> signing_times;
  retry.run([&](time_point signing_time) {
    signing_times.push_back(signing_time);
    if (++calls == 1)
      throw error(400, "InvalidSignatureException", world.now - 10min);
    return 0;
  });
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(signing_times.back(), world.now - 10min);
}

TEST(Retry, SkewWithoutDateHeaderIsNotRetried) {
  fake_world world;
  aws::retry_strategy retry(3, world.environment());
  int calls = 0;
  EXPECT_THROW(retry.run([&](time_point) -> int {
    ++calls;
    throw error(403, "RequestTimeTooSkewed");
  }),
               aws::service_error);
  EXPECT_EQ(calls, 1);
}

TEST(Retry, OtherExceptionsPassStraightThrough) {
  fake_world world;
  aws::retry_strategy retry(3, world.environment());
  int calls = 0;
  EXPECT_THROW(retry.run([&](time_point) -> int {
    ++calls;
    throw std::logic_error("bug");
  }),
               std::logic_error);
  EXPECT_EQ(calls, 1);
}

TEST(Retry, MaxAttemptsOneMeansNoRetry) {
  fake_world world;
  aws::retry_strategy retry(1, world.environment());
  int calls = 0;
  EXPECT_THROW(retry.run([&](time_point) -> int {
    ++calls;
    throw error(503, "SlowDown");
  }),
               aws::service_error);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(aws::retry_strategy(0, world.environment()).max_attempts(), 1);
}

TEST(Retry, MaxAttemptsFromEnvironment) {
  ::unsetenv("AWS_MAX_ATTEMPTS");
  EXPECT_EQ(aws::max_attempts_from_environment(), 3);
  ::setenv("AWS_MAX_ATTEMPTS", "7", 1);
  EXPECT_EQ(aws::max_attempts_from_environment(), 7);
  ::setenv("AWS_MAX_ATTEMPTS", "0", 1);
  EXPECT_EQ(aws::max_attempts_from_environment(4), 4);
  ::setenv("AWS_MAX_ATTEMPTS", "lots", 1);
  EXPECT_EQ(aws::max_attempts_from_environment(), 3);
  ::unsetenv("AWS_MAX_ATTEMPTS");
}
