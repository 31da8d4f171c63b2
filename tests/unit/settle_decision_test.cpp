#include "widget_consumer/detail/settle_decision.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace widget_consumer;
using widget_consumer::detail::held_behind;
using widget_consumer::detail::lane_outcome;
using widget_consumer::detail::settle_inputs;
using widget_consumer::detail::store_fault;

// One row: what became of the request, the facts about it, and what the spec
// (docs/concepts.md, WidgetStore and RequestSource::ordered; RELIABILITY.md,
// per-widget order) says the consumer does.
struct row {
  std::string_view what = "";
  lane_outcome lane{};
  request_type type = request_type::create;
  std::uint32_t attempts = 1;
  std::uint32_t receive_count = 1;
  bool ordered = true;
  // expected
  bool retry = false;
  settle_action action = settle_action::ack;
  request_outcome outcome = request_outcome::applied;
  bool holds_widget = false;
  std::string_view detail = "";  // the detail contains it
};

constexpr std::uint32_t max_attempts = 3;
constexpr std::uint32_t max_receives = 5;

const store_fault transient{.failure = store_failure::transient, .message = "503 SlowDown"};
const store_fault permanent{.failure = store_failure::permanent, .message = "403 AccessDenied"};
const store_fault bad{.failure = store_failure::bad_request, .message = "item too large"};
const std::string_view changed_nothing = "widget not found (or owned by someone else)";
const std::string_view deleted_nothing = "widget not found; nothing deleted";

