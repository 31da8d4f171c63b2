#pragma once
// How s3_bucket_source deletes the requests it settled, one call of the
// batch runner (detail/batch_runner.hpp) at a time, on its settler thread:
// DeleteObjects, or each key on its own when the batch call fails as a whole
// or is not asked. A server that does not implement DeleteObjects
// (501/405) is not asked again; one that refuses it while the single deletes
// succeed, not for a minute.

#include <widget_consumer/aws/error.hpp>
#include <widget_consumer/aws/s3.hpp>
#include <widget_consumer/source/detail/batch_runner.hpp>

#include <chrono>
#include <cstddef>
#include <exception>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace widget_consumer::detail {

class s3_request_deleter {
 public:
  using clock = std::chrono::steady_clock;

  // Both outlive the deleter (members of the source, declared before it).
  s3_request_deleter(aws::s3_client& client, const std::string& bucket)
      : client_(client), bucket_(bucket) {}

  static bool batch_unsupported(const aws::service_error& error) {
    return error.status() == 501 || error.status() == 405 || error.code() == "NotImplemented";
  }

  // Entries have a `key`; failures name their index in `chunk`.
  template <class Entry>
  std::vector<batch_entry_failure> operator()(std::span<const Entry> chunk) {
    std::vector<batch_entry_failure> failed;
    std::unordered_map<std::string, std::size_t> index;
    std::vector<std::string> keys;
    for (std::size_t i = 0; i < chunk.size(); ++i) {
      index.emplace(chunk[i].key, i);
      keys.push_back(chunk[i].key);
    }
    bool batch_refused = false;  // the server answered DeleteObjects with an error
    if (batch_ && clock::now() >= paused_until_) {
      try {
        for (const auto& failure : client_.delete_objects(bucket_, keys))
          if (const auto found = index.find(failure.key); found != index.end())
            failed.push_back({.index = found->second,
                              .reason = "DeleteObjects: " + failure.code + ": " + failure.message});
        return failed;
      } catch (const aws::service_error& e) {
        batch_ = !batch_unsupported(e);
        batch_refused = true;
      } catch (const std::exception&) {
        // Whatever it was, the single deletes below will say it per key.
      }
    }
    for (std::size_t i = 0; i < chunk.size(); ++i) {
      try {
        client_.delete_object(bucket_, chunk[i].key);
      } catch (const std::exception& e) {
        failed.push_back({.index = i, .reason = e.what()});
      }
    }
    // DeleteObjects refused while every key deletes fine on its own: a server
    // that cannot do the batch for these keys (some S3-compatible servers
    // answer 500 to a key that looks like a number, i.e. every producer key).
    // Asking it again at each flush costs the call and its retries every time
    // (seconds per flush): delete one by one for a while, then try the batch
    // again.
    if (batch_refused && failed.empty())
      paused_until_ = clock::now() + pause;
    return failed;
  }

 private:
  aws::s3_client& client_;
  const std::string& bucket_;
  bool batch_ = true;
  static constexpr std::chrono::seconds pause{60};
  clock::time_point paused_until_{};
};

}  // namespace widget_consumer::detail
