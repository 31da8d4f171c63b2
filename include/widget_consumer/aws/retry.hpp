#pragma once
// Retries as the AWS SDKs' "standard" mode does them (AWS SDKs and Tools
// reference guide, "Retry behavior"), so our clients behave like the ones
// operators already know:
//
//   - at most max_attempts attempts (3 by default; AWS_MAX_ATTEMPTS);
//   - only throttling errors, transient errors, HTTP 500/502/503/504 and
//     transport failures (timeouts, connection errors) are retried
//     (service_error::retryable(), transport_error::retryable());
//   - before retry i (i = the attempt that just failed, from 1) the caller
//     sleeps min(b * 2^(i-1) seconds, 20 s) with b uniform in [0, 1): full
//     jitter, so a burst of failing clients spreads out;
//   - a retry quota shared by every call of one client: 500 tokens, a retry
//     costs 5 (10 after a timeout or connection error), a success gives back
//     what its last retry cost, or 1 when it needed no retry. An empty quota
//     stops retries, so an outage is not multiplied by the retries;
//   - clock skew: when the service rejects the signature's time, the offset
//     between the response's Date header and our clock is learned and added
//     to the signing time of every later attempt (no backoff, no quota).
//
// The clock, the random source and the sleep are injected (retry_environment)
// so that tests run the policy deterministically and without waiting.

#include <widget_consumer/aws/error.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

namespace widget_consumer::aws {

/// The clock, random source and sleep the retry policy uses: the system's, or a test's.
struct retry_environment {
  /// The wall clock, for clock-skew correction.
  std::function<std::chrono::system_clock::time_point()> now;
  std::function<double()> random;                        ///< uniform in [0, 1)
  std::function<void(std::chrono::milliseconds)> sleep;  ///< waits out a backoff

  /// The real clock, a per-thread random engine and std::this_thread::sleep_for.
  static retry_environment system() {
    return {
        [] { return std::chrono::system_clock::now(); },
        [] {
          thread_local std::mt19937_64 engine{std::random_device{}()};
          return std::uniform_real_distribution<double>(0.0, 1.0)(engine);
        },
        [](std::chrono::milliseconds delay) { std::this_thread::sleep_for(delay); },
    };
  }
};

/// AWS_MAX_ATTEMPTS when it holds a positive number, else `fallback`.
inline int max_attempts_from_environment(int fallback = 3) {
  const char* text = std::getenv("AWS_MAX_ATTEMPTS");
  if (text == nullptr || *text == '\0')
    return fallback;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (*end != '\0' || value < 1 || value > 100)
    return fallback;
  return static_cast<int>(value);
}

/// The token bucket that bounds retries across all calls of one client.
class retry_quota {
 public:
  static constexpr int initial_tokens = 500;     ///< tokens in a full bucket
  static constexpr int retry_cost = 5;           ///< tokens a retry after an error answer takes
  static constexpr int timeout_retry_cost = 10;  ///< tokens a retry after a timeout takes
  static constexpr int no_retry_increment = 1;   ///< tokens a first-attempt success gives back

  /// Takes `amount` tokens for a retry; false, and nothing taken, when too few are left.
  bool acquire(int amount) {
    std::lock_guard lock(mutex_);
    if (available_ < amount)
      return false;
    available_ -= amount;
    return true;
  }

  /// Gives tokens back, up to a full bucket.
  void release(int amount) {
    std::lock_guard lock(mutex_);
    available_ = std::min(initial_tokens, available_ + amount);
  }

  /// The tokens left.
  int available() const {
    std::lock_guard lock(mutex_);
    return available_;
  }

