#pragma once
// postgresql_table_store: widgets in two PostgreSQL tables (fenced, a third
// for positions), through libpq. Link WidgetConsumer::postgresql (libpq) to
// use it; the rest of the library does not need libpq.
//
//   widgets           (id text PRIMARY KEY, owner text NOT NULL,
//                      label text, description text)
//   widget_attributes (widget_id text REFERENCES widgets ON DELETE CASCADE,
//                      name text, value text NOT NULL,
//                      PRIMARY KEY (widget_id, name))
//
// Every attribute is its own value, as DynamoDB's layout has it: each can be
// queried, indexed and changed alone, and an update touches only the rows it
// names. NULL is an unset label or description; "" is stored as "".
//
// Semantics are the other stores' (DESIGN.md), one transaction per request,
// so a crash leaves the old widget or the new one, never a mix. A request's
// statements go in one round trip (detail/postgresql_pipeline.hpp), then its
// COMMIT or ROLLBACK in a second; a create's COMMIT, and a lone delete's
// autocommit, need no second:
//   create -> upsert the widget row (replacing any, whoever owned it), delete
//             its attribute rows, insert the request's
//   update -> UPDATE ... WHERE id and owner match (no row: not_found, rolled
//             back); "" sets a label/description NULL or deletes an
//             attribute row, a value upserts it, null leaves it alone
//   delete -> DELETE ... WHERE id and owner match; whether a row went is the
//             answer; the attribute rows go with it (ON DELETE CASCADE)
//
// Fencing (position.hpp; off with fencing.enabled = false, --no-fencing):
// a third table, widget_positions (widget_id text PRIMARY KEY, position text
// NOT NULL, deleted_at timestamptz), holds each widget's position, so the
// course's two tables keep their columns either way. One INSERT ... ON
// CONFLICT DO UPDATE ... WHERE, first in the request's own transaction,
// compares and advances it: the row lock it takes orders every writer of the
// widget, in this process or another (a stalled consumer, a duplicate
// delivery), and the rollback of a stale, not_found or failed request takes
// the position back with the change, so the two never disagree. A delete
// leaves its row as a tombstone (deleted_at set), which refuses a late
// create. Tombstones older than fencing.tombstone_retention are removed at
// check_ready() and then every tombstone_clean_up_interval; after that, a
// create replayed from before its widget's delete is applied again (the
// widget comes back), and an update or delete from then finds nothing.
//
// Failures (detail/postgresql_connection.hpp): transient ones (connection
// lost, serialization failure, deadlock, shutdown) are retried once at once
// on a fresh connection, then left to the consumer as store_failure::transient.
// Fenced, a retry after a COMMIT whose answer was lost finds its own
// position stored and answers stale: the request was applied once.
// Thread-safe: each lane takes a connection of its own from the pool.

#include <widget_consumer/concepts.hpp>
#include <widget_consumer/destination/detail/postgresql_connection.hpp>
#include <widget_consumer/destination/detail/postgresql_pipeline.hpp>
#include <widget_consumer/destination/detail/postgresql_schema.hpp>
#include <widget_consumer/destination/detail/postgresql_statements.hpp>
#include <widget_consumer/destination/fencing.hpp>
#include <widget_consumer/position.hpp>
#include <widget_consumer/request.hpp>
#include <widget_consumer/unrecoverable_error.hpp>
#include <widget_consumer/widget.hpp>

#include <boost/json.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace widget_consumer {

/// Where the PostgreSQL store connects, as whom, and how many connections it keeps.
struct postgresql_store_options {
  /// A libpq connection string ("host=db dbname=widgets") or URI
  /// ("postgresql://db/widgets"); "" = libpq's defaults and PG* variables.
  std::string connection;
  std::string user;           ///< "" = from the connection string, PGUSER or the login name
  std::string password;       ///< "" = from the connection string, PGPASSWORD or ~/.pgpass
  std::size_t pool_size = 4;  ///< connections in the pool
  /// check_ready() creates the tables when they are missing, instead of only
  /// checking them.
  bool create_schema = false;
  /// Fencing (the top of this file). Off: only widgets and widget_attributes.
  fencing_options fencing{};
  /// How often, at most, a fenced apply first removes the tombstones older
  /// than fencing.tombstone_retention: one DELETE on an index of tombstones,
  /// on whichever lane finds it due.
  std::chrono::seconds tombstone_clean_up_interval = std::chrono::minutes(10);
};

