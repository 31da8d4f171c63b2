#pragma once
// The PostgreSQL server the CTest fixture started (scripts/postgresql): its
// URL, superuser and password from the state folder, and a database of its
// own for each test, dropped afterwards. The test's own statements go
// through libpq directly, not through the store under test.

#include "support/emulator.hpp"

#include <libpq-fe.h>

#include <gtest/gtest.h>

#include <unistd.h>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace widget_consumer::testing {

struct postgresql_server {
  std::string url;  // postgresql://127.0.0.1:PORT/postgres
  std::string user;
  std::string password;

  static postgresql_server from_state() {
    const auto dir = emulator_state_dir();
    return {read_first_line(dir + "/postgresql.url"), read_first_line(dir + "/postgresql.user"),
            read_first_line(dir + "/postgresql.credentials")};
  }

  // The URL with another database.
  std::string url_of(const std::string& database) const {
    return url.substr(0, url.rfind('/') + 1) + database;
  }
};

// A plain libpq connection for the test's own statements.
class postgresql_session {
 public:
  postgresql_session(const postgresql_server& server, const std::string& database) {
    const char* keys[] = {"dbname", "user", "password", nullptr};
    const std::string url = server.url_of(database);
    const char* values[] = {url.c_str(), server.user.c_str(), server.password.c_str(), nullptr};
    connection_.reset(PQconnectdbParams(keys, values, 1));
    if (PQstatus(connection_.get()) != CONNECTION_OK)
      throw std::runtime_error(std::string("test connection: ") +
                               PQerrorMessage(connection_.get()));
    PQsetNoticeProcessor(
        connection_.get(), [](void*, const char*) {}, nullptr);
  }

  // Runs fixed test SQL; returns the rows as text (NULL as "<null>").
  std::vector<std::vector<std::string>> query(const std::string& sql) {
    std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(connection_.get(), sql.c_str()),
                                                         &PQclear);
    const auto status = PQresultStatus(result.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
      throw std::runtime_error(sql + ": " + PQresultErrorMessage(result.get()));
    std::vector<std::vector<std::string>> rows;
    for (int r = 0; r < PQntuples(result.get()); ++r) {
      auto& row = rows.emplace_back();
      for (int c = 0; c < PQnfields(result.get()); ++c)
        row.push_back(PQgetisnull(result.get(), r, c) ? "<null>" : PQgetvalue(result.get(), r, c));
    }
    return rows;
  }

  std::string scalar(const std::string& sql) { return query(sql).at(0).at(0); }

 private:
  std::unique_ptr<PGconn, decltype(&PQfinish)> connection_{nullptr, &PQfinish};
};

// A database for one test: created empty, dropped (with its connections)
// when the test ends.
class postgresql_database {
 public:
  postgresql_database() : server_(postgresql_server::from_state()) {
    static std::atomic<int> counter{0};
    name_ = "t" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
    postgresql_session(server_, "postgres").query("CREATE DATABASE " + name_);
  }

  postgresql_database(const postgresql_database&) = delete;
  postgresql_database& operator=(const postgresql_database&) = delete;

  ~postgresql_database() {
    try {
      postgresql_session(server_, "postgres").query("DROP DATABASE " + name_ + " WITH (FORCE)");
    } catch (const std::exception& e) {
      ADD_FAILURE() << e.what();
    }
  }

  const postgresql_server& server() const noexcept { return server_; }
  const std::string& name() const noexcept { return name_; }
  std::string url() const { return server_.url_of(name_); }
  postgresql_session session() const { return postgresql_session(server_, name_); }

 private:
  postgresql_server server_;
  std::string name_;
};

// `size` letters that do not compress (a linear congruential sequence):
// PostgreSQL compresses a long value before its index sees it, so only such a
// text is sure to go over the index's limit.
inline std::string incompressible_text(std::size_t size) {
  std::string text;
  text.reserve(size);
  for (std::uint32_t x = 1; text.size() < size;) {
    x = x * 1664525U + 1013904223U;
    text += static_cast<char>('a' + (x >> 24) % 26);
  }
  return text;
}

}  // namespace widget_consumer::testing
