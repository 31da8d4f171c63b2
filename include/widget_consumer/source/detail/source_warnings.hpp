#pragma once
// What a source found worth a warning on a thread of its own (a settler, a
// claims round), kept until the consumer's poll thread takes it for the log
// (concepts.hpp, warning_reporting). Bounded: a source that keeps warning
// while nobody takes them (a run that ended) holds at most `limit` texts and
// a count of the rest. Not thread-safe: the caller guards it.

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace widget_consumer::detail {

class source_warnings {
 public:
  static constexpr std::size_t limit = 100;

  void add(std::string text) {
    if (texts_.size() < limit)
      texts_.push_back(std::move(text));
    else
      ++left_out_;
  }

  std::vector<std::string> take() {
    if (left_out_ > 0)
      texts_.push_back(std::to_string(left_out_) + " more warnings of the source were left out");
    left_out_ = 0;
    return std::exchange(texts_, {});
  }

 private:
  std::vector<std::string> texts_;
  std::uint64_t left_out_ = 0;
};

}  // namespace widget_consumer::detail