/// A widget store of PostgreSQL tables (libpq), with a pool of connections.
class postgresql_table_store {
 public:
  /// A store as `options` says: where to connect, the pool's size, fencing.
  explicit postgresql_table_store(postgresql_store_options options)
      : pool_(
            detail::pg_settings{
                .conninfo = options.connection, .user = options.user, .password = options.password},
            options.pool_size),
        create_schema_(options.create_schema),
        fencing_(options.fencing),
        clean_up_interval_(options.tombstone_clean_up_interval) {}

  /// Before the first request (concepts.hpp, startup_checking): connects, then
  /// creates the tables (when asked to) and checks that both have the columns
  /// and primary keys this store writes, and that we may write them; fenced,
  /// widget_positions too, and its old tombstones are removed. What
  /// cannot heal (refused login, no such database, wrong tables, no
  /// privilege) is unrecoverable_error; a server not reachable yet may heal.
  void check_ready() {
    try {
      check_tables();
    } catch (const store_error& e) {
      if (e.retryable())
        throw;
      throw unrecoverable_error(std::string(e.what()) +
                                "; check the connection (-pdbc), the user and password (-pdbu, "
                                "-pdbp, PGPASSWORD or ~/.pgpass) and the user's privileges");
    }
  }

  /// Applies the request unfenced, in one transaction, retried on a lost connection.
  apply_outcome apply(const widget_request& request) {
    return with_retry([&](PGconn* connection) {
      auto mine = detail::pg_statements_of(request);
      // A delete is one statement, so a transaction of its own.
      if (request.type == request_type::remove)
        return detail::pg_outcome_of(mine, pipeline(connection, mine.statements), 0);
      mine.statements.insert(mine.statements.begin(), {"BEGIN", {}});
      // A create always applies: its COMMIT goes in the same round trip.
      if (!mine.found_by) {
        mine.statements.push_back({"COMMIT", {}});
        pipeline(connection, mine.statements);
        return apply_outcome::applied;
      }
      const auto outcome = detail::pg_outcome_of(mine, pipeline(connection, mine.statements), 1);
      execute(connection, outcome == apply_outcome::applied ? "COMMIT" : "ROLLBACK", {});
      return outcome;
    });
  }

  /// Fenced (concepts.hpp, position_fencing; the top of this file): applied
  /// only if position is newer than the widget's stored one.
  fenced_outcome apply(const widget_request& request, std::string_view position) {
    if (!fencing_.enabled || position.empty())
      return {apply(request)};
    if (clean_up_due())
      try {
        with_connection([&](PGconn* connection) {
          clean_up_tombstones(connection);
          return 0;
        });
      } catch (const store_error&) {
        // Tried again at the next interval; the request does not fail for it.
      }
    return with_retry(
        [&](PGconn* connection) { return apply_fenced(connection, request, position); });
  }

