#pragma once
// scripted_transport: an http_transport (aws/http_transport.hpp) that
// answers from a script instead of a socket, so what the AWS layer does with
// each way a request can end (an answer of any status, a timeout, a reset, a
// body cut short, a stop) is tested without a server.
//
// Each request takes the script's next step, and a request past the end of
// the script fails the test's expectation loudly (a permanent transport
// error naming it). A step may finish on the caller's thread, as libcurl's
// transport does, or later on a thread of its own, as an event loop would:
// then a stop of the request's token ends it at once with kind::cancelled,
// which is what the contract asks of every transport.
#include "widget_consumer/aws/http_transport.hpp"

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace widget_consumer::testing {

class scripted_transport final : public aws::http_transport {
 public:
  struct step {
    std::optional<aws::http_response> answer;  // else `error`
    aws::transport_error::kind error = aws::transport_error::kind::other;
    std::string error_text;
    // > 0: finished on a thread of its own after this long (a slow server).
    std::chrono::milliseconds delay{0};
  };

  ~scripted_transport() override {
    std::vector<std::jthread> threads;
    {
      std::lock_guard lock(mutex_);
      threads = std::move(threads_);
    }
    // jthread's destructor stops and joins: a step still waiting ends now.
  }

  // An answer of `status` with `body` and, for a JSON protocol, its type.
  scripted_transport& answer(long status, std::string body = {},
                             std::vector<aws::http_header> headers = {},
                             std::chrono::milliseconds delay = {}) {
    aws::http_response response;
    response.status = status;
    response.body = std::move(body);
    response.headers = std::move(headers);
    step s;
    s.answer = std::move(response);
    s.delay = delay;
    return push(std::move(s));
  }

  // No answer: the transport_error a real transport throws for that failure
  // (http.hpp's classify(): a reset or a body cut short is kind::other).
  scripted_transport& fail(aws::transport_error::kind kind, std::string text,
                           std::chrono::milliseconds delay = {}) {
    return push(failure(kind, std::move(text), delay));
  }

  void start(const aws::http_request& request, std::stop_token cancel,
             aws::http_completion done) noexcept override {
    std::optional<step> next;
    {
      std::lock_guard lock(mutex_);
      seen_.push_back(request);
      if (!script_.empty()) {
        next = std::move(script_.front());
        script_.pop_front();
      }
    }
    if (!next) {
      done(
          outcome_of(failure(aws::transport_error::kind::permanent,
                             request.method + " " + request.url + ": past the end of the script")));
      return;
    }
    if (next->delay.count() == 0) {
      done(outcome_of(*next));
      return;
    }
    std::lock_guard lock(mutex_);
    threads_.emplace_back([this, cancel = std::move(cancel), done = std::move(done),
                           next = std::move(*next)](std::stop_token shutdown) mutable {
      finish_later(std::move(next), cancel, shutdown, done);
    });
  }

  const aws::http_options& options() const noexcept override { return options_; }

  // Every request started, in order, as it was when it was started.
  std::vector<aws::http_request> requests() const {
    std::lock_guard lock(mutex_);
    return seen_;
  }

  std::size_t steps_left() const {
    std::lock_guard lock(mutex_);
    return script_.size();
  }

 private:
  static step failure(aws::transport_error::kind kind, std::string text,
                      std::chrono::milliseconds delay = {}) {
    step s;
    s.error = kind;
    s.error_text = std::move(text);
    s.delay = delay;
    return s;
  }

  scripted_transport& push(step s) {
    std::lock_guard lock(mutex_);
    script_.push_back(std::move(s));
    return *this;
  }

  static aws::http_outcome outcome_of(step s) {
    aws::http_outcome outcome;
    if (s.answer)
      outcome.response = std::move(*s.answer);
    else
      outcome.error = std::make_exception_ptr(aws::transport_error(s.error, s.error_text));
    return outcome;
  }

  // Waits out the step's delay unless the request is stopped first (or the
  // transport goes away), as a transfer waiting on a slow server would.
  static void finish_later(step s, const std::stop_token& cancel, const std::stop_token& shutdown,
                           const aws::http_completion& done) {
    std::mutex mutex;
    std::condition_variable_any wake;
    std::unique_lock lock(mutex);
    std::stop_callback on_cancel(cancel, [&] {
      std::lock_guard woken(mutex);
      wake.notify_all();
    });
    const bool stopped =
        wake.wait_for(lock, shutdown, s.delay, [&] { return cancel.stop_requested(); });
    lock.unlock();
    if (stopped || shutdown.stop_requested())
      s = failure(aws::transport_error::kind::cancelled, "cancelled");
    done(outcome_of(std::move(s)));
  }

  mutable std::mutex mutex_;
  std::deque<step> script_;
  std::vector<aws::http_request> seen_;
  std::vector<std::jthread> threads_;
  aws::http_options options_;
};

}  // namespace widget_consumer::testing
