#pragma once
// http_transport: the one seam between the AWS layer and the network. A
// request goes in; an answer of any status, or the transport_error saying
// why none came, comes out. service_client (client.hpp) signs, retries and
// reads answers above it and knows nothing of sockets below it.
//
// A transport may finish a request on a thread of its own (an event loop),
// so the interface is asynchronous: start() returns at once and calls its
// completion exactly once, later or before returning. send() is start()
// and a wait, for a caller that has nothing else to do; a transport that
// works on the caller's thread (http.hpp's, libcurl easy handles in a pool)
// overrides it to skip the hand-off.
//
// What a transport must keep, whatever it is built on (the contract the
// AWS layer relies on, and tests/unit/service_client_test.cpp checks
// through a double):
//   - an answer is returned whatever its status; judging it is the caller's;
//   - no answer -> transport_error of the kind that says why (timeout,
//     connect, tls, too_large, cancelled, permanent, other): retry.hpp
//     decides from the kind alone;
//   - a stop of `cancel` ends the request at once with kind::cancelled,
//     unless its answer was already complete;
//   - the request (and its body, sent in place) lives until the completion.

#include <widget_consumer/aws/error.hpp>
#include <widget_consumer/aws/http_message.hpp>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <utility>

namespace widget_consumer::aws {

/// How the HTTP transport connects, verifies and limits each request.
struct http_options {
  std::chrono::milliseconds connect_timeout{3000};  ///< to have a connection, TLS included
  std::chrono::milliseconds total_timeout{30000};   ///< for the whole exchange, body included
  std::string ca_bundle;  ///< a PEM file; empty: the system's default store
  /// An answer's body (after decompression) may not be larger than this; the
  /// transfer is aborted with transport_error kind::too_large the moment it
  /// would be, or at once when Content-Length announces more. The largest AWS
  /// answers we read (10 SQS messages of 1 MiB, JSON-escaped) stay well below.
  std::size_t max_response_bytes = std::size_t{64} << 20;
};

/// What one request came to: the answer, or the exception (a transport_error)
/// that says why there is none. Exactly one of the two is set.
struct http_outcome {
  std::optional<http_response> response;  ///< the answer, of any status
  std::exception_ptr error;               ///< else why none came

  /// The answer, or the error thrown.
  http_response take() {
    if (error)
      std::rethrow_exception(error);
    return std::move(*response);
  }
};

/// What a transport calls, once, with a request's outcome; it must not throw.
using http_completion = std::function<void(http_outcome)>;

/// The interface every HTTP transport implements (this header's comment).
class http_transport {
 public:
  virtual ~http_transport() = default;

  /// Starts sending `request`; `done` is called exactly once, on any thread,
  /// possibly before start() returns. `request` must stay alive and unchanged
  /// until then. Never throws: a failure to start is an outcome too.
  virtual void start(const http_request& request, std::stop_token cancel,
                     http_completion done) noexcept = 0;

  /// Sends one request and returns the answer, whatever its status; throws
  /// the transport_error of its outcome. Safe to call from many threads.
  virtual http_response send(const http_request& request, std::stop_token cancel = {}) {
    struct waiter {
      std::mutex mutex;
      std::condition_variable finished;
      std::optional<http_outcome> outcome;
    } wait;
    start(request, std::move(cancel), [&wait](http_outcome outcome) {
      // Notified under the lock: `wait` lives on the caller's stack, which
      // may unwind the moment the caller sees the outcome.
      std::lock_guard lock(wait.mutex);
      wait.outcome = std::move(outcome);
      wait.finished.notify_one();
    });
    std::unique_lock lock(wait.mutex);
    wait.finished.wait(lock, [&] { return wait.outcome.has_value(); });
    return wait.outcome->take();
  }

  /// The limits and TLS settings it was made with.
  virtual const http_options& options() const noexcept = 0;
};

}  // namespace widget_consumer::aws
