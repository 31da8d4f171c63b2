#pragma once
// What both HTTP transports (http.hpp's pool, http_event_loop.hpp's loop)
// do with libcurl alike: the one-time initialisation, the shared DNS and TLS
// caches, every option a request's transfer is given, the callbacks that
// collect its answer within the size limits, and how a transfer's end
// becomes an answer or a transport_error. One place, so the two cannot
// differ in what they send or in how they judge a failure.
//
// TLS verification of peer and host is always on; only the CA bundle can be
// chosen. Redirects are never followed (a redirected AWS request must be
// signed again).

#include <widget_consumer/aws/error.hpp>
#include <widget_consumer/aws/http_message.hpp>
#include <widget_consumer/aws/http_transport.hpp>

#include <curl/curl.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace widget_consumer::aws::detail {

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

struct slist_deleter {
  void operator()(curl_slist* list) const noexcept { curl_slist_free_all(list); }
};
using header_list = std::unique_ptr<curl_slist, slist_deleter>;

// The DNS and TLS session caches every handle of one transport shares, with
// the locks libcurl asks for. Heap-held by its owner and never moved: the
// lock callbacks point at it.
class curl_share {
 public:
  curl_share() {
    curl_global_init_once();
    share_ = curl_share_init();
    if (share_ == nullptr)
      throw transport_error(transport_error::kind::permanent, "curl_share_init failed");
    curl_share_setopt(share_, CURLSHOPT_LOCKFUNC, &curl_share::lock);
    curl_share_setopt(share_, CURLSHOPT_UNLOCKFUNC, &curl_share::unlock);
    curl_share_setopt(share_, CURLSHOPT_USERDATA, this);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  }
  curl_share(const curl_share&) = delete;
  curl_share& operator=(const curl_share&) = delete;
  ~curl_share() { curl_share_cleanup(share_); }  // after every handle that uses it

  CURLSH* get() const noexcept { return share_; }

 private:
  static void lock(CURL*, curl_lock_data data, curl_lock_access, void* self) {
    static_cast<curl_share*>(self)->locks_[slot(data)].lock();
  }
  static void unlock(CURL*, curl_lock_data data, void* self) {
    static_cast<curl_share*>(self)->locks_[slot(data)].unlock();
  }
  static std::size_t slot(curl_lock_data data) noexcept {
    const auto index = static_cast<std::size_t>(data);
    return index < CURL_LOCK_DATA_LAST ? index : 0;
  }

  CURLSH* share_ = nullptr;
  std::array<std::mutex, CURL_LOCK_DATA_LAST> locks_;
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

// One request's state while curl works on it: what the callbacks write
// into, the header list and the error text. curl points at its members, so
// it stays where it is from prepare() until forget().
class curl_request {
 public:
  curl_request() = default;
  curl_request(const curl_request&) = delete;
  curl_request& operator=(const curl_request&) = delete;

  // Sets every option of `curl` (reset first: it keeps its connections and
  // caches) for `request`, which must outlive the transfer.
  void prepare(CURL* curl, CURLSH* share, const http_options& opts, const http_request& request) {
    curl_easy_reset(curl);
    // AWS answers carry about a dozen headers: one allocation, not five.
    t_.response.headers.reserve(16);
    t_.head = request.method == "HEAD";
    t_.max_body = opts.max_response_bytes;
    curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(curl, CURLOPT_SHARE, share);
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
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t_);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t_);

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

    headers_.reset();
    // curl copies each line, so one buffer serves them all.
    std::string line;
    auto add_header = [&](std::string_view name, std::string_view separator,
                          std::string_view value) {
      line.assign(name).append(separator).append(value);
      curl_slist* extended = curl_slist_append(headers_.get(), line.c_str());
      if (extended == nullptr)
        throw transport_error(transport_error::kind::permanent, "out of memory building headers");
      (void)headers_.release();
      headers_.reset(extended);
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
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers_.get());

    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_text_.data());
  }

  // The answer to a transfer that ended with `code`, or the transport_error
  // that says why there is none.
  http_response finish(CURL* curl, CURLcode code, const http_request& request) {
    if (code != CURLE_OK && !t_.too_large.empty())
      throw transport_error(transport_error::kind::too_large,
                            request.method + " " + url_origin(request.url) + ": " + t_.too_large);
    if (code != CURLE_OK) {
      std::string detail_text =
          error_text_[0] != '\0' ? error_text_.data() : curl_easy_strerror(code);
      throw transport_error(classify(code),
                            request.method + " " + url_origin(request.url) + ": " + detail_text);
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &t_.response.status);
    return std::move(t_.response);
  }

  // The header list and the error buffer die with this object: the handle
  // must not keep pointing at them, however the transfer ended.
  static void forget(CURL* curl) noexcept {
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
  }

 private:
  transfer t_;
  header_list headers_;
  std::array<char, CURL_ERROR_SIZE> error_text_{};
};

}  // namespace widget_consumer::aws::detail
