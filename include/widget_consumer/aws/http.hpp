#pragma once
// The HTTP transport (http_transport.hpp) of every client unless one is
// given: libcurl easy handles in a pool, so connections stay open
// between calls (keep-alive) and many threads can send() at once, each on a
// handle of its own. The handles share one CURLSH for the DNS cache and the
// TLS session cache, which makes a new connection to a known host cheap.
//
// TLS verification of peer and host is always on; only the CA bundle can be
// chosen. Failures to get an answer throw transport_error (error.hpp); an
// answer of any status is returned as is: judging statuses is the caller's job.
//
// Cancellation: send() takes a std::stop_token. Stopping its source aborts the
// transfer at once (a stop_callback wakes the transfer's poll), even while it
// waits for the first byte of the answer, and send() throws transport_error
// kind::cancelled, which is never retried. Each pooled handle is driven by a
// multi handle of its own rather than curl_easy_perform, whose idle wait only
// looks at a progress callback about once a second. The multi handle holds the
// handle's connection cache, so keep-alive works as before; an aborted
// transfer's connection is closed by curl and the next call opens a new one.

#include <widget_consumer/aws/error.hpp>
#include <widget_consumer/aws/http_message.hpp>
#include <widget_consumer/aws/http_transport.hpp>

#include <curl/curl.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace widget_consumer::aws {

namespace detail {

// curl_global_init is not thread-safe in every libcurl we meet, so it runs
// exactly once. There is deliberately no curl_global_cleanup: other static
// objects may still use curl during exit, and the OS reclaims everything.
inline void curl_global_init_once() {
  static const CURLcode code = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (code != CURLE_OK)
    throw transport_error(
        transport_error::kind::permanent,
        std::string("libcurl initialisation failed: ") + curl_easy_strerror(code));
}

// "https://host:port" of a URL: what an error message may show. The path and
// query are left out because a presigned URL carries a signature and maybe a
// session token there.
inline std::string url_origin(std::string_view url) {
  const auto scheme_end = url.find("://");
  const auto host_begin = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
  auto host_end = url.find_first_of("/?#", host_begin);
  if (host_end == std::string_view::npos)
    host_end = url.size();
  auto origin = url.substr(0, host_end);
  // Credentials in the authority ("user:pass@host") never reach a message.
  if (const auto at = origin.rfind('@'); at != std::string_view::npos && at > host_begin)
    return std::string(url.substr(0, host_begin)) + std::string(origin.substr(at + 1));
  return std::string(origin);
}

inline transport_error::kind classify(CURLcode code) noexcept {
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return transport_error::kind::timeout;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
      return transport_error::kind::connect;
    case CURLE_SSL_CONNECT_ERROR:
      return transport_error::kind::tls;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_OUT_OF_MEMORY:
      return transport_error::kind::permanent;
    default:
      return transport_error::kind::other;
  }
}

struct easy_deleter {
  void operator()(CURL* handle) const noexcept { curl_easy_cleanup(handle); }
};
using easy_handle = std::unique_ptr<CURL, easy_deleter>;

struct multi_deleter {
  void operator()(CURLM* handle) const noexcept { curl_multi_cleanup(handle); }
};
using multi_handle = std::unique_ptr<CURLM, multi_deleter>;

// A pooled handle and the multi handle that drives its transfers. The easy
// handle is attached to the multi only during a transfer; between transfers
// the multi keeps the open connection. Members are destroyed easy first, then
// the multi with its connections.
struct pooled_handle {
  multi_handle multi;
  easy_handle easy;
};

struct slist_deleter {
  void operator()(curl_slist* list) const noexcept { curl_slist_free_all(list); }
};
using header_list = std::unique_ptr<curl_slist, slist_deleter>;

