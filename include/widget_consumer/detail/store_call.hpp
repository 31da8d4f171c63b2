#pragma once
// One request through the store, on a lane thread: the store's answer or its
// failure as a lane_outcome, and the calls repeated with a doubling backoff
// for as long as settle_decision says to retry.

#include <chrono>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>

#include <widget_consumer/concepts.hpp>
#include <widget_consumer/detail/settle_decision.hpp>
#include <widget_consumer/request.hpp>
#include <widget_consumer/store_error.hpp>

namespace widget_consumer::detail {

// position: the request's (position.hpp); a store with position_fencing
// gets it, unless it is empty (the source could not tell).
template <class Store>
lane_outcome call_store(Store& store, const widget_request& request,
                        std::string_view position = {}) {
  try {
    if constexpr (position_fencing<Store>) {
      if (!position.empty()) {
        fenced_outcome fenced = store.apply(request, position);
        if (fenced.outcome == apply_outcome::stale)
          return refused_as_stale{.position = std::string(position),
                                  .stored = std::move(fenced.stored_position)};
        return fenced.outcome;
      }
    }
    return store.apply(request);
  } catch (const store_error& e) {
    return store_fault{.failure = e.failure(), .message = e.what()};
  } catch (const std::exception& e) {
    return store_fault{.failure = store_failure::permanent, .message = e.what()};
  } catch (...) {
    return store_fault{.failure = store_failure::permanent,
                       .message = "the store threw something that is not a std::exception"};
  }
}

struct store_result {
  std::uint32_t attempts = 0;  // store calls made
  settle_decision decision{};
};

// Does nothing with a store call's duration.
struct ignore_store_calls {
  void operator()(std::chrono::steady_clock::duration, bool) const noexcept {}
};

// facts: all but lane and attempts, which the calls fill in. timed(duration,
// threw) hears of each call as it ends.
template <class Store, class Timed = ignore_store_calls>
store_result call_store_with_retries(Store& store, const widget_request& request,
                                     std::string_view position, settle_inputs facts,
                                     std::chrono::milliseconds backoff, Timed&& timed = {}) {
  for (facts.attempts = 1;; ++facts.attempts, backoff *= 2) {
    const auto began = std::chrono::steady_clock::now();
    facts.lane = call_store(store, request, position);
    timed(std::chrono::steady_clock::now() - began,
          std::holds_alternative<store_fault>(facts.lane));
    settle_decision decision = decide_settlement(facts);
    if (!decision.retry)
      return {.attempts = facts.attempts, .decision = std::move(decision)};
    std::this_thread::sleep_for(backoff);
  }
}

}  // namespace widget_consumer::detail
