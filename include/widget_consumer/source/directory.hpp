#pragma once
// directory_source: the files of one folder as requests, in name order (the
// producer's 13-digit epoch-millisecond names sort as time). ack deletes the
// file; reject moves it into {folder}/rejected/ next to a .reason file;
// release hides it until its delay has passed. Hidden files (".name") are
// skipped: writers use them as temporaries before a rename. A ticket that is
// not in flight is reported by flush() and touches no file (concepts.hpp).

#include <widget_consumer/concepts.hpp>
#include <widget_consumer/position.hpp>
#include <widget_consumer/source/detail/settlement_ledger.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

namespace widget_consumer {

/// Where the directory source moves the files it rejects.
struct directory_source_options {
  std::string rejected_folder = "rejected";  ///< inside the source folder
};

/// A request source of JSON files in a folder, taken in file-name order: for tests and local runs.
class directory_source {
 public:
  using ticket_type = std::string;  ///< the file name
  /// The clock release delays are measured on.
  using clock = std::chrono::steady_clock;

  /// A source of the files in `folder`, which must be a directory (std::runtime_error if not).
  explicit directory_source(std::filesystem::path folder, directory_source_options options = {})
      : folder_(std::move(folder)), options_(std::move(options)) {
    if (!std::filesystem::is_directory(folder_))
      throw std::runtime_error("request folder " + folder_.string() + " is not a directory");
    if (!is_plain_name(options_.rejected_folder))
      throw std::invalid_argument("rejected folder must be a plain name inside the request folder");
  }

  /// Never waits: a folder has no long poll; the consumer pauses between
  /// empty polls.
  std::vector<received_request<ticket_type>> poll(std::chrono::milliseconds, std::size_t max) {
    if (pending_.empty() || released_file_due())
      list();
    std::vector<received_request<ticket_type>> batch;
    while (!pending_.empty() && batch.size() < max) {
      std::string name = std::move(pending_.back());
      pending_.pop_back();
      std::ifstream file(folder_ / name, std::ios::binary);
      if (!file)
        continue;  // gone since the listing (another consumer took it)
      std::string body{std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
      if (file.bad())
        throw std::runtime_error("cannot read " + (folder_ / name).string());
      ledger_.hand_out(name);
      delayed_.erase(name);
      const std::uint32_t receives = ++receive_counts_[name];
      batch.push_back({.body = std::move(body),
                       .ticket = name,
                       .name = name,
                       .receive_count = receives,
                       .position = file_position(name)});
    }
    return batch;
  }

  /// Deletes the file.
  void ack(const ticket_type& name) {
    if (!ledger_.settle(name, settle_action::ack))
      return;
    receive_counts_.erase(name);
    std::error_code error;
    std::filesystem::remove(folder_ / name, error);  // already gone is fine
    if (error)
      ledger_.fail(settle_action::ack, name, "cannot delete: " + error.message());
  }

  /// Hands the file out again once `delay` has passed.
  void release(const ticket_type& name, std::chrono::milliseconds delay) {
    if (!ledger_.settle(name, settle_action::release))
      return;
    delayed_[name] = clock::now() + delay;
  }

  /// Moves the file into the rejected folder, with the reason beside it.
  void reject(const ticket_type& name, std::string_view reason) {
    if (!ledger_.settle(name, settle_action::reject))
      return;
    receive_counts_.erase(name);
    const std::filesystem::path rejected = folder_ / options_.rejected_folder;
    std::error_code error;
    std::filesystem::create_directories(rejected, error);
    if (!error) {
      // The reason first: a crash before the move leaves the request in
      // place, to be rejected again, rather than a request without its reason.
      std::ofstream reason_file(rejected / (name + ".reason"), std::ios::trunc);
      reason_file << reason << '\n';
      reason_file.close();
      if (!reason_file)
        error = std::make_error_code(std::errc::io_error);
    }
    if (!error)
      std::filesystem::rename(folder_ / name, rejected / name, error);
    if (error)
      ledger_.fail(settle_action::reject, name, "cannot move aside: " + error.message());
  }

  /// The settlements that did not take effect since the last flush.
  std::vector<settle_failure> flush() { return ledger_.take_failures(); }

  /// File-name order is the order requests are applied in.
  bool ordered() const noexcept { return true; }
  /// A released file is handed out again by this source only (concepts.hpp).
  bool releases_locally() const noexcept { return true; }

  /// The folder it reads.
  const std::filesystem::path& folder() const noexcept { return folder_; }

 private:
  // One path element: no way out of the folder.
  static bool is_plain_name(std::string_view name) {
    return !name.empty() && name != "." && name != ".." &&
           name.find_first_of(std::string_view("/\\\0", 3)) == std::string_view::npos;
  }

  bool released_file_due() const {
    const auto now = clock::now();
    return std::any_of(delayed_.begin(), delayed_.end(),
                       [&](const auto& entry) { return entry.second <= now; });
  }

  // Lists the folder once per drained batch rather than once per poll, so a
  // large backlog is not re-read and re-sorted for every request.
  void list() {
    const auto now = clock::now();
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(folder_)) {
      std::error_code error;
      if (!entry.is_regular_file(error))
        continue;  // the rejected folder, and anything that is not a file
      std::string name = entry.path().filename().string();
      if (name.starts_with('.') || ledger_.in_flight(name))
        continue;
      if (auto due = delayed_.find(name); due != delayed_.end() && due->second > now)
        continue;
      names.push_back(std::move(name));
    }
    std::sort(names.begin(), names.end(), std::greater<>());  // pop_back takes the oldest
    pending_ = std::move(names);
    // Released files are listed again now or are still waiting.
    std::erase_if(delayed_, [&](const auto& entry) { return entry.second <= now; });
  }

  std::filesystem::path folder_;
  directory_source_options options_;
  std::vector<std::string> pending_;  // listed, not yet handed out; newest first
  // Only names listed from the folder go in flight, so a ticket naming
  // anything outside it is never settled.
  detail::settlement_ledger<> ledger_;
  std::unordered_map<std::string, clock::time_point> delayed_;
  std::unordered_map<std::string, std::uint32_t> receive_counts_;
};

}  // namespace widget_consumer
