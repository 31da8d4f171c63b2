#pragma once
// AWS credentials and where they come from. The secret key and session token
// never leave this struct in text form: describe() and operator<< redact them,
// and no exception message here includes them.

#include <chrono>
#include <optional>
#include <ostream>
#include <string>

namespace widget_consumer::aws {

struct credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty for long-term keys
  std::optional<std::chrono::system_clock::time_point> expiration;

  bool empty() const noexcept { return access_key_id.empty() || secret_access_key.empty(); }
  bool operator==(const credentials&) const = default;
};

// "AKIDEXAMPLE (secret ****, session token ****, expires 2024-01-01T00:00:00Z)":
// the key id is not secret (it appears in every Authorization header).
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

// Also what GoogleTest uses to print a credentials value in a failure message.
inline std::ostream& operator<<(std::ostream& out, const credentials& creds) {
  return out << describe(creds);
}

}  // namespace widget_consumer::aws