// The state every handle of one client shares. Heap-held and never moved, so
// the share's lock callbacks can point at it.
class curl_pool {
 public:
  explicit curl_pool(http_options options) : options_(std::move(options)) {
    curl_global_init_once();
    share_ = curl_share_init();
    if (share_ == nullptr)
      throw transport_error(transport_error::kind::permanent, "curl_share_init failed");
    curl_share_setopt(share_, CURLSHOPT_LOCKFUNC, &curl_pool::lock);
    curl_share_setopt(share_, CURLSHOPT_UNLOCKFUNC, &curl_pool::unlock);
    curl_share_setopt(share_, CURLSHOPT_USERDATA, this);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  }
  curl_pool(const curl_pool&) = delete;
  curl_pool& operator=(const curl_pool&) = delete;
  ~curl_pool() {
    idle_.clear();  // handles go before the share they use
    curl_share_cleanup(share_);
  }

  const http_options& options() const noexcept { return options_; }
  CURLSH* share() const noexcept { return share_; }

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
  static void lock(CURL*, curl_lock_data data, curl_lock_access, void* self) {
    static_cast<curl_pool*>(self)->locks_[slot(data)].lock();
  }
  static void unlock(CURL*, curl_lock_data data, void* self) {
    static_cast<curl_pool*>(self)->locks_[slot(data)].unlock();
  }
  static std::size_t slot(curl_lock_data data) noexcept {
    const auto index = static_cast<std::size_t>(data);
    return index < CURL_LOCK_DATA_LAST ? index : 0;
  }

  http_options options_;
  CURLSH* share_ = nullptr;
  std::array<std::mutex, CURL_LOCK_DATA_LAST> locks_;
  std::mutex idle_mutex_;
  std::vector<pooled_handle> idle_;
};

// The header block of an answer may not be larger than this: AWS sends a
// few hundred bytes, and a server that never ends its headers must not fill
// memory before the timeout.
inline constexpr std::size_t max_header_bytes = std::size_t{1} << 20;

// What the callbacks write into while a transfer runs.
struct transfer {
  http_response response;
  bool head = false;  // a HEAD answer's Content-Length sizes a body that never comes
  std::size_t max_body = 0;
  std::size_t header_bytes = 0;
  std::string too_large;  // why the transfer was aborted, when it was for its size
};

// Returning less than was handed over makes curl abort with CURLE_WRITE_ERROR.
inline std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<transfer*>(user);
  const std::size_t length = size * count;
  if (length > t->max_body - t->response.body.size()) {
    t->too_large = "response body larger than the limit of " + std::to_string(t->max_body) +
                   " bytes (http_options::max_response_bytes)";
    return 0;
  }
  t->response.body.append(data, length);
  return length;
}

inline std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<transfer*>(user);
  const std::size_t length = size * count;
  t->header_bytes += length;
  if (t->header_bytes > max_header_bytes) {
    t->too_large = "response headers larger than " + std::to_string(max_header_bytes) + " bytes";
    return 0;
  }
  std::string_view line(data, length);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n'))
    line.remove_suffix(1);
  if (line.starts_with("HTTP/")) {
    // A new status line (after "100 Continue"): only the final block counts.
    t->response.headers.clear();
    t->header_bytes = length;
    return length;
  }
  const auto colon = line.find(':');
  if (colon == std::string_view::npos)
    return length;
  auto value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
    value.remove_prefix(1);
  const auto name = line.substr(0, colon);
  // Content-Length sizes the body buffer once instead of letting it grow in
  // steps; it is only a hint (gzip changes the size), so it is capped.
  // An announced body over the limit is refused before a byte of it comes.
  if (!t->head && detail::iequals(name, "Content-Length")) {
    std::size_t expected = 0;
    const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), expected);
    if (ec == std::errc::result_out_of_range || (ec == std::errc{} && expected > t->max_body)) {
      t->too_large = "Content-Length " + std::string(value) + " over the limit of " +
                     std::to_string(t->max_body) + " bytes (http_options::max_response_bytes)";
      return 0;
    }
    constexpr std::size_t max_reserve = std::size_t{8} << 20;
    if (ec == std::errc{} && ptr != nullptr)
      t->response.body.reserve(std::min(expected, max_reserve));
  }
  t->response.headers.push_back({std::string(name), std::string(value)});
  return length;
}

}  // namespace detail

