#pragma once
// libpq underneath postgresql_table_store: connecting, a pool of
// connections, parameterised statements, and how a failure maps onto
// store_failure. Nothing here knows widgets.
//
// Decisions:
// - Every statement goes through PQexecParams with its values as separate
//   parameters: no request text is ever spliced into SQL. A value holding a
//   NUL byte cannot be a text parameter (libpq would cut it there, and
//   PostgreSQL's text type cannot hold it), so it is refused before sending.
// - A password never appears in a message: messages name the server by the
//   host, port, database and user libpq resolved, never by the connection
//   string, and every text from libpq has the passwords we know of (the
//   option and the one inside the connection string) masked.
// - SQLSTATE decides the failure: connection loss (no result, a broken
//   connection, class 08), serialization failure (40001), deadlock (40P01),
//   shutdown and start-up (57P01-57P03), a cancelled statement (57014), a
//   lock not granted (55P03) and insufficient resources (class 53) are
//   transient; data exceptions (class 22) and program limits (class 54: an
//   attribute name too long for the primary key's index) can never succeed
//   for this request, so bad_request; anything else (a missing table, no
//   privilege) is permanent.

#include <libpq-fe.h>

#include <widget_consumer/concepts.hpp>

#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace widget_consumer::detail {

struct pg_result_deleter {
  void operator()(PGresult* result) const noexcept { PQclear(result); }
};
using pg_result = std::unique_ptr<PGresult, pg_result_deleter>;

struct pg_connection_deleter {
  void operator()(PGconn* connection) const noexcept { PQfinish(connection); }
};
using pg_connection = std::unique_ptr<PGconn, pg_connection_deleter>;

// Masks every known secret in text from libpq or the server.
class pg_redactor {
 public:
  void add(std::string secret) {
    if (!secret.empty())
      secrets_.push_back(std::move(secret));
  }

  std::string operator()(std::string text) const {
    for (const auto& secret : secrets_) {
      for (auto at = text.find(secret); at != std::string::npos; at = text.find(secret, at + 3)) {
        text.replace(at, secret.size(), "***");
      }
    }
    return text;
  }

 private:
  std::vector<std::string> secrets_;
};

// libpq's messages end with a newline and may span lines; one line reads
// better in a log.
inline std::string pg_one_line(std::string_view text) {
  std::string line;
  for (const char c : text) {
    if (c == '\n' || c == '\r' || c == '\t') {
      if (!line.empty() && line.back() != ' ')
        line += ' ';
    } else {
      line += c;
    }
  }
  while (!line.empty() && line.back() == ' ')
    line.pop_back();
  return line;
}

inline store_failure pg_failure_of(std::string_view sqlstate) {
  if (sqlstate.empty() || sqlstate.starts_with("08") || sqlstate.starts_with("53") ||
      sqlstate == "40001" || sqlstate == "40P01" || sqlstate == "57P01" || sqlstate == "57P02" ||
      sqlstate == "57P03" || sqlstate == "57014" || sqlstate == "55P03")
    return store_failure::transient;
  if (sqlstate.starts_with("22") || sqlstate.starts_with("54"))
    return store_failure::bad_request;
  return store_failure::permanent;
}

// A failed statement: its SQLSTATE ("" when the connection broke and there
// is none) and the message, already redacted.
class pg_error : public store_error {
 public:
  pg_error(std::string sqlstate, const std::string& message)
      : store_error(pg_failure_of(sqlstate), message), sqlstate_(std::move(sqlstate)) {}

  const std::string& sqlstate() const noexcept { return sqlstate_; }

 private:
  std::string sqlstate_;
};

// The connection settings, and what a person reads when it fails.
struct pg_settings {
  std::string conninfo;  // a libpq connection string or URI; may hold a password
  std::string user;      // "" = from conninfo, PGUSER or the login name
  std::string password;  // "" = from conninfo, PGPASSWORD or ~/.pgpass
  std::string application_name = "widget_consumer";
};

