#pragma once
// What s3_bucket_source remembers of keys by partition, when it shares its
// bucket (detail/s3_partition_claims.hpp), on the poll thread:
//
// - keys of partitions held elsewhere, with their partition: a request body
//   never changes, so a key is read once, and later passes skip it without
//   a GET until its partition becomes ours. A key not listed in two passes
//   is gone and forgotten;
// - whether such keys were listed in this pass or the one before: work that
//   may yet come to this consumer (a dead owner's partitions expire);
// - the partition of each request handed out, until it is done (settled,
//   and deleted if it was to be), so that a partition is given back only
//   once none of its requests is in flight.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

namespace widget_consumer::detail {

class s3_partition_keys {
 public:
  void start_pass() {
    ++pass_;
    std::erase_if(elsewhere_, [&](const auto& entry) { return entry.second.pass + 1 < pass_; });
    elsewhere_last_pass_ = elsewhere_this_pass_;
    elsewhere_this_pass_ = 0;
  }

  // `key` lies in partition `p`, which this consumer may not hand out now.
  void elsewhere(const std::string& key, std::uint32_t p) {
    elsewhere_[key] = {.partition = p, .pass = pass_};
    ++elsewhere_this_pass_;
  }

  // The partition of a key seen elsewhere before; seen again now.
  std::optional<std::uint32_t> known(const std::string& key) {
    const auto found = elsewhere_.find(key);
    if (found == elsewhere_.end())
      return std::nullopt;
    found->second.pass = pass_;
    ++elsewhere_this_pass_;
    return found->second.partition;
  }

  void forget(const std::string& key) { elsewhere_.erase(key); }

  bool others_at_work() const noexcept {
    return elsewhere_this_pass_ != 0 || elsewhere_last_pass_ != 0;
  }

  void taken(const std::string& key, std::uint32_t p) { busy_[key] = p; }

  // The partition of a request handed out, now done; nullopt if none was.
  std::optional<std::uint32_t> done(const std::string& key) {
    const auto found = busy_.find(key);
    if (found == busy_.end())
      return std::nullopt;
    const std::uint32_t p = found->second;
    busy_.erase(found);
    return p;
  }

 private:
  struct seen {
    std::uint32_t partition = 0;
    std::uint64_t pass = 0;  // the last pass that listed it
  };

  std::uint64_t pass_ = 0;
  std::unordered_map<std::string, seen> elsewhere_;
  std::size_t elsewhere_this_pass_ = 0;
  std::size_t elsewhere_last_pass_ = 0;
  std::unordered_map<std::string, std::uint32_t> busy_;
};

}  // namespace widget_consumer::detail
