#pragma once
// AWS credentials, the answer of one provider, and credentials_chain, which
// asks providers in order, caches the first answer and refreshes it before it
// expires, as the AWS SDKs do. The providers live in credential_providers.hpp
// (environment, container, IMDS), sts.hpp, sso.hpp, credential_process.hpp
// and profile_credentials.hpp; default_credentials.hpp puts them in the AWS
// SDKs' order. The secret key and session token never leave these headers in text
// form: describe() and operator<< redact them, no exception message includes
// them, and response bodies that hold them are never quoted.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace widget_consumer::aws {

/// The keys a request is signed with, and where they came from.
struct credentials {
  std::string access_key_id;      ///< the AKIA.../ASIA... key id
  std::string secret_access_key;  ///< the secret the signature is made with
  std::string session_token;      ///< empty for long-term keys
  /// When temporary keys stop working; unset: never.
  std::optional<std::chrono::system_clock::time_point> expiration;
  /// Where they were found ("environment", "assume role arn:... via profile
  /// dev", ...), for messages that must say which identity was used without
  /// showing it. Never a secret. Not part of
  /// the identity: two equal keys from two places are equal credentials.
  std::string source = {};

  /// True when there are no keys to sign with.
  bool empty() const noexcept { return access_key_id.empty() || secret_access_key.empty(); }
  /// The same identity: keys, token and expiration equal, wherever they came from.
  bool operator==(const credentials& other) const noexcept {
    return access_key_id == other.access_key_id && secret_access_key == other.secret_access_key &&
           session_token == other.session_token && expiration == other.expiration;
  }
};

/// "AKIDEXAMPLE (secret ****, session token ****, expires 2024-01-01T00:00:00Z)":
/// the key id is not secret (it appears in every Authorization header).
inline std::string describe(const credentials& creds) {
  std::string out =
      creds.access_key_id.empty() ? std::string("<no access key id>") : creds.access_key_id;
  out += creds.secret_access_key.empty() ? " (no secret" : " (secret ****";
  if (!creds.session_token.empty())
    out += ", session token ****";
  if (creds.expiration) {
    const auto seconds = std::chrono::floor<std::chrono::seconds>(*creds.expiration);
    const auto days = std::chrono::floor<std::chrono::days>(seconds);
    const std::chrono::year_month_day date{days};
    const std::chrono::hh_mm_ss time{seconds - days};
    auto two = [](long value) {
      return std::string(value < 10 ? "0" : "") + std::to_string(value);
    };
    out += ", expires " + std::to_string(static_cast<int>(date.year())) + "-" +
           two(static_cast<unsigned>(date.month())) + "-" + two(static_cast<unsigned>(date.day())) +
           "T" + two(time.hours().count()) + ":" + two(time.minutes().count()) + ":" +
           two(time.seconds().count()) + "Z";
  }
  out += ")";
  return out;
}

/// Also what GoogleTest uses to print a credentials value in a failure message.
inline std::ostream& operator<<(std::ostream& out, const credentials& creds) {
  return out << describe(creds);
}

// Thrown by credentials_chain when no provider has credentials; the message
// lists what each provider tried and why it had none.
class credentials_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// One provider's answer: credentials, or the reason it has none. `final`
/// stops the chain: the user asked for something specific (a named profile)
/// and falling through to another identity would be a surprise.
struct provider_result {
  std::optional<credentials> found = {};  ///< the credentials, when the provider has them
  std::string reason = {};                ///< why not, for the chain's error message
  bool final = false;                     ///< true: no later provider is tried
};

namespace detail {
inline provider_result not_found(std::string reason, bool final = false) {
  return {.found = std::nullopt, .reason = std::move(reason), .final = final};
}

// "2024-01-02T03:04:05Z", also with fractional seconds or a "+00:00" offset.
inline std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view text) {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (text.size() < 19 ||
      std::sscanf(std::string(text.substr(0, 19)).c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &year, &month,
                  &day, &hour, &minute, &second) != 6)
    return std::nullopt;
  const std::chrono::year_month_day date{std::chrono::year{year},
                                         std::chrono::month{static_cast<unsigned>(month)},
                                         std::chrono::day{static_cast<unsigned>(day)}};
  if (!date.ok())
    return std::nullopt;
  auto time = std::chrono::sys_days{date} + std::chrono::hours{hour} +
              std::chrono::minutes{minute} + std::chrono::seconds{second};
  std::string_view zone = text.substr(19);
  while (!zone.empty() && (zone.front() == '.' || (zone.front() >= '0' && zone.front() <= '9')))
    zone.remove_prefix(1);
  if (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-')) {
    const auto offset = std::chrono::hours{std::stoi(std::string(zone.substr(1, 2)))} +
                        std::chrono::minutes{std::stoi(std::string(zone.substr(4, 2)))};
    time += zone[0] == '+' ? -offset : offset;
  }
  return std::chrono::time_point_cast<std::chrono::system_clock::duration>(time);
}
}  // namespace detail

/// A provider answers with a provider_result; one that throws has found a
/// configuration it cannot use, which stops the chain like a final result.
struct named_provider {
  std::string name;                        ///< for messages: "environment", "IMDS", ...
  std::function<provider_result()> fetch;  ///< asked for credentials each time the chain needs them
};

