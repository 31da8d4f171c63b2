#pragma once
// What the claims of s3_bucket_source (detail/s3_partition_claims.hpp) are set up
// with: where they live, how long one lasts unrenewed, the checks of the
// options, the owner name a claim's body carries, and how a consumer tells
// that the owner of a claim was a process of its own machine that is gone.

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>

#include <signal.h>
#include <sys/types.h>
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

// Where this process runs, as far as pids go: the kernel's boot id and the
// pid namespace. Two processes with the same node see the same pids, so one
// can tell whether the other still exists; "" when either is unknown (then
// no owner is ever judged gone from here).
inline std::string claim_node() {
  std::string boot;
  std::ifstream file("/proc/sys/kernel/random/boot_id");
  std::getline(file, boot);
  char ns[128] = {};
  const ssize_t length = readlink("/proc/self/ns/pid", ns, sizeof ns - 1);
  if (boot.empty() || length <= 0)
    return {};
  return boot + " " + std::string(ns, static_cast<std::size_t>(length));
}

// True when a claim's owner ran on `node` (ours, known) as `pid`, and no
// process has that pid any more: it died without giving its claims back,
// and they need not wait out their lifetime. A pid used again by another
// process reads as alive: the claim then waits, which is safe.
inline bool claim_owner_gone(const std::string& our_node, std::string_view node,
                             std::string_view pid) {
  if (our_node.empty() || node != our_node || pid.empty() || pid.size() > 9)
    return false;
  pid_t number = 0;
  for (const char c : pid) {
    if (c < '0' || c > '9')
      return false;
    number = number * 10 + (c - '0');
  }
  if (number <= 0 || number == getpid())
    return false;
  return kill(number, 0) == -1 && errno == ESRCH;
}

}  // namespace widget_consumer::detail
