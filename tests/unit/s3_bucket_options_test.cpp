#include <widget_consumer/source/s3_bucket_options.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>

// The checks of s3_bucket_source_options that need no server.

namespace widget_consumer {
namespace {

using namespace std::chrono_literals;

// Claim ages are whole seconds of the server's clock: under 5 s the 3/4 rule
// no longer keeps two holders of a partition apart (s3_claim_settings.hpp).
TEST(s3_bucket_source_options, a_claim_lifetime_under_5_s_is_refused_naming_it) {
  EXPECT_EQ(s3_min_claim_lifetime, 5s);
  for (const auto lifetime : {4999ms, 4000ms, 1000ms, 0ms, -1000ms}) {
    s3_bucket_source_options options;
    options.claim_lifetime = lifetime;
    try {
      (void)checked_s3_bucket_source_options("requests", options);
      ADD_FAILURE() << lifetime.count() << " ms accepted";
    } catch (const std::invalid_argument& error) {
      const std::string text = error.what();
      EXPECT_NE(text.find("claim_lifetime"), std::string::npos) << text;
      EXPECT_NE(text.find("at least 5 s"), std::string::npos) << text;
    }
  }
  s3_bucket_source_options options;
  options.claim_lifetime = 5s;
  EXPECT_EQ(checked_s3_bucket_source_options("requests", options).claim_lifetime, 5s);
  // Without claims the lifetime is not used.
  options.claims = false;
  options.claim_lifetime = 1s;
  EXPECT_NO_THROW((void)checked_s3_bucket_source_options("requests", options));
}

}  // namespace
}  // namespace widget_consumer
