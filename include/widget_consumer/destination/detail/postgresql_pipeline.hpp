#pragma once
// Several statements in one round trip, through libpq's pipeline mode
// (libpq 14 and later): all are sent, then one sync, then their results are
// read in order. The server still runs them one after another, each with a
// snapshot of its own (READ COMMITTED), exactly as if each had been sent
// after the previous one's answer; only the waiting between them is gone.
// At a 20 ms round trip to the database, a request's five statements took
// 100 ms one by one and take 20 ms here (BENCHMARKS.md, "What the fence
// costs").
//
// A statement that fails makes the server skip the rest up to the sync
// (PGRES_PIPELINE_ABORTED); pg_pipeline then throws the first failure as
// pg_execute would, after reading up to the sync, so the connection is
// left out of pipeline mode (the pool closes a connection that failed).

#include <libpq-fe.h>

#include <widget_consumer/concepts.hpp>
#include <widget_consumer/destination/detail/postgresql_connection.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace widget_consumer::detail {

struct pg_statement {
  const char* sql;
  pg_parameters values;
  ExecStatusType expected = PGRES_COMMAND_OK;
};

namespace pipeline_detail {

[[noreturn]] inline void throw_connection_error(PGconn* connection, const pg_redactor& redact) {
  throw pg_error("", "PostgreSQL: " + redact(pg_one_line(PQerrorMessage(connection))));
}

}  // namespace pipeline_detail

// The results of `statements`, one each, in order. Throws pg_error for the
// first that fails or whose status is not its `expected`.
inline std::vector<pg_result> pg_pipeline(PGconn* connection,
                                          const std::vector<pg_statement>& statements,
                                          const pg_redactor& redact) {
  // Checked before anything is sent: a refused value sends nothing.
  std::vector<std::vector<const char*>> values;
  values.reserve(statements.size());
  for (const auto& statement : statements)
    values.push_back(pg_text_values(statement.values));

  if (PQenterPipelineMode(connection) != 1)
    pipeline_detail::throw_connection_error(connection, redact);
  for (std::size_t i = 0; i < statements.size(); ++i) {
    if (PQsendQueryParams(connection, statements[i].sql, static_cast<int>(values[i].size()),
                          nullptr, values[i].data(), nullptr, nullptr, 0) != 1)
      pipeline_detail::throw_connection_error(connection, redact);
  }
  if (PQpipelineSync(connection) != 1)
    pipeline_detail::throw_connection_error(connection, redact);

  std::vector<pg_result> results;
  results.reserve(statements.size());
  std::optional<pg_error> failure;
  for (std::size_t i = 0; i < statements.size(); ++i) {
    pg_result result(PQgetResult(connection));
    if (!result)  // the connection broke: no result, and no sync to wait for
      pipeline_detail::throw_connection_error(connection, redact);
    while (pg_result(PQgetResult(connection))) {
      // Each statement's results end with a null one; there is one here.
    }
    const auto status = PQresultStatus(result.get());
    if (!failure && status != statements[i].expected) {
      const char* state = PQresultErrorField(result.get(), PG_DIAG_SQLSTATE);
      const char* message = PQresultErrorMessage(result.get());
      failure.emplace(state != nullptr ? state : "",
                      "PostgreSQL: " + redact(pg_one_line(message != nullptr && *message != '\0'
                                                              ? message
                                                              : PQresStatus(status))));
    }
    results.push_back(std::move(result));
  }
  const pg_result sync(PQgetResult(connection));
  if (!sync || PQresultStatus(sync.get()) != PGRES_PIPELINE_SYNC ||
      PQexitPipelineMode(connection) != 1)
    pipeline_detail::throw_connection_error(connection, redact);
  if (failure)
    throw *failure;
  return results;
}

}  // namespace widget_consumer::detail
