#pragma once
// The metric kinds of the Prometheus data model (counter, gauge, histogram),
// each a few atomics so that counting on the consumer's hot path takes no
// lock, and the text exposition format 0.0.4 they are scraped in
// (https://prometheus.io/docs/instrumenting/exposition_formats/).
//
// A histogram keeps one count per bucket, not cumulative, and sums them when
// written: an observation touches one bucket, and a scrape that races with
// it still sees each bucket at most the next one and +Inf equal to _count.

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

/// Prometheus metrics: the registry, the log policy that fills it, and its HTTP server.
namespace widget_consumer::metrics {

/// Only goes up (since the process began).
class counter {
 public:
  /// Counts `amount` more; lock-free.
  void add(std::uint64_t amount = 1) noexcept {
    value_.fetch_add(amount, std::memory_order_relaxed);
  }
  /// The count so far.
  std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

/// A value that is set.
class gauge {
 public:
  /// Sets the value; lock-free.
  void set(double value) noexcept { value_.store(value, std::memory_order_relaxed); }
  /// The value last set.
  double value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

/// Observations counted into buckets with the given upper bounds (sorted,
/// finite; +Inf is implied).
class histogram {
 public:
  /// A histogram with these bucket bounds; throws std::invalid_argument unless sorted and finite.
  explicit histogram(std::vector<double> bounds)
      : bounds_(std::move(bounds)),
        counts_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1)) {
    if (!std::is_sorted(bounds_.begin(), bounds_.end()) ||
        std::adjacent_find(bounds_.begin(), bounds_.end()) != bounds_.end() ||
        std::any_of(bounds_.begin(), bounds_.end(), [](double b) { return !std::isfinite(b); }))
      throw std::invalid_argument("histogram bounds must be finite and strictly increasing");
  }

  /// Counts one observation into its bucket and adds it to the sum; lock-free.
  void observe(double value) noexcept {
    // A value equal to a bound belongs to that bucket (le = less or equal).
    const auto bucket = static_cast<std::size_t>(
        std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
    counts_[bucket].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(value, std::memory_order_relaxed);
  }

  /// The buckets' upper bounds, +Inf left out.
  const std::vector<double>& bounds() const noexcept { return bounds_; }

  /// The histogram as read at one moment, for a scrape.
  struct snapshot {
    std::vector<std::uint64_t> cumulative;  ///< one per bound, then +Inf
    double sum = 0;                         ///< the sum of the observations
    /// The number of observations: the +Inf bucket.
    std::uint64_t count() const noexcept { return cumulative.empty() ? 0 : cumulative.back(); }
  };

  /// Reads the buckets, cumulative, and the sum.
  snapshot read() const {
    snapshot taken;
    taken.sum = sum_.load(std::memory_order_relaxed);
    std::uint64_t running = 0;
    for (std::size_t i = 0; i <= bounds_.size(); ++i) {
      running += counts_[i].load(std::memory_order_relaxed);
      taken.cumulative.push_back(running);
    }
    return taken;
  }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;
  std::atomic<double> sum_{0.0};
};

/// A label of a sample, name="value"; views valid during the call.
struct label {
  std::string_view name;   ///< the label's name, e.g. "type"
  std::string_view value;  ///< its value, escaped when written
};

/// Writes metric families in the text format, version 0.0.4.
class text_exposition {
 public:
  /// The Content-Type of a scrape's answer.
  static constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";

  /// The # HELP and # TYPE lines that begin a family.
  void family(std::string_view name, std::string_view type, std::string_view help) {
    text_.append("# HELP ").append(name).append(" ");
    escape(help, false);
    text_.append("\n# TYPE ").append(name).append(" ").append(type).append("\n");
  }

  /// One sample line, name{labels} value.
  void sample(std::string_view name, std::initializer_list<label> labels, double value) {
    sample(name, std::vector<label>(labels), value);
  }

  /// One sample line, name{labels} value, labels given as a vector.
  void sample(std::string_view name, const std::vector<label>& labels, double value) {
    text_.append(name);
    if (!labels.empty()) {
      text_ += '{';
      for (std::size_t i = 0; i < labels.size(); ++i) {
        text_.append(i == 0 ? "" : ",").append(labels[i].name).append("=\"");
        escape(labels[i].value, true);
        text_ += '"';
      }
      text_ += '}';
    }
    text_.append(" ").append(format_value(value)).append("\n");
  }

  /// name_bucket{le=...} cumulative and ending with +Inf, name_sum, name_count.
  void histogram_samples(std::string_view name, const std::vector<label>& labels,
                         const histogram& h) {
    const histogram::snapshot taken = h.read();
    const std::string bucket = std::string(name) + "_bucket";
    for (std::size_t i = 0; i < taken.cumulative.size(); ++i) {
      const std::string le =
          i < h.bounds().size() ? format_value(h.bounds()[i]) : std::string("+Inf");
      std::vector<label> with_le = labels;
      with_le.push_back({.name = "le", .value = le});
      sample(bucket, with_le, static_cast<double>(taken.cumulative[i]));
    }
    sample(std::string(name) + "_sum", labels, taken.sum);
    sample(std::string(name) + "_count", labels, static_cast<double>(taken.count()));
  }

  /// The text written so far.
  const std::string& text() const noexcept { return text_; }
  /// The text written so far, moved out.
  std::string take() noexcept { return std::move(text_); }

  /// Integers as integers (counts up to 2^53 are exact in a double), the
  /// rest in the shortest form that reads back as the same double.
  static std::string format_value(double value) {
    if (std::isnan(value))
      return "NaN";
    if (std::isinf(value))
      return value > 0 ? "+Inf" : "-Inf";
    char text[64];
    if (value == std::floor(value) && std::fabs(value) < 9007199254740992.0) {
      std::snprintf(text, sizeof text, "%.0f", value);
      return text;
    }
    // Bucket bounds read 0.0005, as other exporters write them, not 5e-04.
    const double size = std::fabs(value);
    const auto format =
        size >= 1e-6 && size < 1e15 ? std::chars_format::fixed : std::chars_format::general;
    const auto end = std::to_chars(text, text + sizeof text, value, format).ptr;
    return std::string(text, end);
  }

 private:
  // Label values escape backslash, double quote and line feed; help text
  // only backslash and line feed.
  void escape(std::string_view text, bool quotes) {
    for (const char c : text) {
      if (c == '\\')
        text_ += "\\\\";
      else if (c == '\n')
        text_ += "\\n";
      else if (c == '"' && quotes)
        text_ += "\\\"";
      else
        text_ += c;
    }
  }

  std::string text_;
};

}  // namespace widget_consumer::metrics
