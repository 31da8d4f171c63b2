#pragma once
// The poll thread's side of settling: one ack, release or reject handed to
// the source, and the source's flush(). A settlement that fails, thrown or
// reported by flush(), is counted and said; the request stays in the source
// and comes again (at-least-once), so nothing else is done about it.
// During the run a source that can (concepts.hpp, background_flushing) makes
// its calls on a thread of its own; the last flush, finish(), waits for them
// so the run's summary counts every failure.
// It also keeps the names of the requests left unsettled (released, or a
// settlement that failed) until a later ack or reject of the same name took
// effect: their number at the end is the summary's `unsettled`, which tells
// a run that finished its work from one that left some behind.

#include <chrono>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>

#include <widget_consumer/concepts.hpp>
#include <widget_consumer/delivery.hpp>
#include <widget_consumer/detail/consumer_report.hpp>
#include <widget_consumer/events.hpp>

namespace widget_consumer::detail {

template <class Source, class Log>
class source_settling {
 public:
  using ticket_type = typename Source::ticket_type;

  source_settling(Source& source, Log& log, std::chrono::milliseconds release_delay)
      : source_(source), log_(log), release_delay_(release_delay) {}

  // False when it failed.
  bool settle(consumer_stats& stats, ticket_type ticket, settle_action action,
              std::string_view name, std::string_view reason) {
    try {
      if (action == settle_action::ack)
        source_.ack(std::move(ticket));
      else if (action == settle_action::release)
        source_.release(std::move(ticket), release_delay_);
      else
        source_.reject(std::move(ticket), reason);
      if (action == settle_action::release)
        unsettled_.emplace(name);
      else
        unsettled_.erase(std::string(name));
      return true;
    } catch (const std::exception& e) {
      failed(stats, action, name, e.what());
      return false;
    }
  }

  // After a round of settlements: does not wait for the calls when the
  // source can make them in the background.
  void flush(consumer_stats& stats) {
    if constexpr (background_flushing<Source>)
      report(stats, [this] { return source_.begin_flush(); });
    else
      report(stats, [this] { return source_.flush(); });
  }

  // Before run() returns: every call begun has ended and been reported.
  void finish(consumer_stats& stats) {
    report(stats, [this] { return source_.flush(); });
  }

  // A new run() counts its own.
  void begin_run() { unsettled_.clear(); }
  // A release the source will not deliver again to this consumer: another
  // has it now (concepts.hpp, release_forgetting), so it is not work this
  // run left.
  void gone_elsewhere(const std::string& name) { unsettled_.erase(name); }
  std::uint64_t unsettled() const noexcept { return unsettled_.size(); }

 private:
  template <class Flush>
  void report(consumer_stats& stats, Flush flush) {
    try {
      for (const settle_failure& failure : flush())
        failed(stats, failure.action, failure.name, failure.reason);
    } catch (const std::exception& e) {
      failed(stats, settle_action::ack, "(flush)", e.what());
    }
  }

  void failed(consumer_stats& stats, settle_action action, std::string_view name,
              std::string_view reason) {
    ++stats.settle_failures;
    unsettled_.emplace(name);
    log_.error(settle_failed_message(action, name, reason));
  }

  Source& source_;
  Log& log_;
  std::chrono::milliseconds release_delay_;
  std::unordered_set<std::string> unsettled_;
};

}  // namespace widget_consumer::detail