// Opens one connection. Throws store_error: transient when the server could
// not be reached or is not ready, permanent when it answered and refused us
// (wrong password, no such database or role, pg_hba); libpq's message names
// the server.
inline pg_connection pg_connect(const pg_settings& settings, const pg_redactor& redact) {
  std::vector<const char*> keys = {"dbname", "application_name", "connect_timeout"};
  std::vector<const char*> values = {settings.conninfo.c_str(), settings.application_name.c_str(),
                                     "10"};
  if (!settings.user.empty()) {
    keys.push_back("user");
    values.push_back(settings.user.c_str());
  }
  if (!settings.password.empty()) {
    keys.push_back("password");
    values.push_back(settings.password.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  pg_connection connection(PQconnectdbParams(keys.data(), values.data(), 1));
  if (!connection)
    throw store_error(store_failure::transient, "PostgreSQL: out of memory while connecting");
  if (PQstatus(connection.get()) == CONNECTION_OK) {
    // Notices (CREATE TABLE IF NOT EXISTS ... skipping) would go to stderr.
    PQsetNoticeProcessor(
        connection.get(), [](void*, const char*) {}, nullptr);
    return connection;
  }
  const std::string message = redact(pg_one_line(PQerrorMessage(connection.get())));
  // libpq gives no SQLSTATE for a refused connection, so the server's words
  // decide: these refusals come back on every attempt (28000, 28P01,
  // 3D000, 42501). Anything else (refused, reset, the server starting up,
  // recovering, shutting down, full) may heal.
  static constexpr std::string_view refusals[] = {"authentication failed", "no pg_hba.conf entry",
                                                  "does not exist", "not permitted to log in",
                                                  "permission denied"};
  bool refused = false;
  for (const auto refusal : refusals)
    refused = refused || message.find(refusal) != std::string::npos;
  const bool no_password = PQconnectionNeedsPassword(connection.get()) != 0;
  throw store_error(
      refused || no_password ? store_failure::permanent : store_failure::transient,
      "PostgreSQL: cannot connect: " + message +
          (no_password ? " (no password was given: -pdbp, PGPASSWORD or ~/.pgpass)" : ""));
}

using pg_parameters = std::vector<std::optional<std::string>>;

// The parameters as libpq takes them (nullptr = SQL NULL); a NUL byte is
// refused before anything is sent.
inline std::vector<const char*> pg_text_values(const pg_parameters& parameters) {
  std::vector<const char*> values;
  values.reserve(parameters.size());
  for (const auto& parameter : parameters) {
    if (parameter && parameter->find('\0') != std::string::npos)
      throw store_error(store_failure::bad_request,
                        "PostgreSQL: a value holds a NUL byte, which a text column cannot store");
    values.push_back(parameter ? parameter->c_str() : nullptr);
  }
  return values;
}

// Runs one statement with text parameters (nullopt = SQL NULL). Throws
// pg_error unless the result is `expected`.
inline pg_result pg_execute(PGconn* connection, const char* sql, const pg_parameters& parameters,
                            const pg_redactor& redact, ExecStatusType expected = PGRES_COMMAND_OK) {
  const auto values = pg_text_values(parameters);
  pg_result result(PQexecParams(connection, sql, static_cast<int>(values.size()), nullptr,
                                values.data(), nullptr, nullptr, 0));
  if (result && PQresultStatus(result.get()) == expected)
    return result;
  const char* state = result ? PQresultErrorField(result.get(), PG_DIAG_SQLSTATE) : nullptr;
  const std::string message =
      result ? PQresultErrorMessage(result.get()) : PQerrorMessage(connection);
  throw pg_error(state != nullptr ? state : "", "PostgreSQL: " + redact(pg_one_line(message)));
}

// Up to `size` connections, opened when first needed. A connection that saw
// a failure is closed rather than returned, so a retry starts on a fresh one.
class pg_pool {
 public:
  pg_pool(pg_settings settings, std::size_t size) : settings_(std::move(settings)), size_(size) {
    if (size_ == 0)
      size_ = 1;
    redact_.add(settings_.password);
    // The password inside the connection string, if there is one.
    if (PQconninfoOption* options = PQconninfoParse(settings_.conninfo.c_str(), nullptr)) {
      for (auto* option = options; option->keyword != nullptr; ++option) {
        if (std::string_view(option->keyword) == "password" && option->val != nullptr)
          redact_.add(option->val);
      }
      PQconninfoFree(options);
    }
  }

  pg_pool(const pg_pool&) = delete;
  pg_pool& operator=(const pg_pool&) = delete;

  // A connection for the caller alone; give it back with release().
  pg_connection acquire() {
    std::unique_lock lock(mutex_);
    available_.wait(lock, [&] { return !idle_.empty() || open_ < size_; });
    if (!idle_.empty()) {
      auto connection = std::move(idle_.back());
      idle_.pop_back();
      return connection;
    }
    ++open_;
    lock.unlock();
    try {
      return pg_connect(settings_, redact_);
    } catch (...) {
      forget();
      throw;
    }
  }

  // healthy = false: the connection failed or is in an unknown state.
  void release(pg_connection connection, bool healthy) {
    if (!healthy || PQstatus(connection.get()) != CONNECTION_OK ||
        PQtransactionStatus(connection.get()) != PQTRANS_IDLE) {
      connection.reset();
      forget();
      return;
    }
    {
      std::lock_guard lock(mutex_);
      idle_.push_back(std::move(connection));
    }
    available_.notify_one();
  }

  // Closes the idle connections: after one failed, the others may be dead
  // too (a restarted server), and a retry should not meet them.
  void discard_idle() {
    std::vector<pg_connection> closing;
    {
      std::lock_guard lock(mutex_);
      closing.swap(idle_);
      open_ -= closing.size();
    }
    available_.notify_all();
  }

  const pg_redactor& redact() const noexcept { return redact_; }
  const pg_settings& settings() const noexcept { return settings_; }
  std::size_t size() const noexcept { return size_; }

 private:
  void forget() {
    {
      std::lock_guard lock(mutex_);
      --open_;
    }
    available_.notify_one();
  }

  pg_settings settings_;
  pg_redactor redact_;
  std::size_t size_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<pg_connection> idle_;
  std::size_t open_ = 0;
};

}  // namespace widget_consumer::detail
