#pragma once
// The HTTP transport (http_transport.hpp) of every client unless one is
// given: libcurl easy handles in a pool, so connections stay open
// between calls (keep-alive) and many threads can send() at once, each on a
// handle of its own. The handles share one CURLSH for the DNS cache and the
// TLS session cache, which makes a new connection to a known host cheap.
//
// What is sent and how an answer or a failure is judged is curl_transfer.hpp's,
// shared with the event loop (http_event_loop.hpp). Failures to get an
// answer throw transport_error (error.hpp); an answer of any status is
// returned as is: judging statuses is the caller's job.
//
// Cancellation: send() takes a std::stop_token. Stopping its source aborts the
// transfer at once (a stop_callback wakes the transfer's poll), even while it
// waits for the first byte of the answer, and send() throws transport_error
// kind::cancelled, which is never retried. Each pooled handle is driven by a
// multi handle of its own rather than curl_easy_perform, whose idle wait only
// looks at a progress callback about once a second. The multi handle holds the
// handle's connection cache, so keep-alive works as before; an aborted
// transfer's connection is closed by curl and the next call opens a new one.

#include <widget_consumer/aws/curl_transfer.hpp>
#include <widget_consumer/aws/error.hpp>
#include <widget_consumer/aws/http_message.hpp>
#include <widget_consumer/aws/http_transport.hpp>

#include <curl/curl.h>

#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

namespace widget_consumer::aws {

namespace detail {

// A pooled handle and the multi handle that drives its transfers. The easy
// handle is attached to the multi only during a transfer; between transfers
// the multi keeps the open connection. Members are destroyed easy first, then
// the multi with its connections.
struct pooled_handle {
  multi_handle multi;
  easy_handle easy;
};

// The state every handle of one client shares. Heap-held and never moved:
// curl points at the share.
class curl_pool {
 public:
  explicit curl_pool(http_options options) : options_(std::move(options)) {}
  curl_pool(const curl_pool&) = delete;
  curl_pool& operator=(const curl_pool&) = delete;
  ~curl_pool() { idle_.clear(); }  // handles go before the share they use

  const http_options& options() const noexcept { return options_; }
  CURLSH* share() const noexcept { return share_.get(); }

  pooled_handle checkout() {
    {
      std::lock_guard lock(idle_mutex_);
      if (!idle_.empty()) {
        pooled_handle handle = std::move(idle_.back());
        idle_.pop_back();
        return handle;
      }
    }
    pooled_handle handle{multi_handle(curl_multi_init()), easy_handle(curl_easy_init())};
    if (!handle.multi || !handle.easy)
      throw transport_error(transport_error::kind::permanent, "curl_easy_init failed");
    return handle;
  }

  void checkin(pooled_handle handle) {
    std::lock_guard lock(idle_mutex_);
    // Past this many idle handles (and their open connections) a burst's
    // extras are closed rather than kept forever.
    if (idle_.size() < max_idle)
      idle_.push_back(std::move(handle));
  }

  static constexpr std::size_t max_idle = 64;

 private:
  http_options options_;
  curl_share share_;  // declared before idle_: destroyed after the handles
  std::mutex idle_mutex_;
  std::vector<pooled_handle> idle_;
};

}  // namespace detail

// Works on the caller's thread: send() is the transfer itself, and start()
/// a send() that hands its outcome to the completion before returning.
class http_client final : public http_transport {
 public:
  /// A transport with its own connection pool, configured by `options`.
  explicit http_client(http_options options = {})
      : pool_(std::make_unique<detail::curl_pool>(std::move(options))) {}

  /// The limits and TLS settings it was made with.
  const http_options& options() const noexcept override { return pool_->options(); }

  /// `done` must not throw.
  void start(const http_request& request, std::stop_token cancel,
             http_completion done) noexcept override {
    http_outcome outcome;
    try {
      outcome.response = send(request, std::move(cancel));
    } catch (...) {
      outcome.error = std::current_exception();
    }
    done(std::move(outcome));
  }