/// Callable as std::function<credentials()>: the first provider with
/// credentials wins, and the result is cached. Copies share one cache.
/// Thread-safe. Refreshing follows the AWS SDKs (botocore's advisory and
/// mandatory refresh, aws-sdk-go-v2's CredentialsCache):
///   - until `refresh_margin` before the expiration, the cache answers;
///   - inside the margin (advisory), one caller refreshes; the others go on
///     with the cached credentials and do not wait for it;
///   - inside `mandatory_margin` before the expiration, callers wait for the
///     refresh in flight, if any; once the credentials have expired (or
///     when there are none), callers wait for a refresh, and one refresh
///     serves every caller waiting for it, failure included;
///   - a refresh that fails (or brings credentials already inside the margin)
///     is not tried again before a backoff, 1 s doubling up to 30 s, while
///     the cached credentials are still valid; the backoff never carries past
///     the start of the mandatory window (inside it, past the expiration).
/// A refresh that fails leaves the cached credentials in use while they are
/// valid; after that, the failure is thrown.
class credentials_chain {
 public:
  /// When the chain refreshes expiring credentials, and the clock it reads.
  struct options {
    /// Inside this, one caller refreshes while the others go on.
    std::chrono::seconds refresh_margin = std::chrono::minutes{5};
    /// Inside this, every caller waits for the refresh.
    std::chrono::seconds mandatory_margin = std::chrono::minutes{1};
    /// The backoff after a failed refresh, doubling.
    std::chrono::milliseconds first_backoff = std::chrono::seconds{1};
    std::chrono::milliseconds max_backoff = std::chrono::seconds{30};  ///< the longest backoff
    /// The clock expirations are compared with; tests set one.
    std::function<std::chrono::system_clock::time_point()> now = [] {
      return std::chrono::system_clock::now();
    };
  };

  /// The AWS SDKs' chain is default_credentials_chain() (default_credentials.hpp).
  credentials_chain(std::vector<named_provider> providers, options opts)
      : state_(std::make_shared<state>(std::move(providers), std::move(opts))) {}

  /// Valid credentials: the cached ones, or a refresh of them; throws when none can be had.
  credentials operator()() const {
    state& s = *state_;
    std::unique_lock lock(s.mutex);
    const auto now = s.opts.now();
    const auto& cached = s.cached;
    if (cached && (!cached->expiration || now < *cached->expiration - s.opts.refresh_margin))
      return *cached;
    const bool valid = cached && now < *cached->expiration;
    if (valid && now < *cached->expiration - s.opts.mandatory_margin) {  // advisory
      if (s.refreshing || now < s.next_attempt)
        return *cached;
      s.refresh(lock);
    } else if (s.refreshing) {  // the one in flight serves this caller too
      const auto generation = s.generation;
      s.refreshed.wait(lock, [&] { return s.generation != generation; });
    } else if (!valid || now >= s.next_attempt) {
      s.refresh(lock);
    }
    // What a refresh has just found is used even if it has expired already
    // (a skewed clock, say), as before: the provider's answer is the best.
    if (cached && (s.last_found || !cached->expiration || s.opts.now() < *cached->expiration))
      return *cached;
    throw credentials_error(s.last_failure);
  }

 private:
  struct state {
    state(std::vector<named_provider> p, options o) : providers(std::move(p)), opts(std::move(o)) {}

    // Asks the providers with the lock released: the refreshing flag keeps
    // the refresh single, and callers that may go on do not wait for it.
    void refresh(std::unique_lock<std::mutex>& lock) {
      refreshing = true;
      lock.unlock();
      std::optional<credentials> found;
      std::string tried;
      try {
        found = ask_providers(tried);
      } catch (...) {
        settle(lock, std::nullopt, "no AWS credentials: " + tried);
        throw;
      }
      settle(lock, std::move(found), "no AWS credentials: " + tried);
    }

    std::optional<credentials> ask_providers(std::string& tried) const {
      for (const auto& provider : providers) {
        provider_result result;
        try {
          result = provider.fetch();
        } catch (const std::exception& error) {
          result = detail::not_found(error.what(), true);
        }
        if (result.found) {
          if (result.found->source.empty())
            result.found->source = provider.name;
          return std::move(result.found);
        }
        tried += (tried.empty() ? "" : "; ") + provider.name + ": " + result.reason;
        if (result.final)
          break;
      }
      return std::nullopt;
    }

    // Takes the lock again, keeps the outcome and wakes the callers waiting
    // for it.
    void settle(std::unique_lock<std::mutex>& lock, std::optional<credentials> found,
                std::string failure) {
      lock.lock();
      const auto now = opts.now();
      last_found = found.has_value();
      if (found) {
        cached = std::move(found);
        failures = 0;
      } else {
        last_failure = std::move(failure);
        ++failures;
      }
      // The next try, for credentials still valid but inside the margin.
      auto backoff = opts.first_backoff;
      for (int i = 1; i < failures && backoff < opts.max_backoff; ++i)
        backoff *= 2;
      next_attempt = now + std::min(backoff, opts.max_backoff);
      if (cached && cached->expiration) {
        const auto mandatory = *cached->expiration - opts.mandatory_margin;
        next_attempt = std::min(next_attempt, now < mandatory ? mandatory : *cached->expiration);
      }
      refreshing = false;
      ++generation;
      refreshed.notify_all();
    }

    std::mutex mutex;
    std::condition_variable refreshed;
    std::vector<named_provider> providers;
    options opts;
    std::optional<credentials> cached;
    bool refreshing = false;
    unsigned long generation = 0;  // refreshes settled, for the callers that wait for one
    int failures = 0;              // in a row
    bool last_found = false;       // the last refresh's outcome
    std::chrono::system_clock::time_point next_attempt = {};
    std::string last_failure;
  };
  std::shared_ptr<state> state_;
};

}  // namespace widget_consumer::aws