  /// The stored widget (attributes by name), or nullopt. Throws store_error.
  std::optional<widget> load(std::string_view widget_id) {
    return with_retry([&](PGconn* connection) -> std::optional<widget> {
      const auto row =
          execute(connection, "SELECT owner, label, description FROM widgets WHERE id = $1",
                  {std::string(widget_id)}, PGRES_TUPLES_OK);
      if (PQntuples(row.get()) == 0)
        return std::nullopt;
      auto text = [&](const PGresult* result, int r, int c) -> std::optional<std::string> {
        if (PQgetisnull(result, r, c))
          return std::nullopt;
        return std::string(PQgetvalue(result, r, c),
                           static_cast<std::size_t>(PQgetlength(result, r, c)));
      };
      widget found{.widget_id = std::string(widget_id),
                   .owner = *text(row.get(), 0, 0),
                   .label = text(row.get(), 0, 1),
                   .description = text(row.get(), 0, 2),
                   .other_attributes = {}};
      const auto attributes = execute(connection,
                                      "SELECT name, value FROM widget_attributes "
                                      "WHERE widget_id = $1 ORDER BY name COLLATE \"C\"",
                                      {std::string(widget_id)}, PGRES_TUPLES_OK);
      for (int r = 0; r < PQntuples(attributes.get()); ++r)
        found.other_attributes.push_back(
            {*text(attributes.get(), r, 0), *text(attributes.get(), r, 1)});
      return found;
    });
  }

  /// Creates the tables if they are missing (what --pdb-create-schema does);
  /// widget_positions only when fencing.
  void create_schema() {
    with_connection([&](PGconn* connection) {
      create_tables(connection);
      return 0;
    });
  }

  /// The connections the pool holds.
  std::size_t pool_size() const noexcept { return pool_.size(); }

 private:
  using parameters = detail::pg_parameters;

  void check_tables() {
    with_connection([&](PGconn* connection) {
      if (create_schema_)
        try {
          create_tables(connection);
        } catch (const store_error& e) {
          if (e.retryable())
            throw;
          // Most often a table of the same name in another shape.
          throw unrecoverable_error("cannot create the PostgreSQL widget tables at " +
                                    describe(connection) + ": " + e.what());
        }
      if (const auto problem =
              detail::pg_tables_problem(connection, pool_.redact(), detail::pg_widget_columns()))
        throw unrecoverable_error("cannot use the PostgreSQL widget tables at " +
                                  describe(connection) + ": " + *problem +
                                  "; create them with --pdb-create-schema, or see README.md "
                                  "for the schema");
      if (!fencing_.enabled)
        return 0;
      if (const auto problem =
              detail::pg_tables_problem(connection, pool_.redact(), detail::pg_position_columns()))
        throw unrecoverable_error("cannot use the PostgreSQL table widget_positions at " +
                                  describe(connection) + ": " + *problem +
                                  "; fencing keeps each widget's position there: create it with " +
                                  "--pdb-create-schema or " + detail::pg_positions_table_sql +
                                  ", or run without fencing (--no-fencing)");
      clean_up_tombstones(connection);
      next_clean_up_ = (now() + clean_up_interval_).count();
      return 0;
    });
  }

  detail::pg_result execute(PGconn* connection, const char* sql, const parameters& values,
                            ExecStatusType expected = PGRES_COMMAND_OK) {
    return detail::pg_execute(connection, sql, values, pool_.redact(), expected);
  }

  // One attempt on one connection: the connection goes back to the pool
  // only when the attempt ended cleanly (a not_found included).
  template <class Work>
  auto with_connection(Work&& work) -> decltype(work(static_cast<PGconn*>(nullptr))) {
    auto connection = pool_.acquire();
    try {
      auto result = work(connection.get());
      pool_.release(std::move(connection), true);
      return result;
    } catch (...) {
      pool_.release(std::move(connection), false);
      throw;
    }
  }

  // A pooled connection may have died while idle (the server restarted, a
  // backend was terminated): one more attempt at once, on a fresh one.
  template <class Work>
  auto with_retry(Work&& work) -> decltype(work(static_cast<PGconn*>(nullptr))) {
    try {
      return with_connection(work);
    } catch (const store_error& e) {
      if (!e.retryable())
        throw;
    }
    pool_.discard_idle();
    return with_connection(work);
  }

  std::vector<detail::pg_result> pipeline(PGconn* connection,
                                          const std::vector<detail::pg_statement>& statements) {
    return detail::pg_pipeline(connection, statements, pool_.redact());
  }