 private:
  mutable std::mutex mutex_;
  int available_ = initial_tokens;
};

/// The AWS SDKs' standard retry mode: which failures to retry, how long to back off, the quota.
class retry_strategy {
 public:
  /// The longest backoff between attempts.
  static constexpr std::chrono::milliseconds max_backoff{20'000};
  /// The backoff's base, doubled per attempt, with full jitter.
  static constexpr std::chrono::milliseconds backoff_base{1'000};
  /// A signature mismatch counts as clock skew only when the clocks differ by
  /// this much (AWS accepts up to 5 minutes; the SDKs use 4 as the threshold).
  static constexpr std::chrono::minutes signature_skew_threshold{4};

  /// Up to `max_attempts` attempts per call (at least one), on `environment`'s clock.
  explicit retry_strategy(int max_attempts = 3,
                          retry_environment environment = retry_environment::system())
      : max_attempts_(std::max(1, max_attempts)), env_(std::move(environment)) {}

  /// Attempts per call, the first included.
  int max_attempts() const noexcept { return max_attempts_; }
  /// The token bucket shared by every call of the client.
  retry_quota& quota() noexcept { return quota_; }
  /// The token bucket, read-only.
  const retry_quota& quota() const noexcept { return quota_; }

  /// The learned difference "server clock - our clock".
  std::chrono::milliseconds clock_offset() const noexcept {
    return std::chrono::milliseconds{offset_ms_.load(std::memory_order_relaxed)};
  }

  /// The time to sign the next attempt with: our clock, corrected.
  std::chrono::system_clock::time_point signing_time() const { return env_.now() + clock_offset(); }

  /// The delay before the retry that follows failed attempt `attempt` (from 1).
  std::chrono::milliseconds backoff(int attempt) const {
    const int exponent = std::clamp(attempt - 1, 0, 30);
    const double ceiling = static_cast<double>(backoff_base.count()) * std::ldexp(1.0, exponent);
    const double jittered = std::clamp(env_.random(), 0.0, 1.0) * ceiling;
    return std::min(max_backoff, std::chrono::milliseconds{static_cast<long long>(jittered)});
  }

  /// Runs `attempt(signing_time)` until it returns, or until its failure
  /// (service_error or transport_error) is final, which is then rethrown
  /// unchanged. Any other exception passes through at once.
  template <class Attempt>
  auto run(Attempt&& attempt)
      -> std::invoke_result_t<Attempt&, std::chrono::system_clock::time_point> {
    int last_cost = 0;  // the quota the latest retry took, refunded on success
    for (int number = 1;; ++number) {
      try {
        auto result = attempt(signing_time());
        quota_.release(last_cost > 0 ? last_cost : retry_quota::no_retry_increment);
        return result;
      } catch (const service_error& e) {
        if (number >= max_attempts_)
          throw;
        if (correct_clock(e))
          continue;
        if (!e.retryable() || !quota_.acquire(retry_quota::retry_cost))
          throw;
        last_cost = retry_quota::retry_cost;
      } catch (const transport_error& e) {
        if (number >= max_attempts_ || !e.retryable() ||
            !quota_.acquire(retry_quota::timeout_retry_cost))
          throw;
        last_cost = retry_quota::timeout_retry_cost;
      }
      env_.sleep(backoff(number));
    }
  }

  /// Learns the clock offset from a rejected request; true when a retry with
  /// the corrected signing time is worth it.
  bool correct_clock(const service_error& error) {
    if (!error.clock_skew() || !error.server_time())
      return false;
    const auto local = env_.now();
    const auto offset =
        std::chrono::duration_cast<std::chrono::milliseconds>(*error.server_time() - local);
    const auto signed_skew = offset - clock_offset();  // how far off the rejected signature was
    const auto magnitude = signed_skew < signed_skew.zero() ? -signed_skew : signed_skew;
    const bool names_time = detail::contains(detail::clock_skew_codes, error.code());
    // The Date header has one-second resolution: below that there is nothing
    // to correct. A signature mismatch with agreeing clocks is a wrong key,
    // which no retry fixes.
    const std::chrono::milliseconds needed =
        names_time ? std::chrono::milliseconds{1000} : signature_skew_threshold;
    if (magnitude < needed)
      return false;
    offset_ms_.store(offset.count(), std::memory_order_relaxed);
    return true;
  }

 private:
  int max_attempts_;
  retry_environment env_;
  retry_quota quota_;
  std::atomic<long long> offset_ms_{0};
};

}  // namespace widget_consumer::aws