const std::vector<row> rows = {
    // applied: acked, whatever the source
    {.what = "create applied", .lane = apply_outcome::applied},
    {.what = "update applied, unordered",
     .lane = apply_outcome::applied,
     .type = request_type::update,
     .ordered = false},
    {.what = "applied on the last attempt",
     .lane = apply_outcome::applied,
     .type = request_type::remove,
     .attempts = 3},
    // not found on an ordered source: a warning, acked
    {.what = "update not found, ordered",
     .lane = apply_outcome::not_found,
     .type = request_type::update,
     .outcome = request_outcome::not_found,
     .detail = changed_nothing},
    {.what = "delete not found, ordered",
     .lane = apply_outcome::not_found,
     .type = request_type::remove,
     .outcome = request_outcome::not_found,
     .detail = deleted_nothing},
    {.what = "ordered ignores the receive count",
     .lane = apply_outcome::not_found,
     .type = request_type::update,
     .receive_count = 2,
     .outcome = request_outcome::not_found,
     .detail = changed_nothing},
    // not found on an unordered source: it may have overtaken its create
    {.what = "update not found, unordered, receive 1",
     .lane = apply_outcome::not_found,
     .type = request_type::update,
     .ordered = false,
     .action = settle_action::release,
     .outcome = request_outcome::released,
     .detail = "receive 1 of 5"},
    {.what = "delete not found, unordered, receive 4",
     .lane = apply_outcome::not_found,
     .type = request_type::remove,
     .receive_count = 4,
     .ordered = false,
     .action = settle_action::release,
     .outcome = request_outcome::released,
     .detail = "receive 4 of 5"},
    {.what = "delete not found, unordered, receive 5",
     .lane = apply_outcome::not_found,
     .type = request_type::remove,
     .receive_count = 5,
     .ordered = false,
     .outcome = request_outcome::not_found,
     .detail = deleted_nothing},
    {.what = "update not found, unordered, receive 9",
     .lane = apply_outcome::not_found,
     .type = request_type::update,
     .receive_count = 9,
     .ordered = false,
     .outcome = request_outcome::not_found,
     .detail = changed_nothing},
    {.what = "a create overtakes nothing",
     .lane = apply_outcome::not_found,
     .ordered = false,
     .outcome = request_outcome::not_found,
     .detail = "widget not found"},
    // stale (a fenced store refused it): settled, acked, not an error, on any source
    {.what = "stale update, unordered",
     .lane = detail::refused_as_stale{.position = "std:1:m", .stored = "std:2:n"},
     .type = request_type::update,
     .ordered = false,
     .outcome = request_outcome::stale,
     .detail = "position std:1:m is not newer than the widget's std:2:n"},
    {.what = "stale create, on its third receive",
     .lane = detail::refused_as_stale{.position = "s3:a", .stored = "s3:b"},
     .receive_count = 3,
     .outcome = request_outcome::stale,
     .detail = "s3:b; nothing changed"},
    // transient: retried while attempts are left, then released, holding the widget
    {.what = "transient, attempt 1 of 3", .lane = transient, .retry = true},
    {.what = "transient, attempt 2 of 3, unordered",
     .lane = transient,
     .type = request_type::update,
     .attempts = 2,
     .ordered = false,
     .retry = true},
    {.what = "transient, attempt 3 of 3",
     .lane = transient,
     .type = request_type::update,
     .attempts = 3,
     .action = settle_action::release,
     .outcome = request_outcome::released,
     .holds_widget = true,
     .detail = "503 SlowDown"},
    {.what = "transient, last attempt, unordered",
     .lane = transient,
     .type = request_type::remove,
     .attempts = 3,
     .ordered = false,
     .action = settle_action::release,
     .outcome = request_outcome::released,
     .holds_widget = true,
     .detail = "503 SlowDown"},
    // permanent: released at once, counted failed, holding the widget
    {.what = "permanent, attempts left",
     .lane = permanent,
     .action = settle_action::release,
     .outcome = request_outcome::failed,
     .holds_widget = true,
     .detail = "403 AccessDenied"},
    // bad request: rejected with the store's message
    {.what = "bad request",
     .lane = bad,
     .action = settle_action::reject,
     .outcome = request_outcome::rejected,
     .detail = "item too large"},
    {.what = "bad request, unordered",
     .lane = bad,
     .type = request_type::update,
     .ordered = false,
     .action = settle_action::reject,
     .outcome = request_outcome::rejected,
     .detail = "item too large"},
    // held behind an earlier request: released, naming it; the store was not called
    {.what = "held",
     .lane = held_behind{"1700000000001"},
     .type = request_type::update,
     .attempts = 0,
     .action = settle_action::release,
     .outcome = request_outcome::released,
     .detail = "1700000000001"},
    {.what = "held, unordered",
     .lane = held_behind{"m-7"},
     .type = request_type::remove,
     .attempts = 0,
     .receive_count = 3,
     .ordered = false,
     .action = settle_action::release,
     .outcome = request_outcome::released,
     .detail = "m-7"},
};

TEST(settle_decision, follows_the_table) {
  for (const row& each : rows) {
    SCOPED_TRACE(std::string(each.what));
    const auto decision = detail::decide_settlement({.lane = each.lane,
                                                     .type = each.type,
                                                     .attempts = each.attempts,
                                                     .max_attempts = max_attempts,
                                                     .receive_count = each.receive_count,
                                                     .max_receives = max_receives,
                                                     .ordered = each.ordered});
    EXPECT_EQ(decision.retry, each.retry);
    if (each.retry)
      continue;  // nothing else of a retry decision applies
    EXPECT_EQ(decision.action, each.action);
    EXPECT_EQ(decision.outcome, each.outcome);
    EXPECT_EQ(decision.holds_widget, each.holds_widget);
    if (each.detail.empty()) {
      EXPECT_EQ(decision.detail, "");
    } else {
      EXPECT_NE(decision.detail.find(each.detail), std::string::npos) << decision.detail;
    }
  }
}

TEST(settle_decision, a_single_attempt_is_never_retried) {
  const auto decision = detail::decide_settlement(
      {.lane = transient, .type = request_type::create, .attempts = 1, .max_attempts = 1});
  EXPECT_FALSE(decision.retry);
  EXPECT_EQ(decision.action, settle_action::release);
  EXPECT_EQ(decision.outcome, request_outcome::released);
  EXPECT_TRUE(decision.holds_widget);
}

}  // namespace