  // BEGIN, the position's advance, the stored position and the request's
  // statements in one round trip. A create's COMMIT goes with them (its
  // statements change nothing unless the advance moved the position to its
  // own: detail/postgresql_statements.hpp); an update or a delete then
  // sends COMMIT, or ROLLBACK when the advance found it stale (its
  // statements ran, and are undone) or the widget was not there. The
  // advance's row lock is taken before any of the request's statements, and
  // each of them reads a snapshot taken after it, so the order of writers is
  // the lock's.
  fenced_outcome apply_fenced(PGconn* connection, const widget_request& request,
                              std::string_view position) {
    const bool create = request.type == request_type::create;
    auto mine = create ? detail::pg_create(request, std::string(position))
                       : detail::pg_statements_of(request);
    std::vector<detail::pg_statement> all;
    all.reserve(mine.statements.size() + 3);
    all.push_back({"BEGIN", {}});
    all.push_back({detail::pg_advance_position_sql,
                   {request.widget_id, std::string(position),
                    std::string(request.type == request_type::remove ? "t" : "f"),
                    std::string(position_tie_group(position))},
                   PGRES_TUPLES_OK});
    all.push_back({"SELECT position FROM widget_positions WHERE widget_id = $1",
                   {request.widget_id},
                   PGRES_TUPLES_OK});
    std::move(mine.statements.begin(), mine.statements.end(), std::back_inserter(all));
    if (create)
      all.push_back({"COMMIT", {}});
    const auto results = pipeline(connection, all);
    if (PQntuples(results[1].get()) == 0) {
      const auto* stored = results[2].get();
      std::string stored_position =
          PQntuples(stored) == 1 ? std::string(PQgetvalue(stored, 0, 0),
                                               static_cast<std::size_t>(PQgetlength(stored, 0, 0)))
                                 : std::string();
      if (!create)
        execute(connection, "ROLLBACK", {});
      return {apply_outcome::stale, std::move(stored_position)};
    }
    if (create)
      return {apply_outcome::applied};
    // A not_found rolls the new position back too: the widget did not move.
    const apply_outcome outcome = detail::pg_outcome_of(mine, results, 3);
    execute(connection, outcome == apply_outcome::applied ? "COMMIT" : "ROLLBACK", {});
    return {outcome};
  }

  static std::chrono::steady_clock::duration now() {
    return std::chrono::steady_clock::now().time_since_epoch();
  }

  // True for the one caller that finds the clean-up due, which then owes it.
  bool clean_up_due() {
    const auto at = now().count();
    auto due = next_clean_up_.load();
    return at >= due &&
           next_clean_up_.compare_exchange_strong(
               due, at + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                             clean_up_interval_)
                             .count());
  }

  // A create that clears a tombstone concurrently holds its row: the DELETE
  // waits, then sees deleted_at NULL and leaves the row.
  void clean_up_tombstones(PGconn* connection) {
    execute(connection,
            "DELETE FROM widget_positions "
            "WHERE deleted_at < now() - $1::bigint * interval '1 second'",
            {std::to_string(fencing_.tombstone_retention.count())});
  }

  void create_tables(PGconn* connection) {
    for (const char* sql : detail::pg_widget_tables_sql)
      execute(connection, sql, {});
    if (fencing_.enabled) {
      execute(connection, detail::pg_positions_table_sql, {});
      execute(connection, detail::pg_positions_index_sql, {});
    }
  }

  // "127.0.0.1:5432, database widgets, user app": the server as libpq
  // resolved it, never the connection string (it may hold a password).
  static std::string describe(PGconn* connection) {
    return std::string(PQhost(connection)) + ":" + PQport(connection) + ", database " +
           PQdb(connection) + ", user " + PQuser(connection);
  }

  detail::pg_pool pool_;
  bool create_schema_ = false;
  fencing_options fencing_;
  std::chrono::seconds clean_up_interval_;
  // When the next clean-up of tombstones is due (now()'s ticks); 0: at the
  // first fenced apply, if check_ready() did not run.
  std::atomic<std::chrono::steady_clock::rep> next_clean_up_{0};
};

}  // namespace widget_consumer
