#pragma once
// http_event_loop: an http_transport (http_transport.hpp) that drives every
// request of its clients from one thread of its own, through one libcurl
// multi handle: curl_multi_perform and curl_multi_poll, woken by
// curl_multi_wakeup when a request arrives or a stop asks for one to end.
// It is the first step of the event-driven transport: any number of
// requests in flight cost one thread and one connection cache, not a
// thread, a multi handle and a connection each. Callers that block in
// send() still each wait on a thread of theirs; callers that start() and
// go on do not.
//
// Same requests and same judgement as http_client (curl_transfer.hpp holds
// both). A completion runs on the loop's thread: it must be short and must
// not wait for another request of the same loop.
//
// Stopping: a request's stop_token ends it at once with kind::cancelled
// unless its answer was complete. Destroying the loop ends every request in
// flight the same way, then joins the thread.

#include <widget_consumer/aws/curl_transfer.hpp>
#include <widget_consumer/aws/error.hpp>
#include <widget_consumer/aws/http_message.hpp>
#include <widget_consumer/aws/http_transport.hpp>

#include <curl/curl.h>

#include <cstddef>
#include <exception>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace widget_consumer::aws {

/// An http_transport that runs every request on one thread (this header's comment).
class http_event_loop final : public http_transport {
 public:
  /// Starts the loop's thread.
  explicit http_event_loop(http_options options = {})
      : options_(std::move(options)), multi_(curl_multi_init()) {
    if (!multi_)
      throw transport_error(transport_error::kind::permanent, "curl_multi_init failed");
    thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
  }

  http_event_loop(const http_event_loop&) = delete;
  http_event_loop& operator=(const http_event_loop&) = delete;

  /// Ends every request in flight (kind::cancelled) and joins the thread.
  ~http_event_loop() override {
    thread_.request_stop();
    curl_multi_wakeup(multi_.get());
    thread_.join();
  }

  /// Queues `request` for the loop; `done` runs on the loop's thread.
  void start(const http_request& request, std::stop_token cancel,
             http_completion done) noexcept override {
    if (cancel.stop_requested()) {
      done(failure(transport_error::kind::cancelled, request, "cancelled"));
      return;
    }
    try {
      auto call = std::make_unique<pending>(request, std::move(done));
      call->cancel = std::move(cancel);
      {
        std::lock_guard lock(mutex_);
        arriving_.push_back(std::move(call));
      }
      curl_multi_wakeup(multi_.get());
    } catch (...) {
      done(http_outcome{std::nullopt, std::current_exception()});
    }
  }

  /// The limits and TLS settings it was made with.
  const http_options& options() const noexcept override { return options_; }

 private:
  // One request from start() to its completion. Heap-held: curl points at
  // its curl_request while the transfer runs.
  struct pending {
    pending(const http_request& r, http_completion d) : request(r), done(std::move(d)) {}

    const http_request& request;
    http_completion done;
    std::stop_token cancel;
    detail::easy_handle easy;
    detail::curl_request call;
    // Wakes the loop when `cancel` is stopped; set by the loop's thread.
    std::optional<std::stop_callback<std::function<void()>>> on_cancel;
  };

  static http_outcome failure(transport_error::kind kind, const http_request& request,
                              std::string_view what) {
    return {std::nullopt, std::make_exception_ptr(transport_error(
                              kind, request.method + " " + detail::url_origin(request.url) + ": " +
                                        std::string(what)))};
  }

  void run(const std::stop_token& stop) {
    std::list<std::unique_ptr<pending>> running;
    while (!stop.stop_requested()) {
      admit(running);
      int still_running = 0;
      curl_multi_perform(multi_.get(), &still_running);
      finish_done(running);
      end_cancelled(running);
      // curl shortens the wait to its own next timer (the timeouts); the
      // second is only a ceiling, a wakeup ends it at once.
      curl_multi_poll(multi_.get(), nullptr, 0, 1000, nullptr);
    }
    // Stopping: whatever is in flight or still arriving ends as cancelled.
    {
      std::lock_guard lock(mutex_);
      for (auto& call : arriving_)
        running.push_back(std::move(call));
      arriving_.clear();
    }
    for (auto& call : running)
      complete(*call, failure(transport_error::kind::cancelled, call->request, "cancelled"));
  }

  // Takes what start() queued into the multi handle.
  void admit(std::list<std::unique_ptr<pending>>& running) {
    std::vector<std::unique_ptr<pending>> arrived;
    {
      std::lock_guard lock(mutex_);
      arrived.swap(arriving_);
    }
    for (auto& call : arrived) {
      try {
        call->easy = take_handle();
        call->call.prepare(call->easy.get(), share_.get(), options_, call->request);
        curl_easy_setopt(call->easy.get(), CURLOPT_PRIVATE, call.get());
        if (curl_multi_add_handle(multi_.get(), call->easy.get()) != CURLM_OK)
          throw transport_error(transport_error::kind::permanent, "curl_multi_add_handle failed");
        CURLM* multi = multi_.get();
        call->on_cancel.emplace(call->cancel,
                                std::function<void()>([multi] { curl_multi_wakeup(multi); }));
        running.push_back(std::move(call));
      } catch (...) {
        complete(*call, http_outcome{std::nullopt, std::current_exception()});
      }
    }
  }

  void finish_done(std::list<std::unique_ptr<pending>>& running) {
    int queued = 0;
    while (const CURLMsg* message = curl_multi_info_read(multi_.get(), &queued)) {
      if (message->msg != CURLMSG_DONE)
        continue;
      void* owner = nullptr;
      curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &owner);
      const CURLcode code = message->data.result;
      for (auto it = running.begin(); it != running.end(); ++it) {
        if (it->get() != owner)
          continue;
        http_outcome outcome;
        try {
          outcome.response = (*it)->call.finish((*it)->easy.get(), code, (*it)->request);
        } catch (...) {
          outcome.error = std::current_exception();
        }
        complete(**it, std::move(outcome));
        running.erase(it);
        break;
      }
    }
  }

  // A stopped request leaves the multi at once; curl closes its connection.
  void end_cancelled(std::list<std::unique_ptr<pending>>& running) {
    for (auto it = running.begin(); it != running.end();) {
      if ((*it)->cancel.stop_requested()) {
        complete(**it, failure(transport_error::kind::cancelled, (*it)->request, "cancelled"));
        it = running.erase(it);
      } else {
        ++it;
      }
    }
  }

  // Detaches the handle, keeps it for the next request, then calls the
  // completion: after it returns the caller may free the request.
  void complete(pending& call, http_outcome outcome) {
    call.on_cancel.reset();
    if (call.easy) {
      curl_multi_remove_handle(multi_.get(), call.easy.get());
      detail::curl_request::forget(call.easy.get());
      if (idle_.size() < max_idle)
        idle_.push_back(std::move(call.easy));
    }
    call.done(std::move(outcome));
  }

  detail::easy_handle take_handle() {
    if (!idle_.empty()) {
      auto handle = std::move(idle_.back());
      idle_.pop_back();
      return handle;
    }
    detail::easy_handle handle(curl_easy_init());
    if (!handle)
      throw transport_error(transport_error::kind::permanent, "curl_easy_init failed");
    return handle;
  }

  static constexpr std::size_t max_idle = 256;

  http_options options_;
  detail::curl_share share_;  // outlives the handles and the multi below
  detail::multi_handle multi_;
  std::vector<detail::easy_handle> idle_;  // the loop's thread only
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<pending>> arriving_;
  std::jthread thread_;  // last: joined before the rest goes
};

}  // namespace widget_consumer::aws
