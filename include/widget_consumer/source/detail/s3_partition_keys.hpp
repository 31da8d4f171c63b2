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
// - the partitions refused in this pass: once a key of a partition is
//   skipped, the partition stays refused until the next pass, so that a
//   younger key of a widget never goes before an older one skipped (a claim
//   that was late in renewal and then renewed would otherwise be usable
//   again mid-pass);
// - the partition and widget of each request handed out, until it is done
//   (settled, and deleted if it was to be), so that a partition is given
//   back only once none of its requests is in flight, and a release can be
//   told to the consumer as gone elsewhere (s3_bucket.hpp).

#include <bitset>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

#include <widget_consumer/source/detail/s3_partitions.hpp>

namespace widget_consumer::detail {

class s3_partition_keys {
 public:
  void start_pass() {
    ++pass_;
    std::erase_if(elsewhere_, [&](const auto& entry) { return entry.second.pass + 1 < pass_; });
    elsewhere_last_pass_ = elsewhere_this_pass_;
    elsewhere_this_pass_ = 0;
    refused_.reset();
  }

  // Whether this pass may hand out requests of `p`: usable_now() (asked
  // only while `p` has not been refused in this pass), and from the first
  // time it says no, never again in this pass.
  template <class Usable>
  bool allowed(std::uint32_t p, Usable&& usable_now) {
    if (refused_.test(p))
      return false;
    const bool usable = usable_now();
    if (!usable)
      refused_.set(p);
    return usable;
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

  struct taken_key {
    std::uint32_t partition = 0;
    std::uint64_t tenure = 0;  // of the partition when taken (s3_partition_table)
    std::string widget;        // "" when the body named none
  };

  void taken(const std::string& key, taken_key what) { busy_[key] = std::move(what); }

  // What was taken of a request handed out, now done; nullopt if none was.
  std::optional<taken_key> done(const std::string& key) {
    const auto found = busy_.find(key);
    if (found == busy_.end())
      return std::nullopt;
    taken_key what = std::move(found->second);
    busy_.erase(found);
    return what;
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
  std::unordered_map<std::string, taken_key> busy_;
  std::bitset<s3_partition_count> refused_;
};

}  // namespace widget_consumer::detail
