#pragma once
// The options of s3_bucket_source (s3_bucket.hpp), and their checks.

#include <widget_consumer/source/detail/s3_claim_settings.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <string>

namespace widget_consumer {

/// How s3_bucket_source lists, fetches, rejects and shares a bucket.
struct s3_bucket_source_options {
  std::string prefix;                         ///< only keys under it are requests; "" = all
  std::string rejected_prefix = "rejected/";  ///< where reject() puts a request and its reason
  std::string rejected_bucket;                ///< "" = the request bucket
  std::size_t fetch_concurrency = 8;          ///< GetObject threads, 1..64
  std::size_t read_ahead = 64;                ///< bodies fetched ahead of poll(), >= 1
  int page_size = 1000;                       ///< ListObjectsV2 max-keys, 1..1000
  /// Several consumers on one bucket (s3_bucket.hpp); false: this one is alone.
  bool claims = true;
  std::string claim_prefix = "claims/";  ///< in the request bucket; never requests
  /// Unrenewed for this long, a partition's owner is taken for dead
  /// (>= s3_min_claim_lifetime).
  std::chrono::milliseconds claim_lifetime{std::chrono::seconds(60)};
};

/// The shortest claim_lifetime accepted; why: detail/s3_claim_settings.hpp.
inline constexpr std::chrono::seconds s3_min_claim_lifetime = detail::min_claim_lifetime;

/// The options as the source runs with them (the rejected bucket filled in,
/// read_ahead at least 1); std::invalid_argument names what is wrong.
inline s3_bucket_source_options checked_s3_bucket_source_options(const std::string& bucket,
                                                                 s3_bucket_source_options options) {
  if (bucket.empty())
    throw std::invalid_argument("s3_bucket_source: the request bucket name is empty");
  if (options.page_size < 1 || options.page_size > 1000)
    throw std::invalid_argument("s3_bucket_source: page_size must be 1..1000");
  if (options.fetch_concurrency < 1 || options.fetch_concurrency > 64)
    throw std::invalid_argument("s3_bucket_source: fetch_concurrency must be 1..64");
  options.read_ahead = std::max<std::size_t>(options.read_ahead, 1);
  if (options.rejected_bucket.empty())
    options.rejected_bucket = bucket;
  const bool rejects_here = options.rejected_bucket == bucket;
  if (rejects_here && options.rejected_prefix.empty())
    throw std::invalid_argument(
        "s3_bucket_source: rejected requests in the request bucket need a rejected prefix");
  if (rejects_here && options.prefix.starts_with(options.rejected_prefix))
    throw std::invalid_argument("s3_bucket_source: the request prefix is inside the rejected one");
  if (options.claims)
    detail::check_claim_options(options.prefix, options.claim_prefix,
                                rejects_here ? options.rejected_prefix : std::string(),
                                options.claim_lifetime);
  return options;
}

}  // namespace widget_consumer