/// Works on the caller's thread: send() is the transfer itself, and start()
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
    const http_options& opts = pool_->options();
    // Reset clears every option but keeps the handle's open connections and
    // caches, which is the point of pooling it.
    curl_easy_reset(curl);

    detail::transfer t;
    // AWS answers carry about a dozen headers: one allocation, not five.
    t.response.headers.reserve(16);
    t.head = request.method == "HEAD";
    t.max_body = opts.max_response_bytes;
    curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(curl, CURLOPT_SHARE, pool_->share());
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // signals and threads do not mix
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(opts.connect_timeout.count()));
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(opts.total_timeout.count()));
    curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!opts.ca_bundle.empty())
      curl_easy_setopt(curl, CURLOPT_CAINFO, opts.ca_bundle.c_str());
    // Redirects are not followed: a redirected AWS request must be re-signed.
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    // S3 keys may hold "." and ".." segments; they are part of the key and of
    // the signed path, so curl must not squash them.
    curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");  // every encoding curl can decode
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &detail::on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &detail::on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);

    const std::string& method = request.method;
    const bool has_body = !request.body.empty() || method == "POST" || method == "PUT";
    if (method == "HEAD") {
      curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else if (method == "GET" && !has_body) {
      curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    } else {
      if (method != "POST")
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
      if (has_body) {
        // POSTFIELDS points at the request's body: no copy, however large.
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                         static_cast<curl_off_t>(request.body.size()));
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
      }
    }

    detail::header_list headers;
    // curl copies each line, so one buffer serves them all.
    std::string line;
    auto add_header = [&](std::string_view name, std::string_view separator,
                          std::string_view value) {
      line.assign(name).append(separator).append(value);
      curl_slist* extended = curl_slist_append(headers.get(), line.c_str());
      if (extended == nullptr)
        throw transport_error(transport_error::kind::permanent, "out of memory building headers");
      (void)headers.release();
      headers.reset(extended);
    };
    for (const auto& header : request.headers)
      // "Name;" sends a header with an empty value; "Name:" would remove it.
      add_header(header.name, header.value.empty() ? ";" : ": ", header.value);
    // curl would otherwise add headers of its own to a body: a form
    // Content-Type nobody asked for, and an Expect that costs a round trip.
    if (has_body && !request.header("Content-Type"))
      add_header("Content-Type", ":", "");
    if (!request.header("Expect"))
      add_header("Expect", ":", "");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());

    std::array<char, CURL_ERROR_SIZE> error_text{};
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_text.data());
    // The header list and the error buffer die with this frame; the handle
    // must not keep them, however the transfer ends.
    struct forget_frame {
      CURL* curl;
      ~forget_frame() {
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
        curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
      }
    } forget{curl};
    const std::optional<CURLcode> result = run_transfer(handle, cancel);
    if (!result)
      throw cancelled(request);
    const CURLcode code = *result;
    if (code != CURLE_OK && !t.too_large.empty())
      throw transport_error(transport_error::kind::too_large,
                            method + " " + detail::url_origin(request.url) + ": " + t.too_large);
    if (code != CURLE_OK) {
      std::string detail_text =
          error_text[0] != '\0' ? error_text.data() : curl_easy_strerror(code);
      throw transport_error(detail::classify(code),
                            method + " " + detail::url_origin(request.url) + ": " + detail_text);
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &t.response.status);
    return std::move(t.response);
  }

  // unique_ptr: the client moves, the pool (pointed at by curl) does not.
  std::unique_ptr<detail::curl_pool> pool_;
};

}  // namespace widget_consumer::aws
