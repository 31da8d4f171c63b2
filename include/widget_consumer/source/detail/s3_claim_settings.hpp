#pragma once
// What the claims of s3_bucket_source (detail/s3_partition_claims.hpp) are set up
// with: where they live, how long one lasts unrenewed, the checks of the
// options and the owner name a claim's body carries. How a consumer tells
// that the owner of a claim was a process of its own machine that is gone:
// detail/s3_claim_liveness.hpp.

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

// The shortest lifetime that is safe. A claim's age is the server's Date
// minus its Last-Modified, both in whole seconds, so an age read as over the
// lifetime L may be only L - 1 s really: another consumer may take the
// partition over then. Its holder stops handing its requests out once it
// has not renewed it for 3/4 L by its own clock (renewals at L/3), counted
// from before the renewal was sent. That is safe while L/4 covers the 1 s of
// resolution with room for the last request handed out to be applied and
// for the two clocks' rates: L >= 5 s leaves 1.25 s against 1 s. Below,
// the rule of 3/4 no longer keeps two holders apart.
inline constexpr std::chrono::seconds min_claim_lifetime{5};

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
  if (lifetime < min_claim_lifetime)
    throw std::invalid_argument("s3_bucket_source: claim_lifetime must be at least " +
                                std::to_string(min_claim_lifetime.count()) + " s");
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
