#pragma once
// What the claims of s3_bucket_source (detail/s3_partition_claims.hpp) are set up
// with: where they live, how long one lasts unrenewed, the checks of the
// options, and the owner name a claim's body carries.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>

#include <unistd.h>

namespace widget_consumer::detail {

struct s3_claim_settings {
  std::string bucket;
  std::string prefix;
  std::chrono::milliseconds lifetime{60000};
};

// The claim prefix never holds requests, and overlaps neither the request
// prefix nor the rejected one ("" when rejected requests go elsewhere).
inline void check_claim_options(const std::string& request_prefix, const std::string& claim_prefix,
                                const std::string& rejected_prefix,
                                std::chrono::milliseconds lifetime) {
  if (claim_prefix.empty())
    throw std::invalid_argument("s3_bucket_source: the claim prefix is empty");
  if (request_prefix.starts_with(claim_prefix))
    throw std::invalid_argument("s3_bucket_source: the request prefix is inside the claim prefix");
  if (!rejected_prefix.empty() &&
      (claim_prefix.starts_with(rejected_prefix) || rejected_prefix.starts_with(claim_prefix)))
    throw std::invalid_argument("s3_bucket_source: the claim and rejected prefixes overlap");
  if (lifetime < std::chrono::seconds(1))
    throw std::invalid_argument("s3_bucket_source: claim_lifetime must be at least 1 s");
}

// "<random id> <host>/<pid>": unique per process, readable by a person.
inline std::string make_claim_owner() {
  std::random_device random;
  const std::uint64_t id = (std::uint64_t{random()} << 32U) ^ random();
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0)
    host[0] = '\0';
  constexpr char digits[] = "0123456789abcdef";
  std::string text(16, '0');
  for (std::size_t i = 0; i < text.size(); ++i)
    text[i] = digits[(id >> (4 * i)) & 0xfU];
  return text + " " + host + "/" + std::to_string(getpid());
}

}  // namespace widget_consumer::detail
