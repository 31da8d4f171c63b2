#pragma once
// The optional capabilities of concepts.hpp (startup_checking,
// local_releasing, pending_reporting, stop_requesting,
// heartbeat_refusal_reporting, warning_reporting, release_forgetting,
// backlog_reporting, state_observing, store_call_observing), each
// as the consumer uses it: the member's answer when a policy has it, the
// documented default when it has not, and what a failure of the member
// means. Called from the poll thread only, but for store_call (lanes).

#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <string_view>

#include <widget_consumer/concepts.hpp>
#include <widget_consumer/unrecoverable_error.hpp>

namespace widget_consumer::detail {

// What cannot heal ends run() before any lane starts; anything else is said
// and polling begins as usual.
template <class Policy, class Log>
void check_ready(Policy& policy, std::string_view role, Log& log) {
  if constexpr (startup_checking<Policy>) {
    try {
      policy.check_ready();
    } catch (const unrecoverable_error&) {
      throw;
    } catch (const std::exception& e) {
      log.warning("start-up check of the " + std::string(role) +
                  " failed (retried while running): " + e.what());
    }
  }
}

// Without the member, releases are taken as not local.
template <class Source>
bool releases_locally(const Source& source) {
  if constexpr (local_releasing<Source>)
    return static_cast<bool>(source.releases_locally());
  return false;
}

// Without the member, or when asking fails, nothing is pending: max_idle runs.
template <class Source, class Log>
bool has_pending(Source& source, Log& log) {
  if constexpr (pending_reporting<Source>) {
    try {
      return static_cast<bool>(source.has_pending());
    } catch (const std::exception& e) {
      log.error(std::string("asking the source for pending requests failed: ") + e.what());
    }
  }
  return false;
}

// A source that fetches ahead stops fetching what would only be given back.
template <class Source, class Log>
void request_stop(Source& source, Log& log) {
  if constexpr (stop_requesting<Source>) {
    try {
      source.request_stop();
    } catch (const std::exception& e) {
      log.error(std::string("stopping the source failed: ") + e.what());
    }
  }
}

// Without the member, nothing was refused.
template <class Source, class Log>
std::uint64_t heartbeat_failures(const Source& source, Log& log) {
  if constexpr (heartbeat_refusal_reporting<Source>) {
    try {
      return static_cast<std::uint64_t>(source.heartbeat_failures());
    } catch (const std::exception& e) {
      log.error(std::string("asking the source for heartbeat refusals failed: ") + e.what());
    }
  }
  return 0;
}

// What the source warns of (warning_reporting), said at once.
template <class Source, class Log>
void say_source_warnings(Source& source, Log& log) {
  if constexpr (warning_reporting<Source>) {
    try {
      for (const std::string& text : source.take_warnings())
        log.warning(text);
    } catch (const std::exception& e) {
      log.error(std::string("asking the source for its warnings failed: ") + e.what());
    }
  }
}

// The releases the source will not deliver again (release_forgetting),
// each handed to forget(release); none without the member.
template <class Source, class Log, class Forget>
void forget_releases(Source& source, Log& log, Forget&& forget) {
  if constexpr (release_forgetting<Source>) {
    try {
      for (forgotten_release& each : source.take_forgotten_releases())
        forget(std::move(each));
    } catch (const std::exception& e) {
      log.error(std::string("asking the source for releases gone elsewhere failed: ") + e.what());
    }
  }
}

// Without the member, or when asking fails, the backlog is unknown. Not
// logged: it is asked once per poll round, for the metrics only.
template <class Source>
std::optional<std::uint64_t> source_backlog(Source& source) noexcept {
  if constexpr (backlog_reporting<Source>) {
    try {
      return static_cast<std::uint64_t>(source.backlog());
    } catch (...) {  // metrics never stop the consumer
    }
  }
  return std::nullopt;
}

template <class Log>
void observe(Log& log, const consumer_state& state) noexcept {
  if constexpr (state_observing<Log>) {
    try {
      log.observe(state);
    } catch (...) {  // metrics never stop the consumer
    }
  }
}

template <class Log>
void store_call(Log& log, const store_call_event& event) noexcept {
  if constexpr (store_call_observing<Log>) {
    try {
      log.store_call(event);
    } catch (...) {  // metrics never stop the consumer
    }
  }
}

}  // namespace widget_consumer::detail