  /// Sends one request and returns the answer, whatever its status. Safe to
  /// call from many threads at once. Throws transport_error when no answer
  /// came (connect failure, timeout, TLS failure, reset), kind::cancelled when
  /// `cancel` was stopped before the answer was complete.
  http_response send(const http_request& request, std::stop_token cancel = {}) override {
    if (cancel.stop_requested())
      throw cancelled(request);
    detail::pooled_handle handle = pool_->checkout();
    // Back to the pool on every path; curl keeps the connection if it is
    // still good and closes it itself otherwise (an aborted transfer's).
    struct return_handle {
      detail::curl_pool& pool;
      detail::pooled_handle& handle;
      ~return_handle() {
        if (handle.easy && handle.multi)
          pool.checkin(std::move(handle));
      }
    } guard{*pool_, handle};
    return perform(handle, request, cancel);
  }

 private:
  static transport_error cancelled(const http_request& request) {
    return transport_error(transport_error::kind::cancelled,
                           request.method + " " + detail::url_origin(request.url) + ": cancelled");
  }

  // curl_easy_perform, with a cancellation check: the same transfer driven
  // through the handle's multi handle. Returns the transfer's result, or
  // nullopt when `cancel` stopped it first.
  static std::optional<CURLcode> run_transfer(const detail::pooled_handle& handle,
                                              const std::stop_token& cancel) {
    CURLM* multi = handle.multi.get();
    CURL* curl = handle.easy.get();
    if (curl_multi_add_handle(multi, curl) != CURLM_OK)
      throw transport_error(transport_error::kind::permanent, "curl_multi_add_handle failed");
    // Removing the handle ends the transfer; curl closes the connection of one
    // cut short, so the pool never hands out a connection in a bad state.
    struct detach {
      CURLM* multi;
      CURL* curl;
      ~detach() { curl_multi_remove_handle(multi, curl); }
    } detached{multi, curl};
    // Declared after `detached`, so deregistered before the handle leaves the
    // multi; its destructor waits for a wakeup running on another thread.
    struct wake {
      CURLM* multi;
      void operator()() const noexcept { curl_multi_wakeup(multi); }
    };
    std::optional<std::stop_callback<wake>> on_cancel;
    if (cancel.stop_possible())
      on_cancel.emplace(cancel, wake{multi});
    for (;;) {
      int running = 0;
      if (const CURLMcode code = curl_multi_perform(multi, &running); code != CURLM_OK)
        throw transport_error(transport_error::kind::other,
                              std::string("curl_multi_perform: ") + curl_multi_strerror(code));
      if (running == 0)
        break;
      // A finished transfer wins over a late cancel: its answer is complete.
      if (cancel.stop_requested())
        return std::nullopt;
      // curl shortens the wait to its own next timer (the timeouts); the
      // second is only a ceiling, the wakeup ends it on cancel.
      if (const CURLMcode code = curl_multi_poll(multi, nullptr, 0, 1000, nullptr);
          code != CURLM_OK)
        throw transport_error(transport_error::kind::other,
                              std::string("curl_multi_poll: ") + curl_multi_strerror(code));
    }
    int queued = 0;
    while (const CURLMsg* message = curl_multi_info_read(multi, &queued))
      if (message->msg == CURLMSG_DONE && message->easy_handle == curl)
        return message->data.result;
    return CURLE_GOT_NOTHING;  // curl ended the transfer without saying how: not an answer
  }

  http_response perform(const detail::pooled_handle& handle, const http_request& request,
                        const std::stop_token& cancel) {
    CURL* curl = handle.easy.get();
    detail::curl_request call;
    call.prepare(curl, pool_->share(), pool_->options(), request);
    struct forget_frame {
      CURL* curl;
      ~forget_frame() { detail::curl_request::forget(curl); }
    } forget{curl};
    const std::optional<CURLcode> result = run_transfer(handle, cancel);
    if (!result)
      throw cancelled(request);
    return call.finish(curl, *result, request);
  }

  // unique_ptr: the client moves, the pool (pointed at by curl) does not.
  std::unique_ptr<detail::curl_pool> pool_;
};

}  // namespace widget_consumer::aws
