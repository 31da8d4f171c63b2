#pragma once
// What a widget store's apply() returns, and the error it throws for a
// failure it understands: the kind of failure decides what the consumer does
// with the request (concepts.hpp, widget_store; docs/concepts.md).

#include <stdexcept>
#include <string>

namespace widget_consumer {

/// stale: only from a fenced apply (concepts.hpp, position_fencing): the
/// widget is stored at a position the request's is not newer than, so the
/// request changed nothing.
enum class apply_outcome { applied, not_found, stale };

/// What a fenced apply returns: the outcome and, for a stale request, the
/// position the widget is stored at (for the log; may be empty when the
/// store could not read it back).
struct fenced_outcome {
  apply_outcome outcome = apply_outcome::applied;  ///< applied, not found, or stale
  std::string stored_position{};                   ///< the stale request's stored position
};

/// How a store failed, which decides what the consumer does with the request.
enum class store_failure {
  transient,    ///< throttling, 5xx, network: retried, then released
  permanent,    ///< access denied, missing table: released and counted failed
  bad_request,  ///< this request can never be stored (a key that escapes the
                ///< store, an item too large): rejected with the message
};

/// The one error type a store throws for a failure it understands. Anything
/// else derived from std::exception counts as store_failure::permanent.
class store_error : public std::runtime_error {
 public:
  /// A failure of kind `failure`; `message` says what went wrong, without secrets.
  store_error(store_failure failure, const std::string& message)
      : std::runtime_error(message), failure_(failure) {}

  /// How the store failed.
  store_failure failure() const noexcept { return failure_; }
  /// True when a retry may succeed (a transient failure).
  bool retryable() const noexcept { return failure_ == store_failure::transient; }

 private:
  store_failure failure_;
};

}  // namespace widget_consumer
